"""Display options shared by every map view, and the pictures that show maps.

A map is sent to the browser as one compressed image (the cell with the map blended in,
WebP), a coarse grid of its values for hover and its colour bar, drawn by one light element
(:mod:`ui.map_image`: zoom and pan included) instead of a plotly figure. Pictures are cached
per (map, cell image, display options, scale). The feature-map mosaic stays a plotly figure.
"""
from __future__ import annotations

import hashlib
import weakref

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.display import (
    COLORMAPS,
    NORMALISATIONS,
    DisplayOptions,
    Scale,
    Units,
    block_mean,
    overlay,
    plotly_colorscale,
    scale_for,
    webp_bytes,
    webp_data_url,
)
from ui.widgets import persistent

_NORM_LABELS = {"raw": "zero-centred, in the map's units", "percentile": "zero-centred, clipped at a percentile",
                "minmax": "per-image min-max (stretches)"}
_CMAP_LABELS = {"auto": "auto (blue-orange / viridis)", "blue-orange": "blue-orange (diverging)",
                "RdBu_r": "red-blue (diverging)"}
#: Hover grid side: values averaged over blocks of about 6 model pixels (big views) or 12 (tiles).
HOVER_SIDE = 50


def options_widget(expanded: bool = False) -> DisplayOptions:
    """The display expander; the same values apply on every page."""
    with st.expander("Display options", expanded=expanded):
        cols = st.columns(5)
        with cols[0]:
            cmap = persistent(st.selectbox, "Colour map", "cmap", "auto", options=COLORMAPS,
                              format_func=lambda c: _CMAP_LABELS.get(c, c),
                              help="auto: blue (opposes) - white - orange (supports) for signed maps, viridis "
                                   "for magnitudes; both perceptually ordered and colour-blind safe.")
        with cols[1]:
            opacity = persistent(st.slider, "Overlay opacity", "opacity", 0.75, min_value=0.0, max_value=1.0, step=0.05,
                                 help="Opacity of the strongest effect; weaker effects are more transparent.")
        with cols[2]:
            norm = persistent(st.selectbox, "Scale", "norm", "raw", options=NORMALISATIONS, format_func=_NORM_LABELS.get,
                              help="Zero-centred scales keep the map's units (white = no effect); Compare shares "
                                   "one scale per method family. Min-max stretches each map on its own.")
        with cols[3]:
            percentile = persistent(st.slider, "Clip percentile", "pct", 99.0, min_value=50.0, max_value=100.0,
                                    step=0.5, disabled=norm != "percentile")
        with cols[4]:
            signed = persistent(st.toggle, "Show evidence against (opposes)", "signed", True)
    return DisplayOptions(cmap=cmap, opacity=opacity, normalisation=norm, percentile=percentile, signed=signed)


def digest(array) -> str:
    """Short content hash of an array (figure cache keys)."""
    array = np.ascontiguousarray(array)
    return hashlib.blake2b(array.tobytes() + str((array.shape, array.dtype)).encode(), digest_size=12).hexdigest()


_DIGESTS: dict = {}  # id(array) -> (weak reference, digest) of read-only arrays


def digest_of(array) -> str:
    """:func:`digest`, remembered for read-only arrays that are still alive (the same cell
    image is drawn under every tile of a grid)."""
    array = np.asarray(array)
    if array.flags.writeable:
        return digest(array)
    entry = _DIGESTS.get(id(array))
    if entry is not None and entry[0]() is array:
        return entry[1]
    value = digest(array)
    if len(_DIGESTS) > 256:
        _DIGESTS.clear()
    _DIGESTS[id(array)] = (weakref.ref(array), value)
    return value


