"""Feature maps: every channel of a layer, one enlarged on the cell, and class-selective channels."""
import numpy as np
import pandas as pd
import streamlit as st

from core.feature_stats import class_contrast
from core.io_utils import frame_csv_bytes
from ui import context, display, resources, state
from ui import explain_view as ev
from ui.widgets import persistent

st.title("Feature maps")
ctx = context.current_cell()
context.cell_header(ctx)
desc = ctx.loaded.description
layer = persistent(st.selectbox, "Layer", "feature_maps.layer", desc.feature_map_layers[-1],
                   options=list(desc.feature_map_layers))
exp = ev.explanation("feature_maps", ctx.loaded, ctx.image, ctx.target, {})
if exp:
    acts = exp.extras[f"activation:{layer}"][0]
    grid_col, big_col = st.columns([3, 2])
    with grid_col:
        st.plotly_chart(display.channel_grid(acts), key="fm_grid")
        ev.cache_note("feature_maps")
    with big_col:
        channel = persistent(st.pills, "Enlarge channel", "feature_maps.channel", 0, options=list(range(acts.shape[-1])))
        options = display.options_widget()
        ev.show_map(exp, ctx.rgb, options, values=acts[..., channel or 0], title=f"{layer} channel {channel or 0}",
                    colorbar_title="activation", key="fm_big")
        ev.downloads(exp, ctx.rgb, options, f"{ctx.cell.path.stem}_{layer}_ch{channel or 0}", values=acts[..., channel or 0])
st.subheader("Class-selective channels in this dataset")
if st.toggle("Compare dysplastic and normal cells (one pass over the dataset)", key="fm_contrast"):
    view = context.dataset_view()
    means = resources.channel_means(desc.content_hash, tuple(view.table["path"]),
                                     state.selection().interpolation, ctx.loaded)
    contrast = class_contrast(means[layer], view.table["label"].to_numpy())
    st.plotly_chart(display.channel_contrast_figure(contrast, layer), key="fm_contrast_fig")
    table = pd.DataFrame({"channel": np.arange(len(contrast["normal"])), **contrast}).sort_values("difference", key=abs, ascending=False)
    st.dataframe(table, hide_index=True)
    st.download_button("Channel means CSV", frame_csv_bytes(table), f"{layer}_channel_means.csv", "text/csv", key="fm_csv")
