"""Home: the dataset as a gallery of cells with the model's score, prediction and label.

Scores come from the persistent score store, so this page never waits for TensorFlow;
missing scores are computed in the background and fill in as they come.
"""
import streamlit as st

from ui import context, gallery, models, state
from ui.widgets import plain

st.title("Cells")
view = context.score_view()
sel = state.selection()
st.caption(f"Model: {plain(sel.model.label)} (key {models.url_key(sel.model) or '?'}) · "
           f"threshold {sel.threshold:.3f} · score = P(normal)")
gallery.live(view, current=sel.cell)
