"""Score-CAM's channel weights beside the CAMs: what the map is made of.

Published Score-CAM (Wang et al. 2020) weighs each channel by the class's score on the
image masked by that channel, minus the unchanged image's score ("increase of
confidence"). Showing the weights lets a reader see that the class matters (the two
classes give opposite weights in log-odds) and why a map is blank (no channel raises the
score).
"""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ui import explain_view as ev


def scorecam_weights(ctx, params: dict) -> None:
    """A toggle that shows Score-CAM's channel weights for the current cell and class (cached map)."""
    if st.toggle("Show Score-CAM's channel weights", key="scorecam_weights_toggle"):
        exp = ev.explanation("scorecam", ctx.loaded, ctx.image, ctx.target, params, label="Score-CAM weights")
        if not exp:
            return
        weights = exp.extras["channel_weights"][0]
        scores = exp.extras["channel_scores"][0]
        space = "log-odds" if exp.extras.get("score_space") == "logit" else "P"
        base = float(exp.extras["baseline_score"][0])
        increase = exp.params.get("weights") == "increase"
        fig = go.Figure(go.Bar(x=list(range(len(weights))), y=weights,
                               marker_color=["#1b7837" if w > 0 else "#762a83" for w in weights]))
        fig.update_layout(xaxis_title="channel", yaxis_title=f"weight ({space})", height=260,
                          margin=dict(l=40, r=10, t=10, b=40), template="plotly_white")
        st.plotly_chart(fig, key="scorecam_weights")
        st.caption(f"Weight of channel k = {space}({ctx.target}) of the image masked by channel k"
                   + (f" minus the unchanged image's {base:.4g} (increase of confidence)" if increase else "")
                   + f". Green raises the class's score, purple lowers it; {int((weights > 0).sum())} of "
                   f"{len(weights)} channels raise it.")
        st.dataframe(pd.DataFrame({"channel": range(len(weights)), "masked score": scores, "weight": weights}),
                     hide_index=True, height=200)
