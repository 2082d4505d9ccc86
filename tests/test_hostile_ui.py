"""Hostile corpus, URL parameters, displayed names and uploads.

Shared URLs must never break a page (``?occlusion.stride=5`` raised a TypeError, ``nan``/``inf``
showed the generic error box, ``1e9`` became 1), file names must never render as Markdown or
HTML, and uploads must not outlive their session or the TTL.
"""
from __future__ import annotations

import gc
import os
import time

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.config import REPO_ROOT
from core.uploads import PREFIX, SessionFolder, safe_name, sweep
from tests.test_app import forget_scoring_jobs, gallery_tiles
from ui import tile_grid
from ui.widgets import _parse, plain

# (case id, raw URL value, default, widget kwargs, expected value)
URL_CASES = [
    ("optional-int-5", "5", None, {"min_value": 1, "max_value": 40}, 5),
    ("optional-int-empty", "", None, {"min_value": 1, "max_value": 40}, None),
    ("optional-int-none", "none", None, {"min_value": 1, "max_value": 40}, None),
    ("optional-int-text", "big", None, {"min_value": 1, "max_value": 40}, None),
    ("optional-int-1e9", "1e9", None, {"min_value": 1, "max_value": 40}, 40),
    ("optional-float", "0.3", None, {"min_value": 0.0, "max_value": 1.0}, 0.3),
    ("int-1e9-clamped", "1e9", 40, {"min_value": 1, "max_value": 100}, 100),
    ("int-negative-clamped", "-5", 40, {"min_value": 1, "max_value": 100}, 1),
    ("int-inf", "inf", 40, {"min_value": 1, "max_value": 100}, 40),
    ("int-minus-inf", "-inf", 40, {"min_value": 1, "max_value": 100}, 40),
    ("int-nan", "nan", 40, {"min_value": 1, "max_value": 100}, 40),
    ("int-1e308", "1e308", 40, {"min_value": 1, "max_value": 100}, 100),
    ("int-1e400", "1e400", 40, {"min_value": 1, "max_value": 100}, 40),
    ("int-fraction-rounded", "7.6", 40, {"min_value": 1, "max_value": 100}, 8),
    ("int-hex", "0x10", 40, {"min_value": 1, "max_value": 100}, 40),
    ("int-script", "<script>alert(1)</script>", 40, {"min_value": 1, "max_value": 100}, 40),
    ("float-nan", "nan", 0.15, {"min_value": 0.0, "max_value": 1.0}, 0.15),
    ("float-inf", "inf", 0.15, {"min_value": 0.0, "max_value": 1.0}, 0.15),
    ("float-too-big", "7", 0.15, {"min_value": 0.0, "max_value": 1.0}, 1.0),
    ("float-no-bounds", "2.5", 0.15, {}, 2.5),
    ("choice-unknown", "os.system", "grey", {"options": ["grey", "mean", "blur"]}, "grey"),
    ("choice-known", "mean", "grey", {"options": ["grey", "mean", "blur"]}, "mean"),
    ("choice-case", "MEAN", "grey", {"options": ["grey", "mean", "blur"]}, "grey"),
    ("bool-yes", "yes", False, {}, True),
    ("bool-garbage", "maybe", False, {}, False),
    ("text-long", "x" * 10_000, "viridis", {"options": ["viridis", "magma"]}, "viridis"),
]


@pytest.mark.parametrize("case, raw, default, kwargs, expected", URL_CASES, ids=[c[0] for c in URL_CASES])
def test_url_values_are_parsed_to_the_widget_type_and_clamped(case, raw, default, kwargs, expected):
    value = _parse(raw, default, kwargs)
    assert value == expected and type(value) is type(expected)


NAMES = [
    ("markdown-image", "![t](https://host/x.png)"),
    ("markdown-link", "[click](javascript:alert(1))"),
    ("html-img", "<img src=x onerror=alert(1)>"),
    ("html-script", "<script>fetch('//host')</script>"),
    ("latex", "$\\href{https://host}{x}$"),
    ("colour-directive", ":red[warning]"),
    ("emphasis", "**bold** _it_ `code`"),
    ("newline-heading", "a\n# heading"),
]


