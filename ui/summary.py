"""Summary page parts: the study loaded once per (model, dataset, threshold), the evidence
computation behind a button with progress, and table/figure blocks with downloads."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.io_utils import frame_csv_bytes
from ui import resources, state

SUMMARY = "summary_result"


@st.cache_resource(show_spinner="Reading the dataset and its annotations…", max_entries=4)
def study(model_hash: str, root: str, threshold: float, interpolation: str, annotations_version: int, _loaded):
    from core.summary import load_study

    return load_study(root, _loaded, store=resources.annotation_store(), threshold=threshold, interpolation=interpolation)


def current_study(view):
    sel = state.selection()
    store = resources.annotation_store()
    with state.user_errors():
        return study(view.loaded.description.content_hash, str(view.dataset.root), sel.threshold, sel.interpolation,
                     store.count_versions(), view.loaded)


def table_block(title: str, frame: pd.DataFrame | None, name: str, *, caption: str = "") -> None:
    if frame is None or frame.empty:
        return
    st.markdown(f"**{title}**")
    if caption:
        st.caption(caption)
    st.dataframe(frame, hide_index=True)
    st.download_button(f"{title} (CSV)", frame_csv_bytes(frame), f"{name}.csv", "text/csv", key=f"csv_{name}")


def figure_block(fig, name: str) -> None:
    if fig is not None:
        st.plotly_chart(fig, key=f"fig_{name}", config={"displaylogo": False,
                                                         "toImageButtonOptions": {"format": "png", "filename": name}})


def compute_evidence(stud, methods, patches, steps: int, randomisation_cells: int) -> None:
    from core.summary.engine import summarise_dataset

    bar = st.progress(0.0, text="Starting…")
    stage = {"name": ""}

    def on_stage(name):
        stage["name"] = name

    def progress(done, total):
        bar.progress(min(done / max(total, 1), 1.0), text=f"{stage['name']}… {done / max(total, 1):.0%}")

    st.session_state[SUMMARY] = summarise_dataset(
        stud, methods=methods, patches=patches, steps=steps, randomisation_cells=randomisation_cells,
        cache=resources.explanation_cache(), progress=progress, on_stage=on_stage)
    bar.empty()


def open_cell(names, *, key: str) -> None:
    """Pick one of ``names``, make it the current cell and go to the Compare page."""
    if not len(names):
        return
    cols = st.columns([3, 1])
    name = cols[0].selectbox("Open a cell", list(names), key=f"open_{key}", label_visibility="collapsed")
    if cols[1].button("Open in Compare", key=f"go_{key}"):
        st.session_state[state.CELL] = name
        st.switch_page("pages/compare.py")


def cell_report(stud, name: str) -> None:
    """Build the one-cell HTML report on request, then offer it for download."""
    from core.summary.report import cell_report_html

    key = f"cell_report:{name}"
    if st.button(f"Build the report of {name}", key="build_cell_report"):
        with st.spinner("Computing every method for this cell…"):
            st.session_state[key] = cell_report_html(stud, stud.index(name), cache=resources.explanation_cache())
    if key in st.session_state:
        st.download_button(f"Download the report of {name}", st.session_state[key], f"{name}_report.html", "text/html",
                           key="dl_cell_report")
