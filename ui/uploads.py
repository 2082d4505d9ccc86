"""Streamlit side of upload folders (``core.uploads``): one private folder per session,
deleted when the session ends; folders older than ``uploads.ttl_hours`` swept at start-up."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.errors import DisplasiaError
from core.uploads import SessionFolder, max_upload_bytes, safe_name, sweep
from ui import widgets
from ui.widgets import plain

_HOLDER = "upload_folder_holder"


@st.cache_resource(show_spinner=False)
def startup_sweep() -> tuple:
    """Delete stale upload folders once per server process; returns what was deleted."""
    try:
        return tuple(str(p) for p in sweep())
    except DisplasiaError:
        return ()


def session_folder() -> Path:
    """This session's upload folder (created on first use, deleted when the session ends)."""
    startup_sweep()
    holder = st.session_state.get(_HOLDER)
    if holder is None or not holder.alive:
        try:
            holder = SessionFolder()
        except DisplasiaError as exc:
            st.error(plain(str(exc)))
            widgets.stop()
        st.session_state[_HOLDER] = holder
    return holder.path


def save(upload, folder: Path) -> Path:
    """Write one uploaded file into ``folder`` under a harmless name; refuse oversized files."""
    limit = max_upload_bytes()
    size = getattr(upload, "size", None)
    data = upload.getvalue() if size is None or size <= limit else b""
    if size is None:
        size = len(data)
    if size > limit:
        st.error(f"The file is {size / 2**20:.1f} MiB, more than the limit of {limit / 2**20:.0f} MiB.")
        widgets.stop()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / safe_name(upload.name)
    target.write_bytes(data)
    return target