@pytest.mark.parametrize("case, name", NAMES, ids=[c[0] for c in NAMES])
def test_names_are_escaped_for_markdown(case, name):
    shown = plain(name)
    i, unescaped = 0, []
    while i < len(shown):  # every Markdown/HTML character must come right after a backslash
        if shown[i] == "\\":
            i += 2
            continue
        unescaped.append(shown[i])
        i += 1
    assert not set(unescaped) & set("!][()<>$:*_`#\n"), unescaped
    assert "\n" not in shown


# ------------------------------------------------------------------------------- AppTest

@pytest.fixture
def hostile_env(tmp_path, monkeypatch, tiny_model_file):
    cells = tmp_path / "cells"
    cells.mkdir()
    rng = np.random.default_rng(7)
    for name in ["TN_SNE_1.jpg", "TD_SNE_2.jpg", "![t](x.png).jpg", "<img src=x>.jpg"]:
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(cells / name)
    (cells / "broken.jpg").write_bytes(b"not a jpeg")
    monkeypatch.setenv("DISPLASIA_MODEL", str(tiny_model_file))
    monkeypatch.setenv("DISPLASIA_DATASET", str(cells))
    monkeypatch.setenv("DISPLASIA_DATA_ROOTS", str(tmp_path))
    monkeypatch.setenv("DISPLASIA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DISPLASIA_DB", f"sqlite:///{tmp_path / 'annotations.sqlite'}")
    monkeypatch.setenv("DISPLASIA_UPLOADS_DIR", str(tmp_path / "uploads"))
    forget_scoring_jobs(monkeypatch)
    return cells


def run_app(page=None, query=None) -> AppTest:
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=180)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    return at


def test_hostile_shared_url_opens_the_occlusion_page(hostile_env):
    query = {"occlusion.stride": "5", "occlusion.patch": "1e9", "smoothgrad.noise": "nan",
             "smoothgrad.samples": "1e9", "lime.samples": "inf", "threshold": "nan",
             "target": "<script>", "cell": "../../etc/passwd", "dataset": "/etc"}
    at = run_app("pages/occlusion.py", query)
    assert not at.exception, at.exception
    ss = at.session_state
    assert ss["occlusion.stride"] == 5 and isinstance(ss["occlusion.stride"], int)
    assert ss["target"] == "predicted" and ss["dataset_root"] == str(hostile_env)
    assert 0 < ss["threshold"] < 1


def test_gallery_shows_good_cells_lists_the_bad_one_and_never_renders_names(hostile_env):
    at = run_app()
    assert not at.exception, at.exception
    markdown = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "![t](x.png)" not in markdown and "<img src=x>" not in markdown
    names = [t["name"] for t in gallery_tiles(at)]
    assert "![t](x.png).jpg" in names and "<img src=x>.jpg" in names  # sent as data, shown as text:
    assert "innerHTML" not in tile_grid._JS and "name.textContent = cell.name" in tile_grid._JS
    assert any("1 file(s) skipped" in e.label for e in at.expander)


# ------------------------------------------------------------------------------- uploads

def test_session_folder_is_deleted_when_the_session_is_dropped(tmp_path):
    holder = SessionFolder(tmp_path)
    (holder.path / "cell.jpg").write_bytes(b"x")
    path = holder.path
    session_state = {"upload_folder_holder": holder}
    del holder
    session_state.clear()  # Streamlit drops the session's state when the session ends
    gc.collect()
    assert not path.exists()


