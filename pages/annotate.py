"""Annotate: outline the cell and nucleus, score it as a pathologist; every change is saved."""
import streamlit as st

from ui import annotate, annotate_tools, context, widgets
from ui.widgets import plain

st.title("Annotate")
cell, rgb = context.current_record()
name = annotate.annotator()
if not name:
    st.info("Enter your name to start annotating. Your readings are saved under it.")
    widgets.stop()
annotate.navigation(context.dataset().names(), cell.name, name)
annotate.shortcuts()
start, saved_before = annotate.starting_reading(cell, rgb, name)
key = f"{start.image_sha256[:12]}:{name}"
st.markdown(f"**{plain(cell.name)}** · {context.score_line(cell)} · dataset label: {cell.label or 'unlabelled'}")
annotate.legend()
draw, read = st.columns([3, 2])
with read:
    panel = st.container()          # scores on top of the column: in view at 1440 x 900
    choices = annotate.reading_widgets(start, key)
with draw:
    shapes = annotate.canvas(start, rgb, choices, key)
reading = start.with_updates(shapes=tuple(shapes), updated=None, **choices)
with panel:
    annotate.score_panel(reading)
with read:
    annotate.autosave(start, saved_before, reading)
    annotate_tools.suggest(reading, rgb)
with st.expander("Import and export"):
    annotate_tools.legacy_import(cell, name)
    annotate_tools.exports(reading, rgb)
annotate.agreement(cell)
