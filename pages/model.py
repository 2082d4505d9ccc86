"""Model: what the loaded network is (layers, size, cost, hash) and, for the demo, its metrics."""
import pandas as pd
import streamlit as st

from core.config import DEMO_METRICS
from ui import context, models, state
from ui.widgets import plain

st.title("Model")
choice = state.selection().model
st.markdown(f"**{plain(choice.label)}** · {choice.kind} · key `{models.url_key(choice) or '?'}` (in the URL as ?model=)")
loaded = context.model()
desc = loaded.description
cols = st.columns(4)
cols[0].metric("Parameters", f"{desc.params:,}")
cols[1].metric("GFLOP / image", f"{desc.flops / 1e9:.3f}")
cols[2].metric("Input", "×".join(map(str, desc.input_shape)))
cols[3].metric("Output", "P(normal)" if desc.output_kind == "sigmoid" else f"softmax[{desc.normal_unit}]",
               help="sigmoid: P(normal)" if desc.output_kind == "sigmoid" else f"2-unit softmax, unit {desc.normal_unit} = normal")
st.markdown(f"Source: {plain(loaded.source)}  \nContent hash: `{desc.content_hash[:16]}…`  \n"
            f"CAM layer: {plain(desc.cam_layer)} (after last conv {plain(desc.last_conv)}) · "
            f"deep features: {plain(desc.features_layer)} · "
            f"{len(desc.feature_map_layers)} feature-map layers")
st.dataframe(pd.DataFrame([{"layer": l.name, "type": l.kind, "output shape": str(l.output_shape),
                            "feature maps": l.name in desc.feature_map_layers} for l in desc.layers]), hide_index=True)
if choice.kind == "bundled" and DEMO_METRICS.is_file():
    st.subheader("Demo model metrics (fresh synthetic test set)")
    st.dataframe(models.metrics_table(DEMO_METRICS), hide_index=True)
    st.caption("Dysplastic is the positive class. Trained and tested on generated cells only (drawn "
               "neutrophils in real captures of normal cells, generator "
               f"{plain(str(models.metrics_generator(DEMO_METRICS)))}): never for diagnosis.")
