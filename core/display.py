"""How a raw explanation map is shown: sign, normalisation, colour map, overlay on the cell.

Maps are computed raw at model resolution; everything here is a display choice. Maps are
drawn registered on the original image by resizing them to its size, which inverts the
geometry of the preprocessing resize.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from core.errors import DisplasiaError

COLORMAPS = ("jet", "viridis", "inferno", "turbo", "RdBu_r")
NORMALISATIONS = ("raw", "minmax", "percentile")


@dataclass(frozen=True)
class DisplayOptions:
    """Shared display settings of every map view (hashable: part of figure caches)."""

    cmap: str = "jet"
    opacity: float = 0.5
    normalisation: str = "minmax"  # raw values with their colour bar, min-max, or percentile clip
    percentile: float = 99.0
    signed: bool = False  # False: positive evidence only

    def __post_init__(self):
        if self.cmap not in COLORMAPS:
            raise DisplasiaError(f"Unknown colour map '{self.cmap}': choose one of {', '.join(COLORMAPS)}.")
        if self.normalisation not in NORMALISATIONS:
            raise DisplasiaError(f"Unknown normalisation '{self.normalisation}'.")
        if not 0.0 <= self.opacity <= 1.0 or not 50.0 <= self.percentile <= 100.0:
            raise DisplasiaError("Opacity must be within [0, 1] and the percentile within [50, 100].")


def prepare(values: np.ndarray, options: DisplayOptions) -> tuple[np.ndarray, float, float]:
    """Apply sign and normalisation; return the values to colour and their colour range.

    Examples
    --------
    >>> v, lo, hi = prepare(np.array([[-2.0, 1.0], [0.0, 4.0]]), DisplayOptions())
    >>> v.tolist(), lo, hi
    ([[0.0, 0.25], [0.0, 1.0]], 0.0, 1.0)
    >>> v, lo, hi = prepare(np.array([[-2.0, 1.0]]), DisplayOptions(signed=True, normalisation="raw"))
    >>> lo, hi
    (-2.0, 2.0)
    """
    data = np.asarray(values, dtype=np.float64)
    data = data if options.signed else np.maximum(data, 0.0)
    if options.normalisation == "percentile":
        limit = float(np.percentile(np.abs(data), options.percentile))
        data = np.clip(data, -limit, limit)
    magnitude = float(np.abs(data).max()) if data.size else 0.0
    if options.normalisation == "raw":
        if options.signed:
            return data, -magnitude, magnitude
        low, high = float(data.min()), float(data.max())
        return data, low, high if high > low else low + 1e-12
    if magnitude == 0.0:
        return np.zeros_like(data), (-1.0 if options.signed else 0.0), 1.0
    if options.signed:
        return data / magnitude, -1.0, 1.0
    low = float(data.min())
    span = float(data.max()) - low
    return (data - low) / (span if span > 0 else 1.0), 0.0, 1.0


def to_image_size(values: np.ndarray, shape) -> np.ndarray:
    """Resize a model-resolution map to an image of ``shape`` (H, W), bilinear."""
    height, width = int(shape[0]), int(shape[1])
    image = Image.fromarray(np.asarray(values, dtype=np.float32))
    return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)


def colorize(values: np.ndarray, cmap: str, low: float, high: float) -> np.ndarray:
    """Map values in [low, high] to RGB uint8 with a matplotlib colour map."""
    from matplotlib import colormaps

    scaled = (np.asarray(values, dtype=np.float64) - low) / ((high - low) or 1.0)
    return (colormaps[cmap](np.clip(scaled, 0.0, 1.0))[..., :3] * 255).astype(np.uint8)


def overlay(rgb: np.ndarray, values: np.ndarray, options: DisplayOptions) -> np.ndarray:
    """The map coloured and blended over the original cell, ``(H, W, 3)`` uint8."""
    prepared, low, high = prepare(values, options)
    coloured = colorize(to_image_size(prepared, rgb.shape[:2]), options.cmap, low, high)
    blended = (1.0 - options.opacity) * rgb.astype(np.float32) + options.opacity * coloured.astype(np.float32)
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def png_bytes(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def superpixel_boundaries(image: np.ndarray, labels: np.ndarray, colour=(255, 255, 0)) -> np.ndarray:
    """``image`` (float [0, 1] or uint8) with superpixel boundaries drawn, uint8."""
    from skimage.segmentation import find_boundaries

    rgb = _as_uint8(image).copy()
    rgb[find_boundaries(labels, mode="inner")] = colour
    return rgb


def superpixel_evidence(image: np.ndarray, labels: np.ndarray, positive, negative, *, alpha: float = 0.55,
                        positive_colour=(0, 170, 70), negative_colour=(215, 40, 40)) -> np.ndarray:
    """Tint the superpixels that push towards the target (green) and against it (red)."""
    rgb = _as_uint8(image).astype(np.float32)
    for ids, colour in ((positive, positive_colour), (negative, negative_colour)):
        ids = [int(i) for i in np.asarray(ids).ravel() if i >= 0]
        region = np.isin(labels, ids)
        rgb[region] = (1 - alpha) * rgb[region] + alpha * np.asarray(colour, np.float32)
    return superpixel_boundaries(np.clip(np.round(rgb), 0, 255).astype(np.uint8), labels, colour=(250, 250, 250))


def _as_uint8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
