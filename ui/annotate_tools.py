"""Annotate page tools: outline suggestion, legacy import, exports."""
from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

from core.annotations.export import overlay_image, write_csv
from core.display import png_bytes
from core.errors import DisplasiaError
from ui import resources
from ui.annotate import GENERATION
from ui.widgets import deferred_download, plain


def suggest(reading, rgb) -> None:
    from core.annotations.segment import suggest_outlines

    if st.button("Suggest outlines", key="ann_suggest", help="Classical segmentation of the central cell; edit it after."):
        shapes = suggest_outlines(rgb).shapes
        resources.annotation_store().save(reading.with_updates(shapes=shapes, updated=None), only_if_changed=True)
        st.session_state[GENERATION] = st.session_state.get(GENERATION, 0) + 1
        st.rerun()


def legacy_import(cell, name: str) -> None:
    from core.annotations.legacy import read_legacy_bytes

    upload = st.file_uploader("Import the earlier tool's file for this cell (<stem>_json.txt)", type=["txt", "json"],
                              key="ann_legacy")
    if upload and st.button("Import", key="ann_legacy_go"):
        try:
            annotation, warnings = read_legacy_bytes(upload.getvalue(), Path(cell.path).read_bytes(), Path(cell.path).name,
                                                     annotator=name)
            version = resources.annotation_store().save(annotation, only_if_changed=True)
        except DisplasiaError as exc:
            st.error(f"Not imported: {plain(exc)}")
            return
        for warning in warnings:
            st.warning(plain(warning))
        st.success(f"Imported as version {version} for {plain(name)}.")
        st.session_state[GENERATION] = st.session_state.get(GENERATION, 0) + 1
        st.rerun()


def exports(reading, rgb) -> None:
    import tempfile

    cols = st.columns(3)
    stem = Path(reading.image).stem
    cols[0].download_button("Annotation JSON", json.dumps(reading.to_json(), indent=1), f"{stem}_{reading.annotator}.json",
                            "application/json", key="ann_json")
    deferred_download(cols[1], "Overlay PNG", lambda: png_bytes(overlay_image(rgb, reading)),
                      f"{stem}_{reading.annotator}_overlay.png", "image/png", key="ann_png", icon=None)

    def every_annotation() -> bytes:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "annotations.csv"
            store = resources.annotation_store()
            write_csv(store.all_latest(), path, store.latest_identities())
            return path.read_bytes()

    deferred_download(cols[2], "All annotations CSV", every_annotation, "annotations.csv", "text/csv", key="ann_csv",
                      icon=None)
