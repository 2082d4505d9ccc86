"""Gallery widgets for the Home page: summary, filters, thumbnail grid, table.

Filters and sorting work on the score table only; the grid shows one page of 48 cells and
loads only those thumbnails (small JPEGs cached on disk), so a 20,000-cell dataset pages as
fast as the demo. Scores come from the persistent store; while the background job fills in
missing ones, the gallery redraws itself every second (every 3 s above 2,000 cells; a
fragment), then the whole page once.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.display import webp_data_url
from core.errors import DisplasiaError
from core.io_utils import frame_csv_bytes
from ui import context, resources, state
from ui.tile_grid import UNREADABLE, Tile, tile_grid

PAGE_SIZE = 48
COLUMNS = 6
SORTS = ["name", "score ↑", "score ↓"]
POLL_S = 1.0                     # while scores are missing, the gallery redraws this often
POLL_LARGE_S = 3.0               # ... above LARGE cells (a redraw then costs more)
LARGE = 2000
AGREEMENT = ["all", "agree", "disagree", "unlabelled"]


def live(view, current: str | None) -> None:
    """The gallery; while scores are missing, a fragment redraws it every second (3 s above
    2,000 cells)."""
    if view.job is None or not view.missing:
        body(view, current)
        resources.page_drawn()
        return
    if view.job.finished and view.job.error:
        st.error(view.job.error)
        body(view, current)
        return

    @st.fragment(run_every=POLL_S if len(view.table) <= LARGE else POLL_LARGE_S)
    def refresh():
        now = context.score_view()
        if not now.missing or now.job is None or (now.job.finished and now.job.error):
            st.rerun(scope="app")
        body(now, current)

    refresh()
    resources.page_drawn()      # thumbnails sent: the scoring job may load TensorFlow now


def body(view, current: str | None) -> None:
    summary(view.table, missing=view.missing)
    skipped(view.dataset)
    shown = filters(view.table)
    # Only the open tab runs: the 20,000-row table is not rebuilt and resent on every page turn.
    tab_grid, tab_table = st.tabs(["Gallery", "Table"], key="gallery_tab", on_change="rerun")
    if tab_grid.open:
        with tab_grid:
            grid(shown, current=current)
    if tab_table.open:
        with tab_table:
            table(shown)


def summary(table: pd.DataFrame, *, missing: int = 0) -> None:
    labelled = table[table["label"].notna() & table["score"].notna()]
    cols = st.columns(4)
    cols[0].metric("Cells", f"{len(table):,}")
    cols[1].metric("Predicted dysplastic", int((table["prediction"] == "dysplastic").sum()))
    if len(labelled):
        cols[2].metric("Agree with dataset label", f"{labelled['agrees'].astype(bool).mean():.1%}")
        cols[3].metric("Disagree", int((labelled["agrees"] == False).sum()))  # noqa: E712
    if missing:
        done = len(table) - missing
        st.progress(done / max(len(table), 1), text=f"Scoring cells in the background: {done:,} of {len(table):,} scored")
    else:
        st.caption(f"All {len(table):,} cells scored.")


def skipped(dataset) -> None:
    """List the files of the dataset that could not be used (the other cells still show)."""
    items = getattr(dataset, "skipped", ())
    if items:
        with st.expander(f"{len(items)} file(s) skipped: unreadable or outside the shared folders",
                         icon=":material/warning:"):
            st.dataframe(pd.DataFrame(list(items), columns=["file", "reason"]), hide_index=True)


def filters(table: pd.DataFrame) -> pd.DataFrame:
    """Group, agreement and order, on the table only (no image is touched)."""
    ss = st.session_state
    left, mid, right = st.columns([3, 2, 2])
    groups = sorted(table["group"].unique())
    if "gallery_groups" in ss:                   # another dataset's groups: keep those that exist here
        kept = [g for g in ss["gallery_groups"] if g in groups]
        ss["gallery_groups"] = kept or groups
    else:
        ss["gallery_groups"] = groups
    chosen = left.multiselect("Groups", groups, key="gallery_groups")
    agreement = mid.radio("Agreement", AGREEMENT, horizontal=True, key="gallery_agreement")
    order = right.selectbox("Sort by", SORTS, key="gallery_sort")
    signature = (tuple(chosen), agreement, order, len(table))
    if ss.get("gallery_filters") != signature:   # new filters: back to the first page
        ss["gallery_filters"] = signature
        ss.pop("gallery_page", None)
    shown = table[table["group"].isin(chosen)]
    if agreement == "agree":
        shown = shown[shown["agrees"] == True]  # noqa: E712
    elif agreement == "disagree":
        shown = shown[shown["agrees"] == False]  # noqa: E712
    elif agreement == "unlabelled":
        shown = shown[shown["label"].isna()]
    if order != "name":
        shown = shown.sort_values("score", ascending=order == "score ↑", na_position="last", kind="stable")
    return shown


def _caption(row) -> tuple[str, str]:
    """Score line and label line under a thumbnail (plain text: the tile never renders HTML)."""
    # iterrows may turn a missing label or agreement into NaN instead of None
    agrees, known_label = row["agrees"], isinstance(row["label"], str)
    mark = "" if agrees is None or agrees != agrees else (" ✓" if agrees else " ✗")
    label = f"label: {row['label'] if known_label else 'unlabelled'}"
    if row["score"] != row["score"]:             # NaN: not scored yet
        return "scoring…", label
    return f"{row['score']:.3f} → {row['prediction']}", label + mark


def _thumbnail_src(path: str) -> str:
    """The tile's picture; a grey square for a file that cannot be decoded (a large folder is
    shown before its images are checked; the scoring job then lists it as skipped)."""
    try:
        return webp_data_url(resources.thumbnail(path))
    except DisplasiaError:
        return UNREADABLE


def grid(shown: pd.DataFrame, current: str | None) -> None:
    if shown.empty:
        st.info("No cell matches these filters.")
        return
    pages = max(1, -(-len(shown) // PAGE_SIZE))
    page = 1
    if pages > 1:
        left, right = st.columns([1, 5])
        page = left.number_input("Page", 1, pages, 1, key="gallery_page")
        right.caption(f"Page {page} of {pages:,} · cells {(page - 1) * PAGE_SIZE + 1:,}-"
                      f"{min(page * PAGE_SIZE, len(shown)):,} of {len(shown):,}")
    chunk = shown.iloc[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    tiles = [Tile(row["name"], _thumbnail_src(row["path"]), *_caption(row), current=row["name"] == current)
             for _, row in chunk.iterrows()]
    picked = tile_grid(tiles, columns=COLUMNS, key="gallery_tiles")
    if picked and picked != current and picked in set(chunk["name"]):
        st.session_state[state.CELL] = picked
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
    # The CSV is made on click: made on every rerun it cost 0.2-1.5 s per page turn at 20,000 cells.
    st.download_button("Download table (CSV)", lambda: frame_csv_bytes(shown.drop(columns=["path"])),
                       "predictions.csv", "text/csv", key="gallery_csv")
