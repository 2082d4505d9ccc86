"""Projection: t-SNE / PCA of the last pooling layer for the whole dataset; click a cell to open it."""
import streamlit as st

from core.io_utils import frame_csv_bytes
from ui import context, projection, resources, state
from ui import explain_view as ev
from ui.widgets import persistent

st.title("Deep-feature projection")
view = context.dataset_view()
sel = state.selection()
cols = st.columns(3)
with cols[0]:
    kind = persistent(st.radio, "Projection", "projection.kind", "t-SNE", options=["t-SNE", "PCA"], horizontal=True)
with cols[1]:
    perplexity = persistent(st.number_input, "t-SNE perplexity", "features.perplexity", 30.0, min_value=2.0, max_value=100.0, step=1.0)
with cols[2]:
    seed = persistent(st.number_input, "Seed", "features.seed", 0, min_value=0, max_value=2**31 - 1, step=1)
paths = tuple(view.table["path"])
images = resources.dataset_images(paths, view.loaded.description.image_size, sel.interpolation)
exp = ev.explanation("features", view.loaded, images, "normal" if sel.target == "predicted" else sel.target, {"perplexity": perplexity, "seed": seed},
                     label=f"Deep features of {len(paths)} cells")
if exp:
    coords = exp.extras["tsne" if kind == "t-SNE" else "pca"]
    frame = projection.points(view.table, coords, resources.pathologist_totals(paths))
    event = st.plotly_chart(projection.scatter(frame, f"{kind} of {view.loaded.description.features_layer}"),
                            on_select="rerun", selection_mode="points", key="projection_plot")
    st.caption("Numbers on the points: the pathologist's signed total score. Click a point to make it the current cell.")
    ev.cache_note("features")
    chosen = [p["customdata"][0] for p in (event.selection.points if event else []) if p.get("customdata")]
    if chosen and chosen[0] != sel.cell:
        st.session_state[state.CELL] = chosen[0]
        st.rerun()
    if sel.cell in set(frame["name"]):
        row = frame[frame["name"] == sel.cell].iloc[0]
        st.image(resources.thumbnail(view.table.set_index("name").loc[sel.cell, "path"]),
                 caption=f"current: {sel.cell} · score {row['score']:.4f} · {row['group']}")
    st.download_button("Coordinates CSV", frame_csv_bytes(frame), "projection.csv", "text/csv", key="proj_csv")
