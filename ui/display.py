"""Display options shared by every map view, and the plotly figures that show maps."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.display import COLORMAPS, NORMALISATIONS, DisplayOptions, prepare
from ui.widgets import persistent

_NORM_LABELS = {"raw": "raw values", "minmax": "min-max", "percentile": "percentile clip"}


def options_widget(expanded: bool = False) -> DisplayOptions:
    """The display expander; the same values apply on every page."""
    with st.expander("Display options", expanded=expanded):
        cols = st.columns(5)
        with cols[0]:
            cmap = persistent(st.selectbox, "Colour map", "cmap", "jet", options=COLORMAPS)
        with cols[1]:
            opacity = persistent(st.slider, "Overlay opacity", "opacity", 0.5, min_value=0.0, max_value=1.0, step=0.05)
        with cols[2]:
            norm = persistent(st.selectbox, "Normalisation", "norm", "minmax", options=NORMALISATIONS,
                              format_func=_NORM_LABELS.get)
        with cols[3]:
            percentile = persistent(st.slider, "Clip percentile", "pct", 99.0, min_value=50.0, max_value=100.0,
                                    step=0.5, disabled=norm != "percentile")
        with cols[4]:
            signed = persistent(st.toggle, "Signed (show negative evidence)", "signed", False)
    return DisplayOptions(cmap=cmap, opacity=opacity, normalisation=norm, percentile=percentile, signed=signed)


def map_figure(rgb: np.ndarray, values: np.ndarray, options: DisplayOptions, *, title: str = "",
               colorbar_title: str = "", marks: dict | None = None, height: int = 430, max_side: int = 299) -> go.Figure:
    """The cell with the map over it; hover gives the map value and the pixel.

    ``marks`` adds labelled ticks to the colour bar (e.g. ``{"baseline 0.98": 0.98}``);
    they are only meaningful with raw values. ``max_side`` thins the heatmap for small tiles.
    """
    height_px, width_px = rgb.shape[:2]
    raw = np.asarray(values, dtype=np.float32)
    step = max(1, int(np.ceil(max(raw.shape) / max_side)))
    raw = raw[::step, ::step]
    shown, low, high = prepare(raw, options)
    dy, dx = height_px / values.shape[0] * step, width_px / values.shape[1] * step
    # Enough decimals to tell the ticks apart even when the range is narrow (occlusion
    # scores of a confident cell can span 0.9915-0.9930).
    digits = int(min(8, max(2, np.ceil(-np.log10(max(high - low, 1e-12))) + 2)))
    colorbar = dict(title=colorbar_title or _NORM_LABELS[options.normalisation], thickness=12,
                    tickformat=f".{digits}f")
    if marks:
        ticks = np.linspace(low, high, 5).tolist()
        colorbar |= dict(tickvals=ticks + list(marks.values()),
                         ticktext=[f"{t:.{digits}f}" for t in ticks] + [f"{k} ◀" for k in marks])
    fig = go.Figure(go.Image(z=rgb, hoverinfo="skip"))
    fig.add_trace(go.Heatmap(
        z=_rounded(shown), customdata=_rounded(raw), x0=dx / 2 - 0.5, dx=dx, y0=dy / 2 - 0.5, dy=dy, zmin=low, zmax=high,
        colorscale=options.cmap, opacity=options.opacity, colorbar=colorbar,
        hovertemplate="pixel x %{x:.0f}, y %{y:.0f}<br>value %{customdata:.4g}<extra></extra>"))
    fig.update_xaxes(visible=False, range=[-0.5, width_px - 0.5])
    fig.update_yaxes(visible=False, range=[height_px - 0.5, -0.5], scaleanchor="x")
    fig.update_layout(title=title, height=height, margin=dict(l=0, r=0, t=30 if title else 0, b=0))
    return fig


def _rounded(values: np.ndarray, digits: int = 4) -> np.ndarray:
    """Values to ``digits`` significant figures: the figure's JSON shrinks about threefold,
    which is most of the time a cached page takes to appear; nobody reads a fifth digit."""
    top = float(np.abs(values).max()) if values.size else 0.0
    if top == 0.0 or not np.isfinite(top):
        return values
    decimals = int(digits - 1 - np.floor(np.log10(top)))
    return np.round(values.astype(np.float64), decimals)


def image_figure(rgb: np.ndarray, *, title: str = "", height: int = 430) -> go.Figure:
    if rgb.dtype != np.uint8:
        rgb = np.clip(np.round(np.asarray(rgb) * 255.0), 0, 255).astype(np.uint8)
    fig = go.Figure(go.Image(z=rgb, hovertemplate="pixel x %{x}, y %{y}<extra></extra>"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x")
    fig.update_layout(title=title, height=height, margin=dict(l=0, r=0, t=30 if title else 0, b=0))
    return fig


def channel_grid(activations: np.ndarray, *, columns: int = 4, height: int = 640) -> go.Figure:
    """All channels of one layer, ``(h, w, c)``, each normalised on its own (viridis)."""
    from plotly.subplots import make_subplots

    channels = activations.shape[-1]
    rows = -(-channels // columns)
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=[f"ch {c}" for c in range(channels)],
                        horizontal_spacing=0.01, vertical_spacing=0.04)
    for c in range(channels):
        a = activations[..., c]
        low, high = float(a.min()), float(a.max())
        fig.add_trace(go.Heatmap(z=a, zmin=low, zmax=high if high > low else low + 1e-9, colorscale="viridis",
                                 showscale=False, hovertemplate=f"ch {c}<br>x %{{x}}, y %{{y}}<br>%{{z:.3g}}<extra></extra>"),
                      row=c // columns + 1, col=c % columns + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed")
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=20, b=0))
    for annotation in fig.layout.annotations:
        annotation.font.size = 10
    return fig


def channel_contrast_figure(contrast: dict, layer: str) -> go.Figure:
    """Mean activation per channel, dysplastic vs normal cells of the dataset."""
    channels = np.arange(len(contrast["normal"]))
    fig = go.Figure([go.Bar(x=channels, y=contrast["dysplastic"], name="dysplastic", marker_color="#8e44ad"),
                     go.Bar(x=channels, y=contrast["normal"], name="normal", marker_color="#16a085")])
    fig.update_layout(barmode="group", height=300, title=f"{layer}: mean activation per channel",
                      xaxis_title="channel", yaxis_title="mean activation", margin=dict(l=0, r=0, t=40, b=0))
    return fig
