"""The session's budget of dataset-wide work (``core.quota``), kept in its session state."""
from __future__ import annotations

import streamlit as st

from core.errors import DisplasiaError
from core.quota import WorkBudget
from ui import widgets
from ui.widgets import plain

_KEY = "work_budget"


def budget() -> WorkBudget:
    if _KEY not in st.session_state:
        st.session_state[_KEY] = WorkBudget()
    return st.session_state[_KEY]


def charge(units: int, what: str) -> None:
    """Spend ``units`` of this session's budget, or show one red line and stop the page."""
    try:
        budget().charge(units, what=what)
    except DisplasiaError as exc:
        st.error(plain(str(exc)))
        widgets.stop()
