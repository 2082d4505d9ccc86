"""Occlusion sensitivity: how much hiding each place lowers the explained class's score."""
import streamlit as st

from core.display import DisplayOptions
from ui import context, display
from ui import explain_view as ev
from ui.widgets import persistent

STUDY_PATCHES = (5, 10, 20, 40)

st.title("Occlusion sensitivity")
ctx = context.current_cell()
context.cell_header(ctx)
cols = st.columns(5)
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
with cols[4]:
    score = persistent(st.selectbox, "Score", "occlusion.score", "logit", options=["logit", "probability"],
                       help="logit: log-odds of the class, never saturates; probability: P(class), the study's "
                            "choice, flat on cells the model is sure of.")
options = display.options_widget()
params = {"patch": patch, "stride": stride, "fill": fill, "score": score}
exp = ev.explanation("occlusion", ctx.loaded, ctx.image, ctx.target, params)
if exp:
    base = float(exp.extras["baseline_score"][0])
    unit = "log-odds" if score == "logit" else "P"
    left, right = st.columns(2)
    with left:
        ev.show_map(exp, ctx.rgb, DisplayOptions(cmap=options.cmap, opacity=options.opacity, normalisation="raw"),
                    values=exp.extras["occluded_score"][0], sign="score",
                    title=f"raw score: {unit}({ctx.target}) with the patch in place", colorbar_title=unit,
                    marks={f"baseline {base:.4g}": base}, key="occ_score")
    with right:
        ev.show_map(exp, ctx.rgb, options, title=f"drop when hidden: + supports {ctx.target}",
                    colorbar_title=f"drop of {unit}", key="occ_drop")
    ev.cache_note("occlusion")
    st.markdown(f"Baseline {unit}({ctx.target}) = **{base:.4g}** · largest reduction "
                f"**{float(exp.extras['max_reduction'][0]):.4g}** · largest increase "
                f"**{float(exp.extras['max_increase'][0]):.4g}** ({'log-odds' if score == 'logit' else 'probability'} units)")
    ev.downloads(exp, ctx.rgb, options, ctx.cell.path.stem)
if st.toggle("Show the four study patch sizes in one row", key="occ_row"):
    for column, size in zip(st.columns(4), STUDY_PATCHES):
        with column:
            one = ev.explanation("occlusion", ctx.loaded, ctx.image, ctx.target,
                                 {"patch": size, "fill": fill, "score": score}, label=f"{size} px occlusion")
            if one:
                ev.show_map(one, ctx.rgb, options, title=f"{size} px", height=260, max_side=150, compact=True,
                            key=f"occ_row_{size}")
