"""Login in a real Chromium: password mode, and OIDC against a real provider on loopback.

Before login every page URL shows only the login form; after login the gallery is there,
and an annotation saved from the browser carries the logged-in identity.
"""
from __future__ import annotations

import pytest

from core.annotations.store import AnnotationStore
from core.audit import AuditLog
from core.auth import User, hash_password, write_users
from core.config import DEMO_DIR
from tests.browser_support import SCREENSHOTS, browser_page, poll, streamlit_server, wait_until_idle
from tests.oidc_support import oidc_provider, write_streamlit_secrets
from ui.page_list import PAGES
from ui.page_list import page as page_info

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "correct horse battery"
HOME_PROOF = page_info("home").proof


def _env(folder, **extra) -> dict:
    return {"DISPLASIA_CACHE_DIR": str(folder / "cache"), "DISPLASIA_DB": f"sqlite:///{folder / 'a.sqlite'}",
            "DISPLASIA_AUDIT_PATH": str(folder / "audit.jsonl"), **extra}


def _assert_nothing_shown(page) -> None:
    body = page.inner_text("body")
    assert "Log in" in body
    for leak in (".jpg", "P(normal)", "Predicted dysplastic", "Gallery", "Annotate", "Cytoplasm", str(DEMO_DIR)):
        assert leak not in body, leak
    # no cell image, thumbnail or figure anywhere
    assert page.locator("[data-testid='stImage'], [data-testid='stImageContainer'], .js-plotly-plot, canvas, "
                        ".dn-map, [data-testid='cellTile']").count() == 0
    assert not page.locator("[data-testid='stException']").count()
    assert not page.locator("[data-testid='stSidebarNav']").count()     # not even the page names


def _save_condition(page) -> None:
    main = page.locator("[data-testid='stMain']")
    main.get_by_role("radiogroup", name="Cell condition").get_by_text("dysplastic", exact=True).click()
    wait_until_idle(page)




def test_password_login_in_chromium(tmp_path):
    users = tmp_path / "users.toml"
    write_users(users, {"ana": User("ana", "annotator", hash_password(PASSWORD))})
    env = _env(tmp_path, DISPLASIA_AUTH_MODE="password", DISPLASIA_AUTH_USERS_FILE=str(users))
    with streamlit_server(env) as url, browser_page() as page:
        for info in PAGES:                      # every page's own URL, before login
            page.goto(f"{url}/{info.url_path}?cell=TD_SNE_0000001.jpg")
            wait_until_idle(page)
            page.get_by_role("button", name="Log in").wait_for()
            _assert_nothing_shown(page)
        page.goto(url)
        wait_until_idle(page)
        page.get_by_label("User name").fill("ana")
        page.get_by_label("Password", exact=True).fill("wrong password!")
        page.get_by_role("button", name="Log in").click()
        page.get_by_text("wrong user name or password").wait_for()
        _assert_nothing_shown(page)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.get_by_text(HOME_PROOF).first.wait_for(timeout=240_000)
        assert "Logged in as ana" in page.inner_text("[data-testid='stSidebar']")
        page.get_by_role("link", name="Annotate").click()
        wait_until_idle(page)
        _save_condition(page)
        db = env["DISPLASIA_DB"]
        saved = poll(lambda: [a for a in AnnotationStore(db).all_latest() if a.annotator == "ana"])
        assert saved and saved[0].condition.value == "dysplastic"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "login_password_annotate.png"))
    events = [(r["event"], r["who"]) for r in AuditLog(tmp_path / "audit.jsonl").read()]
    assert ("login_failed", "ana") in events and ("login", "ana") in events and ("annotation_saved", "ana") in events


def test_oidc_login_in_chromium_against_a_real_provider(tmp_path):
    with oidc_provider() as provider:
        secrets_file = write_streamlit_secrets(tmp_path, provider)
        env = _env(tmp_path, DISPLASIA_AUTH_MODE="oidc", DISPLASIA_AUTH_ADMINS="root@hospital.test",
                   STREAMLIT_SECRETS_FILES=str(secrets_file), AUTHLIB_INSECURE_TRANSPORT="1")
        with streamlit_server(env) as url, browser_page() as page:
            page.goto(f"{url}/annotate")
            wait_until_idle(page)
            page.get_by_role("button", name="Log in").wait_for()
            _assert_nothing_shown(page)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "login_oidc.png"))
            page.get_by_role("button", name="Log in").click()
            # The provider's own authorisation page: who is logging in.
            page.wait_for_url(f"{provider}/oauth2/authorize**", timeout=60_000)
            page.locator("input[name='sub']").fill("ana@hospital.test")
            page.get_by_role("button", name="Authorize").click()
            page.wait_for_url(f"{url}/**", timeout=60_000)
            page.get_by_text(HOME_PROOF).first.wait_for(timeout=240_000)
            assert "Logged in as ana@hospital.test" in page.inner_text("[data-testid='stSidebar']").replace("\\", "")
            assert "Audit and settings" not in page.inner_text("[data-testid='stSidebar']")   # not an admin
            page.get_by_role("link", name="Annotate").click()
            wait_until_idle(page)
            _save_condition(page)
            db = env["DISPLASIA_DB"]
            saved = poll(lambda: [a for a in AnnotationStore(db).all_latest() if a.annotator == "ana@hospital.test"])
            assert saved and saved[0].condition.value == "dysplastic"
            assert set(AnnotationStore(db).latest_identities().values()) >= {"oidc"}
            # Log out: the identity cookie is gone, the login screen is back.
            page.get_by_role("button", name="Log out").click()
            page.wait_for_url(f"{provider}/oauth2/end_session**", timeout=60_000)   # the provider ends its session too
            page.get_by_role("button", name="End session").click()
            page.wait_for_url(f"{url}/**", timeout=60_000)
            page.get_by_role("button", name="Log in").wait_for(timeout=60_000)
            wait_until_idle(page)
            _assert_nothing_shown(page)
    events = [(r["event"], r["who"]) for r in AuditLog(tmp_path / "audit.jsonl").read()]
    assert ("login", "ana@hospital.test") in events and ("annotation_saved", "ana@hospital.test") in events
