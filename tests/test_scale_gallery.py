"""Gallery work that grows with the dataset is done only when the user asks for it."""
from __future__ import annotations

import threading

from streamlit.testing.v1 import AppTest

from tests.test_app import APP, gallery_tiles, tiny_env, wait_for_scores  # noqa: F401  (tiny_env is a fixture)


def test_the_table_is_built_only_when_its_tab_is_open(tiny_env):  # noqa: F811
    at = wait_for_scores(AppTest.from_file(APP, default_timeout=120).run())
    assert not at.exception and [t.label for t in at.tabs] == ["Gallery", "Table"]
    assert len(gallery_tiles(at)) == 4                                      # the grid is drawn
    assert not at.dataframe and not at.get("download_button")               # the table is not
    at.session_state["gallery_tab"] = "Table"
    at.run()
    assert not at.exception
    assert sorted(at.dataframe[0].value["name"]) == ["TD_SNE_2.jpg", "TN_SNE_1.jpg", "WN_SNE_3.jpg", "unknown.png"]
    assert [b.label for b in at.get("download_button")] == ["Download table (CSV)"]
    assert not gallery_tiles(at)                                            # and the grid is not


def test_a_large_folder_shows_before_its_images_are_checked(tiny_env, monkeypatch):  # noqa: F811
    """Above SYNC_CHECKS never-decoded images, the gallery lists every file at once (an
    unreadable one as a grey tile); the scoring job decodes each image once, scores the
    readable ones, and the next run lists the unreadable one as skipped."""
    from ui import resources
    from ui.tile_grid import UNREADABLE

    (tiny_env / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    monkeypatch.setattr(resources, "SYNC_CHECKS", 2)
    # As on a fresh server: the scoring job waits until the gallery has drawn its first page
    # (else, on these 5 tiny files, it could finish within the run and the test see the end).
    monkeypatch.setattr(resources, "_page_drawn", threading.Event())
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception, at.exception
    tiles = {t["name"]: t for t in gallery_tiles(at)}
    assert "broken.jpg" in tiles and tiles["broken.jpg"]["src"] == UNREADABLE
    assert tiles["TN_SNE_1.jpg"]["src"].startswith("data:image/webp;base64,")
    assert not any("skipped" in e.label for e in at.expander)
    at = wait_for_scores(at)
    assert not at.exception, at.exception
    tiles = {t["name"]: t for t in gallery_tiles(at)}
    assert "broken.jpg" not in tiles and all("→" in t["score"] for t in tiles.values())
    assert any("1 file(s) skipped" in e.label for e in at.expander)
    # below the limit the check comes first, as before: the broken file never shows as a tile
    monkeypatch.setattr(resources, "SYNC_CHECKS", 1000)
    (tiny_env / "broken2.jpg").write_bytes(b"also not a jpeg")
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert "broken2.jpg" not in {t["name"] for t in gallery_tiles(at)}
    assert any("2 file(s) skipped" in e.label for e in at.expander)
