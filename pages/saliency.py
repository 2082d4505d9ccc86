"""Saliency: vanilla gradient and SmoothGrad side by side, absolute or signed."""
import streamlit as st

from ui import context, display
from ui import explain_view as ev
from ui.widgets import persistent

st.title("Saliency")
ctx = context.current_cell()
context.cell_header(ctx)
signed = persistent(st.radio, "Map", "saliency.signed", "no", options=["no", "yes"], horizontal=True,
                    format_func=lambda v: "signed: gradient × input (+ supports the class)" if v == "yes"
                    else "absolute: |gradient| (the study's map)")
st.session_state["smoothgrad.signed"] = signed  # what the Compare page reuses
if signed == "no":
    st.info("The absolute map is **the same for both classes**: it shows where the score is sensitive, not "
            "whether a place supports or opposes the class. Choose *signed* to see the direction.")
options = display.options_widget()
left, right = st.columns(2)
with left:
    st.subheader("Vanilla saliency")
    st.caption("∂ logit / ∂ pixel (logit negated for the dysplastic class): "
               + ("× pixel value, summed over colour channels." if signed == "yes" else "absolute, max over colour channels."))
    vanilla = ev.explanation("saliency", ctx.loaded, ctx.image, ctx.target, {"signed": signed})
    if vanilla:
        ev.show_map(vanilla, ctx.rgb, options, key="saliency_map")
        ev.cache_note("saliency")
        ev.downloads(vanilla, ctx.rgb, options, ctx.cell.path.stem)
with right:
    st.subheader("SmoothGrad")
    params = ev.param_widgets("smoothgrad", ctx.loaded, skip=("signed",)) | {"signed": signed}
    smooth = ev.explanation("smoothgrad", ctx.loaded, ctx.image, ctx.target, params)
    if smooth:
        ev.show_map(smooth, ctx.rgb, options, key="smoothgrad_map")
        ev.cache_note("smoothgrad")
        ev.downloads(smooth, ctx.rgb, options, ctx.cell.path.stem)
