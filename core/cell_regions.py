"""Where a cell is: its cell / nucleus / cytoplasm masks from the best source available.

Sources, first available wins: the latest pathologist annotation in the store, the
ground-truth masks beside a synthetic demo image (``truth/<stem>_cell.png``), then the
automatic outline suggestion. The source is reported, so results that rest on an automatic
outline are never mistaken for a pathologist's.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Regions:
    cell: np.ndarray  # (H, W) bool at original image resolution
    nucleus: np.ndarray
    cytoplasm: np.ndarray
    source: str  # "annotation: <annotator>", "ground truth" or "automatic outline"


def _truth_files(image_path) -> dict:
    """``{part: path}`` of the generator's ground-truth masks of one image (they may not exist)."""
    path = Path(image_path)
    return {part: path.parent / "truth" / f"{path.stem}_{part}.png" for part in ("cell", "nucleus", "cytoplasm")}


def truth_masks(image_path) -> Regions | None:
    """Ground-truth masks written by the synthetic generator next to a demo image."""
    files = _truth_files(image_path)
    if not all(f.is_file() for f in files.values()):
        return None
    masks = {part: np.asarray(Image.open(f).convert("L")) > 127 for part, f in files.items()}
    return Regions(masks["cell"], masks["nucleus"], masks["cytoplasm"], "ground truth")


def _annotation_source(annotation) -> str:
    return f"annotation: {annotation.annotator}"


def annotation_masks(annotations: dict) -> Regions | None:
    """Masks of the most recently updated annotation among ``{annotator: Annotation}``."""
    from core.annotations.masks import cell_masks
    from core.annotations.schema import latest_reading

    latest = latest_reading(annotations, with_outlines=True)
    if latest is None:
        return None
    masks = cell_masks(latest)
    if not masks.cell.any():
        return None
    return Regions(masks.cell, masks.nucleus, masks.cytoplasm, _annotation_source(latest))


@lru_cache(maxsize=8192)
def _outlines_cover_a_pixel(shapes: tuple, image_size: tuple) -> bool:
    """Whether these outlines give a non-empty cell mask (what :func:`annotation_masks`
    checks); kept per outline set, so the summary does not rasterise every cell on each rerun."""
    from core.annotations.masks import shapes_mask

    width, height = image_size
    return bool(shapes_mask(shapes, (height, width)).any())


def automatic_masks(rgb: np.ndarray) -> Regions:
    from core.annotations.segment import suggest_outlines

    suggestion = suggest_outlines(rgb)
    return Regions(suggestion.cell, suggestion.nucleus, suggestion.cell & ~suggestion.nucleus, "automatic outline")


def region_source(image_path, annotations: dict | None = None) -> str:
    """Where :func:`cell_regions` takes the masks of one image from, without decoding the
    image or running the outline suggestion (the summary's tables show it)."""
    from core.annotations.schema import latest_reading

    latest = latest_reading(annotations or {}, with_outlines=True)
    if latest is not None:
        # the cell mask is the union of every outline (cytoplasm | nucleus)
        if _outlines_cover_a_pixel(tuple(latest.shapes), tuple(latest.image_size)):
            return _annotation_source(latest)
    if all(f.is_file() for f in _truth_files(image_path).values()):
        return "ground truth"
    return "automatic outline"


def cell_regions(image_path, rgb: np.ndarray, annotations: dict | None = None) -> Regions:
    """The best available masks for one image (see the module docstring for the order)."""
    return (annotation_masks(annotations or {}) or truth_masks(image_path) or automatic_masks(rgb))
