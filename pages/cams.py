"""Class activation maps: Grad-CAM, Grad-CAM++ and Score-CAM on one layer."""
import streamlit as st

from core.explain import get_method
from ui import context, display, explain_view as ev
from ui.widgets import persistent

CAMS = ("gradcam", "gradcam_pp", "scorecam")

st.title("Class activation maps")
ctx = context.current_cell()
context.cell_header(ctx)
desc = ctx.loaded.description
layers = list(desc.feature_map_layers)
left, right = st.columns(2)
with left:
    layer = persistent(st.selectbox, "Layer", "cam.layer", desc.cam_layer, options=layers,
                       help=f"Default: {desc.cam_layer}, the post-ReLU output of the last conv block "
                            f"(an automatic 'last Conv2D' search would land on the linear {desc.last_conv}).")
with right:
    evidence = persistent(st.radio, "Evidence", "cam.evidence", "positive", options=["positive", "signed"], horizontal=True,
                          help=get_method("gradcam").param("evidence").help)
params = {"layer": layer, "evidence": evidence}
for method in CAMS:  # what the Compare page reuses
    st.session_state[f"{method}.layer"], st.session_state[f"{method}.evidence"] = layer, evidence
options = display.options_widget()
for column, method in zip(st.columns(3), CAMS):
    with column:
        st.subheader(get_method(method).title)
        exp = ev.explanation(method, ctx.loaded, ctx.image, ctx.target, params)
        if exp:
            if evidence == "positive" and not exp.maps[0].any():
                st.info(f"Nothing in this cell supports '{ctx.target}' at {layer}: the map is empty. "
                        "Choose 'signed' to see the evidence against it.")
            ev.show_map(exp, ctx.rgb, options, height=360, key=f"{method}_map")
            ev.cache_note(method)
            ev.downloads(exp, ctx.rgb, options, ctx.cell.path.stem)
st.caption(get_method("gradcam_pp").load().__doc__.strip().splitlines()[0])
