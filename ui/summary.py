"""Summary page parts: the study loaded once per (model, dataset, threshold), the evidence
computation behind a button with progress, and table/figure blocks with downloads."""
from __future__ import annotations

import pandas as pd
import streamlit as st

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
    st.download_button(f"{title} (CSV)", frame.to_csv(index=False).encode(), f"{name}.csv", "text/csv", key=f"csv_{name}")


def figure_block(fig, name: str) -> None:
    if fig is not None:
        st.plotly_chart(fig, key=f"fig_{name}", config={"displaylogo": False,
                                                         "toImageButtonOptions": {"format": "png", "filename": name}})


def compute_evidence(stud, methods, patches, steps: int, randomisation_cells: int) -> None:
    from core.summary.report import summarise_dataset

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
