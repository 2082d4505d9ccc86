"""Session state shared by every page: model, dataset, current cell, target, threshold.

The current selection also lives in the URL query string, so a view can be shared.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from core.config import DEFAULT_INTERPOLATION, DEFAULT_THRESHOLD, default_dataset
from core.errors import DisplasiaError
from core.explain.base import TARGET_CHOICES, TARGETS  # noqa: F401  (TARGETS: pages that need one class)
from ui import widgets
from ui.resources import ModelChoice
from ui.widgets import plain, write_url

MODEL = "model_choice"
DATASET = "dataset_root"
CELL = "cell"
TARGET = "target"
THRESHOLD = "threshold"
INTERPOLATION = "interpolation"
MODEL_NOTICE = "model_notice"           # why the URL's model is not the one shown
DATASET_KEYS = ("gallery_page",)        # widget state that belongs to one dataset


def default_model() -> ModelChoice:
    from ui.models import default_model as default

    return default()


def _model_from_url() -> ModelChoice:
    from ui import models

    wanted = st.query_params.get("model")
    if not wanted:
        return default_model()
    found = models.find(str(wanted).lower())
    if found is None:
        fallback = default_model()
        st.session_state[MODEL_NOTICE] = (f"The link names model {str(wanted)[:16]}…, which this server does not have "
                                          f"(an upload from another session that has expired, or another server); "
                                          f"showing {fallback.label} instead.")
        return fallback
    return found


def set_model(choice: ModelChoice) -> None:
    """Make ``choice`` the session's model until the user picks another one."""
    st.session_state[MODEL] = choice
    st.session_state.pop(MODEL_NOTICE, None)


def set_dataset(folder: str) -> None:
    """Open another dataset: no current cell yet, gallery filters back to showing everything."""
    ss = st.session_state
    ss[DATASET], ss[CELL] = str(folder), None
    for key in [k for k in ss if isinstance(k, str) and k.startswith(("gallery_", "w:gallery"))]:
        del ss[key]


def require_settings() -> None:
    """Stop the page with one red line when the server's settings (``core.settings``) are invalid.

    The router calls it first, before anything reads a setting (login, warm-up, sidebar).
    """
    from core.settings import load_settings

    try:
        load_settings()
    except DisplasiaError as exc:
        st.error(f"The server's settings are invalid, so the dashboard cannot start: {plain(exc)}")
        widgets.stop()


def init() -> None:
    """Fill defaults once per session, taking the URL's values where present.

    Invalid server settings (``core.settings``) stop every page with their one-line message.
    """
    require_settings()
    from ui.uploads import startup_sweep

    startup_sweep()  # once per server process: delete upload folders older than uploads.ttl_hours
    ss, qp = st.session_state, st.query_params
    if MODEL not in ss:
        ss[MODEL] = _model_from_url()
    ss.setdefault(DATASET, qp.get("dataset") if _allowed_dataset(qp.get("dataset")) else str(default_dataset()))
    ss.setdefault(CELL, qp.get("cell"))
    ss.setdefault(TARGET, qp.get("target") if qp.get("target") in TARGET_CHOICES else "predicted")
    ss.setdefault(THRESHOLD, _float(qp.get("threshold"), DEFAULT_THRESHOLD))
    ss.setdefault(INTERPOLATION, DEFAULT_INTERPOLATION)


def _allowed_dataset(value) -> bool:
    from ui.sidebar import is_allowed_folder

    return bool(value) and is_allowed_folder(Path(value))


def _float(value, default: float) -> float:
    try:
        number = float(value)
        return number if 0.0 < number < 1.0 else default
    except (TypeError, ValueError):
        return default


def sync_query_params() -> None:
    """Mirror the selection into the URL (model, dataset, cell, target, threshold)."""
    from ui.models import url_key

    ss = st.session_state
    wanted = {"dataset": ss[DATASET], "target": ss[TARGET], "threshold": f"{ss[THRESHOLD]:g}"}
    model = url_key(ss[MODEL])
    if model:
        wanted["model"] = model
    if ss.get(CELL):
        wanted["cell"] = ss[CELL]
    # Written on every run (with the page's own values, in one message at the end of the run):
    # after a page switch the browser's address can lack values the server still believes are
    # there (a run interrupted by the switch wrote them).
    write_url(wanted)


@dataclass(frozen=True)
class Selection:
    model: ModelChoice
    dataset: str
    cell: str | None
    target: str
    threshold: float
    interpolation: str


def selection() -> Selection:
    ss = st.session_state
    if MODEL not in ss:
        # A page ran without the router (first deep-link visit, see ui/__init__): go again.
        st.rerun()
    return Selection(ss[MODEL], ss[DATASET], ss.get(CELL), ss[TARGET], ss[THRESHOLD], ss[INTERPOLATION])


@contextmanager
def user_errors():
    """Show a DisplasiaError as one red line and stop the page, never a traceback."""
    try:
        yield
    except DisplasiaError as exc:
        st.error(plain(str(exc)))  # messages name files: never render them as Markdown
        widgets.stop()
