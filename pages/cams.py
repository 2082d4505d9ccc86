"""Class activation maps: every registered CAM on one layer, one colour scale for all."""
import streamlit as st

from core.explain import get_method, method_names
from ui import cam_weights, compare_view, context
from ui.widgets import persistent

CAMS = method_names(family="cam")

st.title("Class activation maps")
ctx = context.current_cell()
context.cell_header(ctx)
desc = ctx.loaded.description
left, right = st.columns(2)
with left:
    layer = persistent(st.selectbox, "Layer", "cam.layer", desc.cam_layer, options=list(desc.feature_map_layers),
                       help=f"Default: {desc.cam_layer}, the post-ReLU output of the last conv block "
                            f"(an automatic 'last Conv2D' search would land on the linear {desc.last_conv}).")
with right:
    evidence = persistent(st.radio, "Evidence", "cam.evidence", "positive", options=["positive", "signed"], horizontal=True,
                          help=get_method(CAMS[0]).param("evidence").help)
params = {"layer": layer, "evidence": evidence}
for method in CAMS:  # what the Compare page reuses
    st.session_state[f"{method}.layer"], st.session_state[f"{method}.evidence"] = layer, evidence
compare_view.grid(ctx, CAMS, lambda method: params, columns=3, height=380, max_side=299, links=False,
                  downloads=True, cell_tile=False, compact=False, key="cams")
cam_weights.scorecam_weights(ctx, params)
st.caption(" · ".join(f"{get_method(m).title}: {get_method(m).reference}" for m in CAMS))
