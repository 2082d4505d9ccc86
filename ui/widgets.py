"""Widgets whose values survive page switches and travel in the URL.

Streamlit forgets a widget's state when a page without it runs, so each value lives under
its own session key; the widget only mirrors it. URL values (``?key=value``) seed it once.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import streamlit as st

_SEEDED = "_seeded_from_url"


def plain(text) -> str:
    """``text`` with every Markdown/HTML character escaped, for names shown through st.markdown,
    st.caption, st.error... (a file named ``![t](https://host)`` must not make browsers fetch it).
    Dots, dashes and slashes stay readable; a leading list or heading marker is escaped.

    >>> print(plain("![t](https://host)_x*.jpg"))
    \\!\\[t\\]\\(https\\://host\\)\\_x\\*.jpg
    >>> print(plain("- not a list; 1. not either"), plain("1. cell.jpg"))
    \\- not a list; 1. not either 1\\. cell.jpg
    """
    text = " ".join(str(text).splitlines())
    out = "".join("\\" + c if c in _MARKDOWN_SPECIAL else c for c in text)
    if out[:1] in ("-", "="):
        return "\\" + out
    digits = len(out) - len(out.lstrip("0123456789"))
    if digits and out[digits:digits + 1] in (".", ")"):  # "1. x.jpg" would start an ordered list
        return out[:digits] + "\\" + out[digits:]
    return out


_MARKDOWN_SPECIAL = frozenset("\\`*_{}[]()#+!|<>~$&:")


def _number(raw: str) -> float | None:
    try:
        number = float(raw)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _parse(raw: str, default, kwargs: dict | None = None):
    """A URL value as the widget's type, or ``default`` when it does not parse.

    The type comes from ``default``, or, for an optional value (``default=None``), from the
    widget's ``min_value``; numbers are clamped to ``min_value``..``max_value`` (``1e9`` becomes
    the maximum, ``nan`` and ``inf`` the default); a choice not among ``options`` is the default.

    >>> _parse("5", None, {"min_value": 1, "max_value": 40}), _parse("1e9", 2, {"max_value": 50})
    (5, 50)
    >>> _parse("nan", 0.15, {}), _parse("inf", 3, {}), _parse("x", "grey", {"options": ["grey", "mean"]})
    (0.15, 3, 'grey')
    """
    kwargs = kwargs or {}
    raw = str(raw)
    if isinstance(default, bool):
        return raw.lower() in ("1", "true", "yes")
    kind = default if default is not None else kwargs.get("min_value", kwargs.get("max_value"))
    if isinstance(kind, int | float) and not isinstance(kind, bool):
        if default is None and raw.strip().lower() in ("", "none", "default"):
            return None
        number = _number(raw)
        if number is None:
            return default
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        if low is not None:
            number = max(number, float(low))
        if high is not None:
            number = min(number, float(high))
        return int(round(number)) if isinstance(kind, int) else float(number)
    options = kwargs.get("options")
    if options is not None:
        return raw if raw in [str(o) for o in options] else default
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
            value = _parse(st.query_params[key], default, kwargs)
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
        write_url({key: text})
    return value


_URL_PENDING = "_url_pending"


def write_url(values: dict) -> None:
    """Put ``values`` in the query string: at the end of the run when the run is inside
    :func:`url_batch` (one message and one browser history update for all of them), at once
    otherwise (a fragment's rerun, a page run on its own). Each write is a message, and the
    browser's history update and URL parsing cost ~25 ms each: a page switch wrote ten."""
    pending = st.session_state.get(_URL_PENDING)
    if pending is not None:
        pending.update(values)
        return
    current = st.query_params.to_dict()
    if any(current.get(k) != v for k, v in values.items()):
        st.query_params.from_dict({**current, **values})


def flush_url() -> None:
    """Write the values :func:`url_batch` kept so far in this run (one message); it goes on
    collecting."""
    ss = st.session_state
    pending = ss.get(_URL_PENDING)
    if pending:
        # written even when the server believes they are there: after a page switch the
        # browser's address can lack values of a run the switch interrupted
        st.query_params.from_dict({**st.query_params.to_dict(), **pending})
        ss[_URL_PENDING] = {}


@contextmanager
def url_batch():
    """Collect the run's :func:`write_url` values and write them once when the block ends (or
    at :func:`flush_url`). A run ended by ``st.stop()`` sends nothing more: stop with :func:`stop`."""
    ss = st.session_state
    ss[_URL_PENDING] = {}
    try:
        yield
        flush_url()
    finally:
        ss.pop(_URL_PENDING, None)


def stop():
    """``st.stop()``, after writing the run's pending query-string values."""
    flush_url()
    st.stop()


RUN_MARKER_CLASS = "dn-run-end"


def run_end_marker() -> None:
    """A hidden, empty element last on every page, numbered per run of the session.

    When it shows a number newer than before a click, the run's last element is on the page:
    browser tests and the measure scripts use it to know a page is complete (Streamlit shows
    its "running" widget only after a delay, so its absence proves nothing early in a run).
    """
    ss = st.session_state
    ss["_run_number"] = number = ss.get("_run_number", 0) + 1
    st.html(f'<span class="{RUN_MARKER_CLASS}" data-run="{number}" hidden></span>')


def deferred_download(container, label: str, make, file_name: str, mime: str, *, key: str, help: str | None = None,
                      icon: str | None = ":material/download:") -> None:
    """A download button whose bytes ``make()`` builds only when it is clicked, never on a
    rerun; the click does not rerun the page."""
    container.download_button(label, make, file_name, mime, key=key, help=help, icon=icon, on_click="ignore")
