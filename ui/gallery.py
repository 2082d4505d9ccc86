"""Gallery widgets for the Home page: summary, filters, thumbnail grid, table."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.io_utils import frame_csv_bytes
from ui import resources, state

PAGE_SIZE = 24
COLUMNS = 6


def summary(table: pd.DataFrame) -> None:
    labelled = table[table["label"].notna()]
    cols = st.columns(4)
    cols[0].metric("Cells", len(table))
    cols[1].metric("Predicted dysplastic", int((table["prediction"] == "dysplastic").sum()))
    if len(labelled):
        cols[2].metric("Agree with dataset label", f"{labelled['agrees'].mean():.1%}")
        cols[3].metric("Disagree", int((labelled["agrees"] == False).sum()))  # noqa: E712


def skipped(dataset) -> None:
    """List the files of the dataset that could not be used (the other cells still show)."""
    items = getattr(dataset, "skipped", ())
    if items:
        with st.expander(f"{len(items)} file(s) skipped: unreadable or outside the shared folders",
                         icon=":material/warning:"):
            st.dataframe(pd.DataFrame(list(items), columns=["file", "reason"]), hide_index=True)


def filters(table: pd.DataFrame) -> pd.DataFrame:
    left, mid, right = st.columns([3, 2, 2])
    groups = sorted(table["group"].unique())
    chosen = left.multiselect("Groups", groups, default=groups, key="gallery_groups")
    agreement = mid.radio("Agreement", ["all", "agree", "disagree", "unlabelled"], horizontal=True, key="gallery_agreement")
    order = right.selectbox("Sort by", ["name", "score ↑", "score ↓"], key="gallery_sort")
    shown = table[table["group"].isin(chosen)]
    if agreement == "agree":
        shown = shown[shown["agrees"] == True]  # noqa: E712
    elif agreement == "disagree":
        shown = shown[shown["agrees"] == False]  # noqa: E712
    elif agreement == "unlabelled":
        shown = shown[shown["label"].isna()]
    if order != "name":
        shown = shown.sort_values("score", ascending=order == "score ↑")
    return shown


def _caption(row) -> str:
    """Score, prediction and label under a thumbnail (the file name is shown apart, as plain text)."""
    mark = "" if row["agrees"] is None else (" ✓" if row["agrees"] else " ✗")
    label = row["label"] or "unlabelled"
    return f"**{row['score']:.3f}** → {row['prediction']}  \nlabel: {label}{mark}"


def grid(shown: pd.DataFrame, current: str | None) -> None:
    if shown.empty:
        st.info("No cell matches these filters.")
        return
    pages = max(1, -(-len(shown) // PAGE_SIZE))
    page = st.number_input("Page", 1, pages, 1, key="gallery_page") if pages > 1 else 1
    chunk = shown.iloc[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    for start in range(0, len(chunk), COLUMNS):
        cols = st.columns(COLUMNS)
        for col, (_, row) in zip(cols, chunk.iloc[start:start + COLUMNS].iterrows()):
            with col.container(border=True):
                st.image(resources.thumbnail(row["path"]), width="stretch")
                st.text(row["name"])  # never Markdown: a file name can be ![t](https://host)
                st.markdown(_caption(row))
                is_current = row["name"] == current
                if st.button("Current" if is_current else "Select", key=f"pick_{row['name']}",
                             disabled=is_current, width="stretch"):
                    st.session_state[state.CELL] = row["name"]
                    st.rerun()


def table(shown: pd.DataFrame) -> None:
    event = st.dataframe(
        shown[["name", "group", "label", "score", "prediction", "agrees"]], hide_index=True,
        on_select="rerun", selection_mode="single-row", key="gallery_table",
        column_config={"score": st.column_config.ProgressColumn("score (P normal)", min_value=0.0, max_value=1.0, format="%.4f")},
    )
    rows = event.selection.rows if event else []
    if rows:
        name = shown.iloc[rows[0]]["name"]
        if name != st.session_state.get(state.CELL):
            st.session_state[state.CELL] = name
            st.rerun()
    st.download_button("Download table (CSV)", frame_csv_bytes(shown.drop(columns=["path"])),
                       "predictions.csv", "text/csv", key="gallery_csv")
