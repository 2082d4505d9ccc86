"""Class activation maps: Grad-CAM, Grad-CAM++ and Score-CAM on one layer."""
import streamlit as st

from core.explain import get_method
from ui import context, display, explain_view as ev
from ui.widgets import persistent

st.title("Class activation maps")
ctx = context.current_cell()
context.cell_header(ctx)
desc = ctx.loaded.description
layers = list(desc.feature_map_layers)
layer = persistent(st.selectbox, "Layer", "cam.layer", desc.cam_layer, options=layers,
                   help=f"Default: {desc.cam_layer}, the post-ReLU output of the last conv block "
                        f"(an automatic 'last Conv2D' search would land on the linear {desc.last_conv}).")
for method in ("gradcam", "gradcam_pp", "scorecam"):
    st.session_state[f"{method}.layer"] = layer  # what the Compare page reuses
options = display.options_widget()
for column, method in zip(st.columns(3), ("gradcam", "gradcam_pp", "scorecam")):
    with column:
        st.subheader(get_method(method).title)
        exp = ev.explanation(method, ctx.loaded, ctx.image, ctx.target, {"layer": layer})
        if exp:
            ev.show_map(exp, ctx.rgb, options, height=360, key=f"{method}_map")
            ev.cache_note(method)
            ev.downloads(exp, ctx.rgb, options, ctx.cell.path.stem)
st.caption(get_method("gradcam_pp").load().__doc__.strip().splitlines()[0])
