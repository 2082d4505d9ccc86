"""Gallery work that grows with the dataset is done only when the user asks for it."""
from __future__ import annotations

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
