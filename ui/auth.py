"""The login gate, the current identity and its role, and the audit hooks of the pages.

``require_login()`` runs in app.py before the navigation is built: with ``[auth] mode`` set
to ``password`` or ``oidc`` and nobody logged in, it draws the login form (or the identity
provider's button) and stops the script, so no page, image, score, annotation or file list
is ever sent to the browser before login. With ``mode = none`` everyone is admin and the
annotator types a name, stored as self-declared (unverified in exports).

Password sessions live in the server's session state: closing or reloading the tab logs out.
OIDC sessions are Streamlit's signed identity cookie (``st.login``/``st.logout``).
"""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from core.auth import PasswordAuthenticator, allowed, oidc_role, password_role
from core.errors import DisplasiaError
from ui import widgets

IDENTITY = "auth_identity"
_AUDITED = "audit_seen"


@dataclass(frozen=True)
class Identity:
    """Who is using this session: name, role and how the name was established."""

    name: str
    role: str
    mode: str                  # "password" | "oidc" | "none"

    @property
    def verified(self) -> bool:
        return self.mode != "none"


def _settings():
    from core.settings import load_settings

    return load_settings().auth


def mode() -> str:
    try:
        return _settings().mode
    except DisplasiaError:
        return "none"             # state.init() stops the page with the settings error


@st.cache_resource
def _authenticator(users_file: str, max_failures: int, window_s: int) -> PasswordAuthenticator:
    """One per users file and process: the failed-login counts are shared by every session."""
    return PasswordAuthenticator(users_file, max_failures=max_failures, window_s=window_s)


def current() -> Identity | None:
    """The logged-in identity; with login off, the self-declared annotator name (or None)."""
    settings = _settings()
    if settings.mode == "none":
        from ui.annotate import ANNOTATOR

        name = str(st.session_state.get(ANNOTATOR) or "").strip()
        return Identity(name, "admin", "none") if name else None
    if settings.mode == "password":
        return st.session_state.get(IDENTITY)
    if not st.user.is_logged_in:
        return None
    name = str(st.user.get("email") or st.user.get("sub") or "").strip()
    if not name:
        return None
    identity = Identity(name, oidc_role(name, admins=settings.admins, annotators=settings.annotators), "oidc")
    if st.session_state.get(IDENTITY) != identity:
        st.session_state[IDENTITY] = identity
        audit("login", role=identity.role)
    return identity


def role() -> str | None:
    """The session's role; "admin" when login is off (a trusted single-user set-up)."""
    if mode() == "none":
        return "admin"
    identity = current()
    return identity.role if identity else None


def may(action: str) -> bool:
    """May this session do ``action`` ("view", "annotate", "upload_model", "admin")?"""
    return allowed(role(), action)


def require_login() -> str:
    """Return the session's role; without a logged-in identity draw the login and stop."""
    settings = _settings()
    if settings.mode == "none":
        return "admin"
    identity = current()
    if identity is None:
        # A navigation of one hidden page replaces the page list, so not even the names of
        # the pages reach the browser (Streamlit would otherwise list the pages/ folder).
        st.navigation([st.Page(_login_page, title="Log in", default=True)], position="hidden").run()
        widgets.stop()
    with st.sidebar:
        cols = st.columns([3, 2])
        cols[0].caption(f"Logged in as {plain(identity.name)} · {identity.role}")
        if cols[1].button("Log out", key="auth_logout"):
            audit("logout")
            st.session_state.pop(IDENTITY, None)
            if identity.mode == "oidc":
                st.logout()           # clears Streamlit's identity cookie and starts a new session
            else:
                st.rerun()
    return identity.role


def _login_page() -> None:
    settings = _settings()
    st.title("DisplasiaNet explainer")
    if settings.mode == "password":
        _password_form(settings)
    else:
        _oidc_button(settings)


def plain(text: str) -> str:
    """``text`` with Markdown/HTML characters escaped, for names shown in captions."""
    return "".join("\\" + c if c in "\\`*_{}[]()#+-.!|<>~$&:" else c for c in str(text))


def _client() -> str | None:
    try:
        return st.context.ip_address
    except Exception:             # not available in every runtime (AppTest)
        return None


def _password_form(settings) -> None:
    with st.form("login"):
        name = st.text_input("User name", key="login_user", max_chars=64)
        password = st.text_input("Password", type="password", key="login_password", max_chars=1024)
        submitted = st.form_submit_button("Log in")
    if not submitted:
        return
    authenticator = _authenticator(str(settings.users_file), settings.max_failed_logins, settings.lockout_seconds)
    try:
        user = authenticator.authenticate(name, password, client=_client())
    except DisplasiaError as exc:
        _audit_as(name[:64] or "?", "login_locked" if "too many" in str(exc) else "login_failed", False)
        st.error(str(exc))
        return
    identity = Identity(user.name, password_role(user, admins=settings.admins), "password")
    st.session_state[IDENTITY] = identity
    st.session_state.pop("login_password", None)
    audit("login", role=identity.role)
    st.rerun()


def _oidc_button(settings) -> None:
    st.write("Log in with the hospital's account to see the cells.")
    if st.button("Log in", key="auth_oidc_login", type="primary"):
        try:
            st.login(settings.oidc_provider or None)
        except Exception as exc:  # Streamlit raises its own error types for missing [auth] secrets
            st.error(f"Login is not configured on this server: {str(exc).splitlines()[0] if str(exc) else exc}")


# ------------------------------------------------------------------ audit hooks

def _audit_as(who: str, event: str, verified: bool, **fields) -> None:
    from core.audit import record
    from ui import state

    fields.setdefault("dataset", st.session_state.get(state.DATASET))
    try:
        record(event, who=who, verified=verified, **fields)
    except DisplasiaError as exc:
        # The audit log must not take the dashboard down; the server log keeps the reason.
        import logging

        logging.getLogger(__name__).error("audit log: %s", exc)


def audit(event: str, **fields) -> None:
    """Write an audit record for this session's identity (``anonymous`` if none)."""
    identity = current()
    _audit_as(identity.name if identity else "anonymous", event, bool(identity and identity.verified), **fields)


def audit_explain(method: str, target: str, params: dict, key: str, *, from_cache: bool, cell: str | None = None) -> None:
    """Record a map shown to this session (once per session and cache key)."""
    from ui import state

    seen = st.session_state.setdefault(_AUDITED, set())
    if key in seen:
        return
    seen.add(key)
    audit("explain", cell=cell or st.session_state.get(state.CELL), method=method, target=target,
          params=dict(params), from_cache=from_cache, key=key)


def identity_source() -> str:
    """How the annotator's name is established, as the store records it."""
    m = mode()
    return m if m in ("password", "oidc") else "self-declared"
