"""Plotly figures of the summaries (plotly is not streamlit: the page and the report share them).

Every builder takes a DataFrame of :mod:`core.summary` and returns a ``plotly.graph_objects.Figure``.
Group colours are fixed so that a group looks the same in every figure.
"""
from __future__ import annotations

import html

import numpy as np
import pandas as pd

from core.palette import GROUP_COLOURS, REGION_COLOURS, group_colour

SCORE_TITLES = {"total": "pathologist total score S_t", "cytoplasm": "cytoplasm score S_g",
                "nucleus": "nucleus score S_c + S_l"}


def _names(values) -> list:
    """Cell names as plotly text: escaped, because plotly renders a subset of HTML in labels."""
    return [html.escape(str(v)) for v in values]


def _go():
    import plotly.graph_objects as go

    return go


def score_scatter(scatter: pd.DataFrame, kind: str = "total", *, threshold: float | None = None):
    """Model score (x) vs one pathologist score (y), coloured by group.

    ``scatter`` comes from :func:`core.summary.tables.scatter_data`; ``kind`` is "total",
    "cytoplasm" or "nucleus". A dashed line marks the decision threshold.
    """
    go = _go()
    data = scatter[scatter["kind"] == kind]
    fig = go.Figure()
    for group, colour in GROUP_COLOURS.items():
        part = data[data["group"] == group]
        if part.empty:
            continue
        # A little vertical jitter: integer scores would hide each other.
        jitter = np.random.default_rng(0).uniform(-0.12, 0.12, len(part))
        fig.add_trace(go.Scatter(x=part["score"], y=part["value"] + jitter, mode="markers", name=group,
                                 marker=dict(color=colour, size=9, line=dict(width=0.5, color="#333")),
                                 text=_names(part["name"]), customdata=part["value"],
                                 hovertemplate="%{text}<br>score %{x:.4f}<br>value %{customdata}<extra></extra>"))
    if threshold is not None:
        fig.add_vline(x=threshold, line_dash="dash", line_color="#555",
                      annotation_text=f"threshold {threshold:g}", annotation_position="top left")
    fig.update_layout(xaxis_title="model score P(normal)", yaxis_title=SCORE_TITLES.get(kind, kind),
                      template="plotly_white", height=380, margin=dict(l=50, r=20, t=30, b=40), legend_title="group")
    return fig


def projection_figure(points: pd.DataFrame):
    """t-SNE map of the deep features: one point per cell, the pathologist total written on it.

    ``points`` has columns name, group, x, y and total (may be empty).
    """
    go = _go()
    fig = go.Figure()
    for group, colour in GROUP_COLOURS.items():
        part = points[points["group"] == group]
        if part.empty:
            continue
        labels = [("" if pd.isna(t) else str(int(t))) for t in part["total"]]
        fig.add_trace(go.Scatter(x=part["x"], y=part["y"], mode="markers+text", name=group, text=labels,
                                 textposition="top center", marker=dict(color=colour, size=10),
                                 customdata=_names(part["name"]), hovertemplate="%{customdata}<br>total %{text}<extra></extra>"))
    fig.update_layout(xaxis_title="t-SNE 1", yaxis_title="t-SNE 2", template="plotly_white", height=420,
                      margin=dict(l=50, r=20, t=30, b=40), legend_title="group")
    return fig


def occlusion_figure(summary: pd.DataFrame, *, by: str = "label"):
    """Mean reduction and increase of the score per patch size, one bar group per class."""
    go = _go()
    fig = go.Figure()
    for cls in dict.fromkeys(summary[by]):
        part = summary[summary[by] == cls]
        colour = group_colour(cls)
        fig.add_trace(go.Bar(x=part["patch"].astype(str), y=part["mean_reduction_pct"], name=f"{cls}: reduction",
                             marker_color=colour, opacity=0.9))
        fig.add_trace(go.Bar(x=part["patch"].astype(str), y=part["mean_increase_pct"], name=f"{cls}: increase",
                             marker_color=colour, opacity=0.45))
    fig.update_layout(barmode="group", xaxis_title="patch size (px)", yaxis_title="mean score change (%)",
                      template="plotly_white", height=360, margin=dict(l=50, r=20, t=30, b=40))
    return fig