def map_picture(rgb: np.ndarray, values: np.ndarray, options: DisplayOptions, *, sign: str = "supports",
                units: Units | None = None, scale: Scale | None = None, title: str = "", colorbar_title: str = "",
                marks: dict | None = None, height: int = 430, max_side: int = 299, faint: bool = False,
                target: str = "", compact: bool = False, values_key: str | None = None) -> dict:
    """The cell with the map over it, for :func:`ui.map_image.show`; hover gives the
    (block-averaged) value and the pixel.

    ``marks`` adds labelled ticks to the colour bar (e.g. ``{"baseline 0.98": 0.98}``).
    ``values_key`` names the values when the caller knows them (an explanation's cache key),
    instead of hashing them.
    ``max_side`` shrinks the image sent for small tiles; ``compact`` puts a short colour bar
    (ends "opposes" / "supports") below the image, for tiles too narrow for a title.
    """
    values = np.asarray(values, dtype=np.float32)
    scale = scale or scale_for(values, sign, options)
    settings = dict(options=options, sign=sign, units=units, scale=scale, title=title, colorbar_title=colorbar_title,
                    marks=dict(sorted((marks or {}).items())), height=height, max_side=max_side, faint=faint,
                    target=target, compact=compact)
    return _cached_picture(figure_key(rgb, values, settings, values_key=values_key), rgb, values, settings)


def figure_key(rgb, values, settings: dict, *, values_key: str | None = None) -> str:
    """Cache key of one map picture: the two arrays' contents and every display setting."""
    return f"{digest_of(rgb)}:{values_key or digest(values)}:{sorted(settings.items())!r}"


@st.cache_resource(max_entries=512, show_spinner=False)
def _cached_picture(key: str, _rgb: np.ndarray, _values: np.ndarray, _settings: dict) -> dict:
    return build_map_picture(_rgb, _values, **_settings)


