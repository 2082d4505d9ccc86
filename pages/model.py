"""Model: what the loaded network is (layers, size, cost, hash) and, for the demo, its metrics."""
import json

import pandas as pd
import streamlit as st

from core.config import DEMO_METRICS
from ui import context
from ui.widgets import plain

st.title("Model")
loaded = context.model()
desc = loaded.description
cols = st.columns(4)
cols[0].metric("Parameters", f"{desc.params:,}")
cols[1].metric("GFLOP / image", f"{desc.flops / 1e9:.3f}")
cols[2].metric("Input", "×".join(map(str, desc.input_shape)))
cols[3].metric("Output", "sigmoid P(normal)" if desc.output_kind == "sigmoid" else f"softmax, unit {desc.normal_unit} = normal")
st.markdown(f"Source: {plain(loaded.source)}  \nContent hash: `{desc.content_hash[:16]}…`  \n"
            f"CAM layer: {plain(desc.cam_layer)} (after last conv {plain(desc.last_conv)}) · "
            f"deep features: {plain(desc.features_layer)} · "
            f"{len(desc.feature_map_layers)} feature-map layers")
st.dataframe(pd.DataFrame([{"layer": l.name, "type": l.kind, "output shape": str(l.output_shape),
                            "feature maps": l.name in desc.feature_map_layers} for l in desc.layers]), hide_index=True)
if loaded.source.startswith(str(DEMO_METRICS.parent)) and DEMO_METRICS.is_file():
    st.subheader("Demo model metrics (fresh synthetic test set)")
    st.json(json.loads(DEMO_METRICS.read_text()))
