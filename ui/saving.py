"""Saving a reading: the annotator's identity, the audit record, and edits kept while the
annotation database is down (saved on a later rerun once it is back)."""
from __future__ import annotations

import streamlit as st

from core.annotations.store import DatabaseUnavailable
from ui import auth, resources
from ui.widgets import plain

COALESCE_S = 120.0                    # edits of one cell within 2 minutes of its version's first save: one version
PENDING = "pending_annotations"       # {(image_sha256, annotator): Annotation} not yet stored


def save(reading) -> int | None:
    """Store ``reading`` if it changed; return its version, or None when the database is
    down (the reading then waits in this session and a one-line warning says so)."""
    pending = st.session_state.setdefault(PENDING, {})
    key = (reading.image_sha256, reading.annotator)
    try:
        version = resources.annotation_store().save(reading, only_if_changed=True, identity=auth.identity_source(),
                                                    coalesce_within_s=COALESCE_S)
    except DatabaseUnavailable as exc:
        pending[key] = reading
        st.warning(f"Not saved yet, kept in this session until the database is back: {plain(exc)}")
        return None
    pending.pop(key, None)
    auth.audit("annotation_saved", cell=reading.image, version=version, image_sha256=reading.image_sha256)
    return version


def flush() -> int:
    """Save every edit kept while the database was down; return how many are still waiting."""
    pending = st.session_state.get(PENDING) or {}
    for key, reading in list(pending.items()):
        try:
            version = resources.annotation_store().save(reading, only_if_changed=True,
                                                        identity=auth.identity_source())
        except DatabaseUnavailable:
            break
        del pending[key]
        auth.audit("annotation_saved", cell=reading.image, version=version, image_sha256=reading.image_sha256,
                   after_outage=True)
        st.toast(f"Saved an edit kept during the database outage (version {version}).")
    return len(pending)


def pending_reading(image_sha256: str, annotator: str):
    """The unsaved edit of this cell kept in the session, or None."""
    return (st.session_state.get(PENDING) or {}).get((image_sha256, annotator))
