"""Home: the dataset as a gallery of cells with the model's score, prediction and label."""
import streamlit as st

from ui import context, gallery, state
from ui.widgets import plain

st.title("Cells")
view = context.dataset_view()
sel = state.selection()
st.caption(f"Model: {plain(view.loaded.source)} · threshold {sel.threshold:.3f} · score = P(normal)")
gallery.summary(view.table)
gallery.skipped(view.dataset)
shown = gallery.filters(view.table)
tab_grid, tab_table = st.tabs(["Gallery", "Table"])
with tab_grid:
    gallery.grid(shown, current=sel.cell)
with tab_table:
    gallery.table(shown)
