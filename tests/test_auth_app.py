"""Login in the app (AppTest): nothing of the data before login, roles, the annotator is the
logged-in identity, audit records, and an annotation database that goes down keeps the edit."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.annotations.store import AnnotationStore
from core.audit import AuditLog
from core.auth import User, hash_password, write_users
from core.config import REPO_ROOT
from tests import postgres_support
from tests.test_app import tiny_env  # noqa: F401  (fixture)
from ui.auth import IDENTITY, Identity
from ui.page_list import PAGES, sections

APP = str(REPO_ROOT / "app.py")
PASSWORD = "correct horse battery"
postgres_server = postgres_support.postgres_server
#: Element types the login screen may contain (nothing that can carry a cell, score or file).
LOGIN_ELEMENTS = {"title", "text_input", "button", "form", "markdown", "error", "caption", "block", "vertical",
                  "horizontal", "form_submit_button", "main", "sidebar", "event", "bottom", "root"}


@pytest.fixture
def password_env(tiny_env, tmp_path, monkeypatch):  # noqa: F811
    users = tmp_path / "users.toml"
    write_users(users, {"ana": User("ana", "annotator", hash_password(PASSWORD)),
                        "vic": User("vic", "viewer", hash_password("viewer password 1")),
                        "root": User("root", "admin", hash_password("admin password 1"))})
    monkeypatch.setenv("DISPLASIA_AUTH_MODE", "password")
    monkeypatch.setenv("DISPLASIA_AUTH_USERS_FILE", str(users))
    monkeypatch.setenv("DISPLASIA_AUTH_MAX_FAILED_LOGINS", "3")
    monkeypatch.setenv("DISPLASIA_AUDIT_PATH", str(tmp_path / "audit.jsonl"))
    return tiny_env


def _types(node, out=None) -> set:
    out = set() if out is None else out
    out.add(getattr(node, "type", type(node).__name__))
    for child in getattr(node, "children", {}).values():
        _types(child, out)
    return out


def _all_text(at) -> str:
    parts = []

    def walk(node):
        for attr in ("value", "label", "body"):
            v = getattr(node, attr, None)
            if isinstance(v, str):
                parts.append(v)
        if getattr(node, "type", None) == "bidi_component":      # the gallery's tiles, as sent
            parts.append(node.proto.json)
        for child in getattr(node, "children", {}).values():
            walk(child)
    walk(at._tree)
    return "\n".join(parts)


def _assert_login_screen_only(at):
    assert not at.exception, at.exception
    types = _types(at._tree)
    assert types <= LOGIN_ELEMENTS, types - LOGIN_ELEMENTS
    text = _all_text(at)
    for leak in ("TN_SNE_1", "TD_SNE_2", "WN_SNE_3", "unknown.png", "P(normal)", "score", "Cytoplasm"):
        assert leak not in text
    assert [t.label for t in at.text_input] == ["User name", "Password"]


def _login(at, name, password):
    at.text_input(key="login_user").input(name)
    at.text_input(key="login_password").input(password)
    at.button[0].click().run()
    return at


def test_nothing_but_the_login_form_before_login(password_env):
    # Each page's own URL is tried before login in Chromium (tests/test_auth_browser.py):
    # AppTest.switch_page cannot stand for a URL when no navigation has been registered.
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    _assert_login_screen_only(at)
    at.run()
    _assert_login_screen_only(at)


def test_query_parameters_do_not_open_a_cell_before_login(password_env):
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["cell"] = "TD_SNE_2.jpg"
    at.query_params["dataset"] = str(password_env)
    at.run()
    _assert_login_screen_only(at)


def test_wrong_password_stays_out_and_is_audited_then_right_one_gets_in(password_env, tmp_path):
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    _login(at, "ana", "wrong password")
    _assert_login_screen_only(at)
    assert [e.value for e in at.error] == ["wrong user name or password"]
    _login(at, "ana", PASSWORD)
    assert not at.exception
    assert at.session_state[IDENTITY] == Identity("ana", "annotator", "password")
    assert "TN_SNE_1.jpg" in _all_text(at)           # the gallery is there now
    assert "Logged in as ana" in _all_text(at)
    events = [(r["event"], r["who"]) for r in AuditLog(tmp_path / "audit.jsonl").read()]
    assert ("login_failed", "ana") in events and events[0] == ("login", "ana")


def test_too_many_failures_lock_the_user(password_env):
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    for _ in range(3):
        _login(at, "vic", "guess guess guess")
    _login(at, "vic", "viewer password 1")
    assert "too many failed logins" in at.error[0].value
    assert IDENTITY not in at.session_state


def test_roles_decide_the_pages():
    everything = {p.url_path for pages in sections("admin").values() for p in pages}
    for_viewer = {p.url_path for pages in sections("viewer").values() for p in pages}
    assert everything - for_viewer == {"admin"}
    assert for_viewer == {p.url_path for p in PAGES if p.role == "viewer"}


def _as(identity, page=None):
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state[IDENTITY] = identity
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    return at


def test_viewer_cannot_annotate_nor_upload_models(password_env):
    at = _as(Identity("vic", "viewer", "password"), "pages/annotate.py")
    assert not at.exception
    assert any("not annotate" in i.value for i in at.info)
    assert not [r for r in at.radio if r.key and r.key.startswith("condition")]
    home = _as(Identity("vic", "viewer", "password"))
    assert not [e for e in home.sidebar.expander if e.label == "Use your own model"]
    admin = _as(Identity("root", "admin", "password"))
    assert [e for e in admin.sidebar.expander if e.label == "Use your own model"]


def test_admin_page_shows_the_audit_log_and_settings(password_env):
    at = _as(Identity("root", "admin", "password"), "pages/admin.py")
    assert not at.exception, at.exception
    assert "Audit log" in [s.value for s in at.subheader]
    settings = at.dataframe[1].value
    assert "auth.mode" in set(settings["setting"]) and "'password'" in set(settings["value"])
    with pytest.raises(ValueError, match="Could not find a navigation page"):   # not routed for a viewer
        _as(Identity("vic", "viewer", "password"), "pages/admin.py")


def test_annotation_carries_the_logged_in_identity_and_is_audited(password_env, tmp_path):
    at = _as(Identity("ana", "annotator", "password"), "pages/annotate.py")
    assert not at.exception, at.exception
    assert not [t for t in at.text_input if t.key == "annotator_name"]   # no free-text name with login
    condition = next(r for r in at.radio if r.key.startswith("condition"))
    condition.set_value("dysplastic").run()
    from core.config import database_url

    store = AnnotationStore(database_url())
    saved = [a for a in store.all_latest() if a.annotator != "demo-rater"]   # the demo readings are seeded
    assert [(a.annotator, a.condition.value) for a in saved] == [("ana", "dysplastic")]
    assert store.latest_identities()[(saved[0].image_sha256, "ana")] == "password"
    records = AuditLog(tmp_path / "audit.jsonl").read(event="annotation_saved")
    assert records[0]["who"] == "ana" and records[0]["version"] == 1 and records[0]["verified"] is True


def test_free_text_name_without_login_is_stored_as_self_declared(tiny_env):  # noqa: F811
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["annotator_name"] = "dr-b"
    at.run()
    at.switch_page("pages/annotate.py")
    at.run()
    next(r for r in at.radio if r.key.startswith("condition")).set_value("dysplastic").run()
    from core.config import database_url

    identities = AnnotationStore(database_url()).latest_identities()
    assert {v for (_, who), v in identities.items() if who == "dr-b"} == {"self-declared"}


@pytest.mark.postgres
def test_database_down_keeps_the_edit_and_saves_it_when_back(tiny_env, postgres_server, monkeypatch):  # noqa: F811
    url = postgres_server.create_database()
    monkeypatch.setenv("DISPLASIA_DB", url)
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["annotator_name"] = "dr-c"
    at.run()
    at.switch_page("pages/annotate.py")
    at.run()
    assert not at.exception, at.exception
    postgres_server.stop()
    try:
        next(r for r in at.radio if r.key.startswith("condition")).set_value("dysplastic").run()
        assert not at.exception, at.exception
        warnings = [w.value for w in at.warning if "not reachable" in w.value]
        assert warnings and all("\n" not in w for w in warnings)
        assert any("kept in this session" in w for w in warnings)
        next(s for s in at.slider if s.key.startswith("cyto_degree")).set_value(2).run()   # keeps editing
        assert not at.exception, at.exception
    finally:
        postgres_server.start()
    at.run()                                   # any rerun once the database is back saves the kept edit
    assert not at.exception, at.exception
    with AnnotationStore(url) as store:
        saved = [a for a in store.all_latest() if a.annotator == "dr-c"]
        assert [(a.condition.value, a.cytoplasm.degree) for a in saved] == [("dysplastic", 2)]