def background_figure(table: pd.DataFrame, *, threshold: float | None = None):
    """Score with the original background (x) vs with a uniform background (y), per group."""
    go = _go()
    fig = go.Figure()
    for group, colour in GROUP_COLOURS.items():
        part = table[table["group"] == group]
        if part.empty:
            continue
        fig.add_trace(go.Scatter(x=part["original"], y=part["masked"], mode="markers", name=group,
                                 marker=dict(color=colour, size=9), text=_names(part["name"]),
                                 hovertemplate="%{text}<br>original %{x:.4f}<br>masked %{y:.4f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="#999"),
                             name="no change", hoverinfo="skip"))
    if threshold is not None:
        fig.add_vline(x=threshold, line_dash="dash", line_color="#bbb")
        fig.add_hline(y=threshold, line_dash="dash", line_color="#bbb")
    fig.update_layout(xaxis_title="score, original background", yaxis_title="score, uniform background",
                      template="plotly_white", height=380, margin=dict(l=50, r=20, t=30, b=40))
    return fig


def localisation_figure(summary: pd.DataFrame, *, by: str = "label"):
    """Stacked shares of positive attribution in nucleus / cytoplasm / background per method x class.

    A dotted marker shows each region's share of the image area (what a map spread evenly
    would give).
    """
    go = _go()
    data = summary[summary[by] != "all"] if (summary[by] != "all").any() else summary
    x = [data["method"].tolist(), data[by].astype(str).tolist()]
    fig = go.Figure()
    for region in ("nucleus", "cytoplasm", "background"):
        fig.add_trace(go.Bar(x=x, y=data[f"share_{region}"], name=region, marker_color=REGION_COLOURS[region],
                             hovertemplate=f"{region}: %{{y:.1%}}<extra></extra>"))
    fig.add_trace(go.Scatter(x=x, y=data["area_nucleus"], mode="markers", name="nucleus area (white tick)",
                             marker=dict(symbol="line-ew-open", size=18, color="#fff", line=dict(width=2)),
                             hovertemplate="nucleus area %{y:.1%}<extra></extra>"))
    fig.update_layout(barmode="stack", yaxis_title="share of positive attribution", yaxis_tickformat=".0%",
                      template="plotly_white", height=400, margin=dict(l=50, r=20, t=30, b=60))
    return fig


def faithfulness_figure(curves: pd.DataFrame, curve: str = "deletion"):
    """Mean deletion (or insertion) curve per method over all cells."""
    go = _go()
    data = curves[curves["curve"] == curve]
    value = "score" if "score" in data.columns else "probability"
    mean = data.groupby(["method", "fraction"], sort=False)[value].mean().reset_index()
    fig = go.Figure()
    for method in dict.fromkeys(mean["method"]):
        part = mean[mean["method"] == method]
        fig.add_trace(go.Scatter(x=part["fraction"], y=part[value], mode="lines+markers", name=method,
                                 line=dict(dash="dot" if method == "random" else "solid")))
    what = "removed" if curve == "deletion" else "added"
    fig.update_layout(xaxis_title=f"fraction of pixels {what} (most important first)",
                      yaxis_title=("log-odds" if value == "score" and "space" in data.columns and (data["space"] == "logit").all()
                                   else "probability") + " of the explained class", xaxis_tickformat=".0%",
                      template="plotly_white", height=360, margin=dict(l=50, r=20, t=30, b=40), title=curve)
    return fig


def randomisation_figure(table: pd.DataFrame):
    """Rank correlation trained vs randomised maps, one box per method (lower = more trustworthy)."""
    go = _go()
    fig = go.Figure()
    for method in dict.fromkeys(table["method"]):
        part = table[table["method"] == method]
        fig.add_trace(go.Box(y=part["spearman"], name=method, boxpoints="all", text=_names(part["name"]),
                             hovertemplate="%{text}: %{y:.3f}<extra></extra>"))
    fig.update_layout(yaxis_title="Spearman rho, trained vs randomised", yaxis_range=[-1, 1],
                      template="plotly_white", height=360, showlegend=False, margin=dict(l=50, r=20, t=30, b=40))
    return fig
