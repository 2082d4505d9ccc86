"""LIME: a linear surrogate over quickshift superpixels switched on and off."""
import numpy as np
import pandas as pd
import streamlit as st

from core.display import superpixel_boundaries, superpixel_evidence
from core.explain.lime import PRESETS
from core.io_utils import frame_csv_bytes
from core.preprocess import image_hash
from ui import context, display, map_image, resources
from ui import explain_view as ev


def _apply(preset: str) -> None:
    for name, value in PRESETS[preset].items():
        st.session_state[f"lime.{name}"] = st.session_state[f"w:lime.{name}"] = value


st.title("LIME")
ctx = context.current_cell()
context.cell_header(ctx)
a, b = st.columns(2)
a.button("Study preset (about 230 superpixels, 700 samples)", on_click=_apply, args=("study",), key="lime_study")
b.button("Stable preset (about 70 larger superpixels, 700 samples)", on_click=_apply, args=("stable",), key="lime_stable",
         help="Seed-to-seed Spearman of the weights on 20 real cells: 0.86 against 0.60 for the study preset "
              "(docs/EVIDENCE.md).")
params = ev.param_widgets("lime", ctx.loaded, columns=5)
labels = resources.superpixels(image_hash(ctx.image), params["ratio"], params["kernel_size"], params["max_dist"],
                               params["sigma"], params["seed"], ctx.image)
preview, result = st.columns(2)
with preview:
    st.subheader(f"Superpixels: {int(labels.max()) + 1}")
    map_image.show(display.image_picture(superpixel_boundaries(ctx.image, labels)), key="lime_preview")
options = display.options_widget()
exp = ev.explanation("lime", ctx.loaded, ctx.image, ctx.target, params)
if exp:
    with result:
        st.subheader(f"Top {params['top_k']} for / against {ctx.target}")
        tinted = superpixel_evidence(ctx.image, exp.extras["labels"][0], exp.extras["top_positive"][0],
                                     exp.extras["top_negative"][0])
        map_image.show(display.image_picture(tinted), key="lime_evidence")
        st.caption("orange: pushes towards the explained class · blue: pushes against it")
    rho, overlap = float(exp.extras["stability_spearman"][0]), float(exp.extras["stability_topk"][0])
    runs = int(exp.extras["stability_runs"])
    shaky = runs > 1 and not rho >= 0.7
    (st.warning if shaky else st.info)(
        f"Stability over {runs} seeds: Spearman of the superpixel weights **{rho:.2f}**, top-{params['top_k']} "
        f"overlap **{overlap:.0%}**" + (" — another seed would show a different map; try the stable preset."
                                        if shaky else ".") if runs > 1 else "Stability not measured (1 run).")
    r2 = float(exp.extras["r2"][0])
    unit = "log-odds" if exp.extras["score_space"] == "logit" else "probability"
    st.markdown(f"Surrogate fit R² = **{r2:.3f}** (weighted, on {params['samples']} perturbations, {unit}) · "
                f"intercept {float(exp.extras['intercept'][0]):.3f} · baseline P({ctx.target}) {float(exp.baseline[0]):.4f}")
    ev.cache_note("lime")
    weights = exp.extras["weights"][0]
    table = pd.DataFrame({"superpixel": np.arange(len(weights)), "weight": weights}).dropna()
    table = table.reindex(table["weight"].abs().sort_values(ascending=False).index)
    with st.expander("Superpixel weights"):
        st.dataframe(table, hide_index=True)
        st.download_button("Weights CSV", frame_csv_bytes(table), f"{ctx.cell.path.stem}_lime_weights.csv",
                           "text/csv", key="lime_csv")
    ev.show_map(exp, ctx.rgb, options, title="weight of each superpixel", key="lime_map")
    ev.downloads(exp, ctx.rgb, options, ctx.cell.path.stem)