def test_sweep_deletes_only_stale_upload_folders(tmp_path):
    old = tmp_path / f"{PREFIX}old"
    new = tmp_path / f"{PREFIX}new"
    other = tmp_path / "keep-me"
    outside = tmp_path / "outside"
    for folder in (old, new, other, outside):
        folder.mkdir()
        (folder / "f.jpg").write_bytes(b"x")
    link = tmp_path / f"{PREFIX}link"
    link.symlink_to(outside, target_is_directory=True)
    (tmp_path / f"{PREFIX}file").write_bytes(b"x")
    os.utime(old, (time.time() - 48 * 3600,) * 2)
    os.utime(outside, (time.time() - 48 * 3600,) * 2)
    removed = sweep(tmp_path, ttl_hours=24)
    assert old in removed and not old.exists()
    assert new.exists() and other.exists() and (outside / "f.jpg").exists() and link.is_symlink()


@pytest.mark.parametrize("name, expected", [
    ("../../etc/passwd", "passwd"),
    ("..\\..\\windows\\win.ini", "win.ini"),
    ("/absolute/cell.jpg", "cell.jpg"),
    ("..", "upload"),
    ("", "upload"),
    ("a\x00b.jpg", "a_b.jpg"),
    ("con:stream.jpg", "con_stream.jpg"),
    ("x" * 500 + ".jpg", "x" * 200),
    (" .hidden. ", "hidden"),
    ("cell\nname.jpg", "cell_name.jpg"),
], ids=["dotdot", "backslashes", "absolute", "only-dots", "empty", "nul", "colon", "long", "dots-spaces", "newline"])
def test_uploaded_file_names_become_one_harmless_component(name, expected):
    assert safe_name(name) == expected


def test_upload_folder_that_cannot_be_created_is_one_line(tmp_path):
    from core.errors import DisplasiaError

    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(DisplasiaError, match="Cannot create an upload folder"):
        SessionFolder(tmp_path / "file" / "sub")


def test_dataset_wide_work_stops_at_the_session_budget(hostile_env, monkeypatch):
    monkeypatch.setenv("DISPLASIA_QUOTAS_DATASET_WORK_CELLS", "3")
    at = run_app("pages/projection.py")
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert any("needs 4 cell computations; this session has 3 of 3 left" in e for e in errors), errors


@pytest.mark.parametrize("env", [{"DISPLASIA_AUTH_MODE": "root"}, {"DISPLASIA_CACHE_MAX_MB": "nan"},
                                 {"DISPLASIA_SETTINGS": "/nonexistent/settings.toml"}],
                         ids=["auth-mode", "cache-nan", "missing-file"])
def test_invalid_settings_stop_the_dashboard_with_one_line(hostile_env, monkeypatch, env):
    from core.settings import reload_settings

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    try:
        at = run_app()
        assert not at.exception, at.exception
        assert len(at.error) == 1 and "settings" in at.error[0].value.lower()
        assert not at.text and not at.dataframe  # nothing else shown
    finally:
        monkeypatch.undo()
        reload_settings()


def test_projection_of_four_identical_cells_keeps_the_server_alive(tmp_path, monkeypatch, tiny_model_file):
    """The reported crash: 4 identical uploaded cells + Projection segfaulted the whole server
    (scikit-learn t-SNE, init='pca'). AppTest runs the page in this very process."""
    cells = tmp_path / "same"
    cells.mkdir()
    pixels = np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    for i in range(4):
        Image.fromarray(pixels).save(cells / f"TN_{i}.png")
    for key, value in {"DISPLASIA_MODEL": str(tiny_model_file), "DISPLASIA_DATASET": str(cells),
                       "DISPLASIA_DATA_ROOTS": str(tmp_path), "DISPLASIA_CACHE_DIR": str(tmp_path / "cache"),
                       "DISPLASIA_DB": f"sqlite:///{tmp_path / 'a.sqlite'}"}.items():
        monkeypatch.setenv(key, value)
    forget_scoring_jobs(monkeypatch)
    at = run_app("pages/projection.py", {"projection.kind": "t-SNE"})
    assert not at.exception, at.exception
    assert at.session_state["explain_log"]["features"]["from_cache"] is False
