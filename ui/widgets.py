"""Widgets whose values survive page switches and travel in the URL.

Streamlit forgets a widget's state when a page without it runs, so each value lives under
its own session key; the widget only mirrors it. URL values (``?key=value``) seed it once.
"""
from __future__ import annotations

import streamlit as st

_SEEDED = "_seeded_from_url"


def _parse(raw: str, default):
    if isinstance(default, bool):
        return raw.lower() in ("1", "true", "yes")
    if isinstance(default, int):
        return int(float(raw))
    if isinstance(default, float):
        return float(raw)
    return raw


def persistent(widget, label: str, key: str, default, *, url: bool = True, **kwargs):
    """Render ``widget`` (e.g. ``st.slider``) bound to session key ``key``; return its value.

    ``default`` (or the URL's value for ``key``) seeds the value the first time. With
    ``url=True`` the current value is written back to the query string, so the view can be
    shared. ``default=None`` marks an optional value (empty in the URL).
    """
    ss = st.session_state
    seeded = ss.setdefault(_SEEDED, set())
    if key not in ss:
        value = default
        if url and key in st.query_params and key not in seeded:
            try:
                value = _parse(st.query_params[key], default) if default is not None else st.query_params[key]
            except ValueError:
                value = default
        ss[key] = value
        seeded.add(key)
    widget_key = f"w:{key}"
    ss[widget_key] = ss[key]

    def _store():
        ss[key] = ss[widget_key]

    value = widget(label, key=widget_key, on_change=_store, **kwargs)
    ss[key] = value
    if url:
        text = "" if value is None else (str(value).lower() if isinstance(value, bool) else str(value))
        if st.query_params.get(key) != text:
            st.query_params[key] = text
    return value
