"""The deep-feature map of a dataset as an interactive scatter plot."""
from __future__ import annotations

import pandas as pd
import plotly.express as px

from core.palette import GROUP_COLOURS
from ui.display import cached_figure


def points(table: pd.DataFrame, coords, totals) -> pd.DataFrame:
    frame = table[["name", "group", "score", "prediction"]].copy()
    frame["x"], frame["y"] = coords[:, 0], coords[:, 1]
    frame["total"] = ["" if t is None else f"{t:+d}" for t in totals]
    return frame


def scatter(frame: pd.DataFrame, title: str):
    """The scatter plot, built once per content (see :func:`ui.display.cached_figure`)."""
    return cached_figure(build_scatter, frame, title)


def build_scatter(frame: pd.DataFrame, title: str):
    fig = px.scatter(frame, x="x", y="y", color="group", text="total", color_discrete_map=GROUP_COLOURS,
                     custom_data=["name"], hover_name="name",
                     hover_data={"score": ":.4f", "prediction": True, "total": True, "x": False, "y": False, "group": True})
    fig.update_traces(marker=dict(size=11, line=dict(width=0.5, color="white")), textposition="top center",
                      textfont=dict(size=10))
    fig.update_layout(title=title, height=560, legend_title_text="", margin=dict(l=0, r=0, t=40, b=0))
    fig.update_xaxes(title="", showticklabels=False)
    fig.update_yaxes(title="", showticklabels=False)
    return fig
