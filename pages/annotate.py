"""Annotate: outline the cell and nucleus, score it as a pathologist; every change is saved."""
import streamlit as st

from ui import annotate, annotate_tools, context

st.title("Annotate")
ctx = context.current_cell()
name = annotate.annotator()
if not name:
    st.info("Enter your name to start annotating. Your readings are saved under it.")
    st.stop()
annotate.navigation(context.dataset().names(), ctx.cell.name, name)
start, saved_before = annotate.starting_reading(ctx.cell, ctx.rgb, name)
key = f"{start.image_sha256[:12]}:{name}"
st.markdown(f"**{ctx.cell.name}** · model score {ctx.score:.4f} → {ctx.prediction} · dataset label: {ctx.cell.label or 'unlabelled'}")
draw, read = st.columns([3, 2])
with read:
    choices = annotate.reading_widgets(start, key)
with draw:
    shapes = annotate.canvas(start, ctx.rgb, choices, key)
reading = start.with_updates(shapes=tuple(shapes), updated=None, **choices)
with read:
    annotate.score_panel(reading)
    annotate.autosave(start, saved_before, reading)
    annotate_tools.suggest(reading, ctx.rgb)
with st.expander("Import and export"):
    annotate_tools.legacy_import(ctx.cell, name)
    annotate_tools.exports(reading, ctx.rgb)
annotate.agreement(ctx.cell)
