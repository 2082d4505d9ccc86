"""Saliency: vanilla gradient and SmoothGrad side by side."""
import streamlit as st

from ui import context, display, explain_view as ev

st.title("Saliency")
ctx = context.current_cell()
context.cell_header(ctx)
options = display.options_widget()
left, right = st.columns(2)
with left:
    st.subheader("Vanilla saliency")
    st.caption("|∂ logit / ∂ pixel|, max over colour channels; the logit is negated for the dysplastic class.")
    vanilla = ev.explanation("saliency", ctx.loaded, ctx.image, ctx.target, {})
    if vanilla:
        ev.show_map(vanilla, ctx.rgb, options, key="saliency_map")
        ev.cache_note("saliency")
        ev.downloads(vanilla, ctx.rgb, options, ctx.cell.path.stem)
with right:
    st.subheader("SmoothGrad")
    params = ev.param_widgets("smoothgrad", ctx.loaded)
    smooth = ev.explanation("smoothgrad", ctx.loaded, ctx.image, ctx.target, params)
    if smooth:
        ev.show_map(smooth, ctx.rgb, options, key="smoothgrad_map")
        ev.cache_note("smoothgrad")
        ev.downloads(smooth, ctx.rgb, options, ctx.cell.path.stem)
