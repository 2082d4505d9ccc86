"""Occlusion sensitivity: the target probability with a patch hidden at each place."""
import streamlit as st

from core.display import DisplayOptions
from ui import context, display, explain_view as ev
from ui.widgets import persistent

STUDY_PATCHES = (5, 10, 20, 40)

st.title("Occlusion sensitivity")
ctx = context.current_cell()
context.cell_header(ctx)
cols = st.columns(4)
with cols[0]:
    choice = persistent(st.selectbox, "Patch size (px)", "occlusion.patch_choice", "20", options=["5", "10", "20", "40", "free"])
with cols[1]:
    patch = int(choice) if choice != "free" else persistent(st.number_input, "Free patch size", "occlusion.patch_free", 15,
                                                              min_value=1, max_value=299, step=1)
    st.session_state["occlusion.patch"] = patch  # what the Compare page reuses
with cols[2]:
    stride = persistent(st.number_input, "Stride (empty = patch)", "occlusion.stride", None, min_value=1, max_value=299,
                        step=1, placeholder="= patch")
with cols[3]:
    fill = persistent(st.selectbox, "Fill", "occlusion.fill", "mean", options=["mean", "grey", "blur"],
                      help="mean: the patch's own mean colour (study); grey: 0.5; blur: a blurred copy.")
options = display.options_widget()
params = {"patch": patch, "stride": stride, "fill": fill}
exp = ev.explanation("occlusion", ctx.loaded, ctx.image, ctx.target, params)
if exp:
    base = float(exp.baseline[0])
    raw = DisplayOptions(cmap=options.cmap, opacity=options.opacity, normalisation="raw", signed=True)
    left, right = st.columns(2)
    with left:
        ev.show_map(exp, ctx.rgb, DisplayOptions(cmap=options.cmap, opacity=options.opacity, normalisation="raw"),
                    title=f"P({ctx.target}) with the patch in place", colorbar_title="probability",
                    marks={f"baseline {base:.3f}": base}, key="occ_score")
    with right:
        ev.show_map(exp, ctx.rgb, raw, values=exp.extras["difference"][0], title="change from the baseline",
                    colorbar_title="Δ probability", key="occ_diff")
    ev.cache_note("occlusion")
    st.markdown(f"Baseline P({ctx.target}) = **{base:.4f}** · largest reduction **{float(exp.extras['max_reduction'][0]):.2%}** · "
                f"largest increase **{float(exp.extras['max_increase'][0]):.2%}**")
    ev.downloads(exp, ctx.rgb, options, ctx.cell.path.stem)
if st.toggle("Show the four study patch sizes in one row", key="occ_row"):
    for column, size in zip(st.columns(4), STUDY_PATCHES):
        with column:
            one = ev.explanation("occlusion", ctx.loaded, ctx.image, ctx.target, {"patch": size, "fill": fill},
                                 label=f"{size} px occlusion")
            if one:
                ev.show_map(one, ctx.rgb, options, values=one.extras["difference"][0], title=f"{size} px",
                            height=260, max_side=150, key=f"occ_row_{size}")