def build_map_picture(rgb, values, options, *, sign, units, scale, title, colorbar_title, marks, height, max_side,
                      faint, target, compact) -> dict:
    """The uncached picture of :func:`map_picture`: a WebP of the blended map, the hover grid
    and the colour bar (gradient stops and ticks at their place in [0, 1])."""
    height_px, width_px = rgb.shape[:2]
    blended = overlay(rgb, values, options, sign=sign, scale=scale, faint=faint)
    grid = block_mean(values, HOVER_SIDE if max_side >= 200 else HOVER_SIDE // 2)
    evidence = sign == "supports" and scale.diverging
    hover = (units.hover if units else "value") + (f" (+ supports {target})" if evidence and target else "")
    tickvals, ticktext, bar_title = colorbar_ticks(scale, options, units, colorbar_title, marks, compact,
                                                   target if evidence else None)
    span = (scale.high - scale.low) or 1.0
    ticks = [[float(np.clip((v - scale.low) / span, 0.0, 1.0)), text] for v, text in zip(tickvals, ticktext)]
    box = height - (28 if title else 0) - (34 if compact else 0)
    return {"src": webp_data_url(webp_bytes(blended, max_side=int(max(int(max_side) * 1.25, 120)))), "width": int(width_px),
            "height": int(height_px), "box": int(box), "title": title, "grid": _json_grid(grid), "hover": hover,
            "bar": {"stops": plotly_colorscale(scale.cmap), "ticks": ticks, "title": bar_title, "compact": compact}}


def _json_grid(grid: np.ndarray) -> list:
    """The hover grid as nested lists, 4 significant figures, None where not finite."""
    return [[v if np.isfinite(v) else None for v in row] for row in _rounded(np.asarray(grid)).tolist()]


def colorbar_ticks(scale: Scale, options, units, colorbar_title, marks, compact, target) -> tuple:
    """``(values, labels, title)`` of the colour bar, labelled in the map's units."""
    low, high = scale.low, scale.high
    digits = int(min(8, max(2, np.ceil(-np.log10(max(high - low, 1e-12))) + 2)))
    fmt = f".{digits}f" if high - low >= 1e-3 else ".2e"
    if scale.diverging:
        # target None: a signed map that is not evidence (a linear layer's activations)
        ends = ("negative", "positive") if target is None else \
            ("opposes", "supports") if not target else (f"opposes {target}", f"supports {target}")
        tickvals = [low, 0.0, high]
        ticktext = ([ends[0].split()[0], "0", ends[1].split()[0]] if compact
                    else [f"{format(low, fmt)} {ends[0]}", "0", f"{format(high, fmt)} {ends[1]}"])
        if not compact:
            tickvals[1:1], ticktext[1:1] = [low / 2], [format(low / 2, fmt)]
            tickvals[-1:-1], ticktext[-1:-1] = [high / 2], [format(high / 2, fmt)]
    else:
        labels = np.linspace(low, high, 3 if compact else 5)
        tickvals = labels.tolist()
        ticktext = [format(t, fmt) for t in labels]
        if compact:
            ticktext = ["low", "", "high"] if options.normalisation == "minmax" else ["0", "", format(high, fmt)]
    # a mark (e.g. the baseline) takes the place of a plain tick it would be printed over
    marks = marks or {}
    keep = [i for i, v in enumerate(tickvals) if all(abs(v - m) >= 0.05 * (high - low) for m in marks.values())]
    tickvals = [tickvals[i] for i in keep] + list(marks.values())
    ticktext = [ticktext[i] for i in keep] + [f"{label} ◀" for label in marks]
    title = "" if compact else (colorbar_title or (units.title if units else _NORM_LABELS[options.normalisation]))
    return tickvals, ticktext, title


def _rounded(values: np.ndarray, digits: int = 4) -> np.ndarray:
    """Values to ``digits`` significant figures: shorter JSON; nobody reads a fifth digit."""
    top = float(np.abs(values).max()) if values.size else 0.0
    if top == 0.0 or not np.isfinite(top):
        return values
    decimals = int(digits - 1 - np.floor(np.log10(top)))
    return np.round(values.astype(np.float64), decimals)


def image_picture(rgb: np.ndarray, *, title: str = "", height: int = 430) -> dict:
    """A picture (cell, masked cell, superpixels) for :func:`ui.map_image.show`: one WebP,
    zoomable, the pixel on hover."""
    if rgb.dtype != np.uint8:
        rgb = np.clip(np.round(np.asarray(rgb) * 255.0), 0, 255).astype(np.uint8)
    return _cached_image_picture(f"{digest_of(rgb)}:{title!r}:{height}", rgb, title, height)


@st.cache_resource(max_entries=256, show_spinner=False)
def _cached_image_picture(key: str, _rgb: np.ndarray, _title: str, _height: int) -> dict:
    h, w = _rgb.shape[:2]
    return {"src": webp_data_url(webp_bytes(_rgb, max_side=max(h, w))), "width": int(w), "height": int(h),
            "box": int(_height - (30 if _title else 0)), "title": _title, "grid": None, "hover": "", "bar": None}


def _image_trace(rgb: np.ndarray, width_px: int, height_px: int, *, max_side: int) -> go.Image:
    """The picture as a WebP data URL, stretched over ``width_px`` x ``height_px`` axis units."""
    import io

    from PIL import Image

    data = webp_bytes(rgb, max_side=max_side)
    w, h = Image.open(io.BytesIO(data)).size
    return go.Image(source=webp_data_url(data),
                    x0=(width_px / w) / 2 - 0.5, dx=width_px / w, y0=(height_px / h) / 2 - 0.5, dy=height_px / h,
                    hoverinfo="skip")


def channel_grid(activations: np.ndarray, *, columns: int = 4, height: int = 640) -> go.Figure:
    """All channels of one layer, ``(h, w, c)``, each normalised on its own (viridis), as one
    mosaic image; hover gives the channel and its (block-averaged) activation."""
    return _cached_channel_grid(f"{digest(activations)}:{columns}:{height}", activations, columns, height)


@st.cache_resource(max_entries=64, show_spinner=False)
def _cached_channel_grid(key: str, _acts: np.ndarray, _columns: int, _height: int) -> go.Figure:
    from core.display import ramp

    columns, height = _columns, _height
    h, w, channels = _acts.shape
    rows = -(-channels // columns)
    gap = max(2, w // 30)
    mosaic = np.full((rows * (h + gap), columns * (w + gap), 3), 255, np.uint8)
    colours = ramp("viridis", 256)
    side = max(1, min(h, w, 24))
    hover = np.full((rows * side, columns * side), np.nan, np.float32)
    for c in range(channels):
        a = _acts[..., c].astype(np.float64)
        low, high = float(a.min()), float(a.max())
        scaled = (a - low) / (high - low) if high > low else np.zeros_like(a)
        r, q = divmod(c, columns)
        mosaic[r * (h + gap):r * (h + gap) + h, q * (w + gap):q * (w + gap) + w] = \
            (colours[np.round(scaled * 255).astype(int)] * 255).round().astype(np.uint8)
        hover[r * side:(r + 1) * side, q * side:(q + 1) * side] = _square(_acts[..., c], side)
    H, W = mosaic.shape[:2]
    fig = go.Figure(_image_trace(mosaic, W, H, max_side=max(H, W)))
    cell_h, cell_w = (h + gap) / side, (w + gap) / side
    channel = np.repeat(np.repeat(np.arange(rows * columns).reshape(rows, columns), side, 0), side, 1)
    fig.add_trace(go.Heatmap(z=_rounded(np.nan_to_num(hover)), customdata=channel, x0=cell_w / 2 - 0.5, dx=cell_w,
                             y0=cell_h / 2 - 0.5, dy=cell_h, showscale=False,
                             colorscale=[[0, "rgba(0,0,0,0)"], [1, "rgba(0,0,0,0)"]],
                             hovertemplate="ch %{customdata}<br>activation %{z:.3g}<extra></extra>"))
    for c in range(channels):
        r, q = divmod(c, columns)
        fig.add_annotation(x=q * (w + gap) + w / 2, y=r * (h + gap), text=f"ch {c}", showarrow=False,
                           yanchor="bottom", font=dict(size=10), bgcolor="rgba(255,255,255,0.7)")
    fig.update_xaxes(visible=False, range=[-0.5, W - 0.5])
    fig.update_yaxes(visible=False, range=[H - 0.5, -gap * 3], scaleanchor="x")
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=10, b=0), uirevision="grid")
    return fig


def _square(values: np.ndarray, side: int) -> np.ndarray:
    """A channel averaged down to ``side`` x ``side`` (hover grid of the mosaic)."""
    from PIL import Image

    image = Image.fromarray(np.asarray(values, dtype=np.float32))
    return np.asarray(image.resize((side, side), Image.Resampling.BOX), dtype=np.float32)


def channel_contrast_figure(contrast: dict, layer: str) -> go.Figure:
    """Mean activation per channel, dysplastic vs normal cells of the dataset."""
    channels = np.arange(len(contrast["normal"]))
    fig = go.Figure([go.Bar(x=channels, y=contrast["dysplastic"], name="dysplastic", marker_color="#8e44ad"),
                     go.Bar(x=channels, y=contrast["normal"], name="normal", marker_color="#16a085")])
    fig.update_layout(barmode="group", height=300, title=f"{layer}: mean activation per channel",
                      xaxis_title="channel", yaxis_title="mean activation", margin=dict(l=0, r=0, t=40, b=0))
    return fig


def content_key(*parts) -> str:
    """A short hash of data frames, arrays and plain values (figure cache keys)."""
    import pandas as pd

    h = hashlib.blake2b(digest_size=12)
    for part in parts:
        if isinstance(part, (pd.DataFrame, pd.Series)):
            h.update(pd.util.hash_pandas_object(part, index=True).to_numpy().tobytes())
            h.update(repr(list(part.columns) if isinstance(part, pd.DataFrame) else part.name).encode())
        elif isinstance(part, np.ndarray):
            h.update(digest_of(part).encode())
        else:  # pickled, not repr: numpy's repr elides long arrays, two different ones would collide
            import pickle

            h.update(pickle.dumps(part, protocol=5))
        h.update(b"|")
    return h.hexdigest()


def cached_figure(make, *args, **kwargs):
    """``make(*args, **kwargs)``, built once per content of the arguments: building a plotly
    figure often costs more than the rest of a page's rerun. The figure is shared: do not
    change it after."""
    if any(a is None for a in args):
        return None
    key = f"{make.__module__}.{make.__qualname__}:{content_key(*args, *sorted(kwargs.items()))}"
    return _cached_made(key, make, args, kwargs)


@st.cache_resource(show_spinner=False, max_entries=128)
def _cached_made(key: str, _make, _args, _kwargs):
    return _make(*_args, **_kwargs)
