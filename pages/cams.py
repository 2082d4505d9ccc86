"""Class activation maps: Grad-CAM, Grad-CAM++ and Score-CAM on one layer."""
import streamlit as st

from core.explain import get_method, method_names
from ui import context, display
from ui import explain_view as ev
from ui.widgets import persistent

CAMS = method_names(family="cam")

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
for row in range(0, len(CAMS), 3):
    for column, method in zip(st.columns(3), CAMS[row:row + 3]):
        with column:
            spec = get_method(method)
            st.subheader(spec.title)
            exp = ev.explanation(method, ctx.loaded, ctx.image, ctx.target, params)
            if exp:
                ev.empty_map_note(exp, ctx.target)
                ev.show_map(exp, ctx.rgb, options, height=360, key=f"{method}_map")
                ev.cache_note(method)
                ev.downloads(exp, ctx.rgb, options, ctx.cell.path.stem)
st.caption(" · ".join(f"{get_method(m).title}: {get_method(m).reference}" for m in CAMS))
