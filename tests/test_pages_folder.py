"""The top-level pages/ folder (the layout users asked for) and Streamlit's old automatic
multipage mode: the workaround lives in ui/__init__.py; these tests fail when a Streamlit
upgrade changes the behaviour it works around, so that it is then revisited, not forgotten."""
from __future__ import annotations

import importlib

from streamlit.runtime.pages_manager import PagesManager

from core.config import REPO_ROOT


def test_streamlit_still_switches_to_the_old_mode_when_it_sees_a_pages_folder(tmp_path, monkeypatch):
    (tmp_path / "pages").mkdir()
    (tmp_path / "app.py").write_text("")
    monkeypatch.setattr(PagesManager, "uses_pages_directory", None)
    PagesManager(str(tmp_path / "app.py"))
    assert PagesManager.uses_pages_directory is True, "Streamlit changed: review the workaround in ui/__init__.py"


def test_importing_ui_turns_the_old_mode_off(monkeypatch):
    import ui

    monkeypatch.setattr(PagesManager, "uses_pages_directory", True)
    importlib.reload(ui)
    assert PagesManager.uses_pages_directory is False
    # and a manager created afterwards keeps it off although app.py sits beside pages/
    PagesManager(str(REPO_ROOT / "app.py"))
    assert PagesManager.uses_pages_directory is False


def test_every_page_script_is_routed_and_nothing_else_sits_in_pages():
    from ui.page_list import PAGES

    scripts = {p.script for p in PAGES}
    on_disk = {f"pages/{p.name}" for p in (REPO_ROOT / "pages").glob("*.py")}
    assert on_disk == scripts
    assert len({p.url_path for p in PAGES}) == len(PAGES) and sum(p.default for p in PAGES) == 1
