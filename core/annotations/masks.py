"""Rasterise annotation outlines into boolean cell, nucleus and cytoplasm masks.

Pixel (row r, column c) covers the square [c, c+1) x [r, r+1) of the outline coordinates,
so a pixel belongs to a region when its centre (c + 0.5, r + 0.5) lies inside the
outline. A 10 x 10 pixel rectangle drawn from (0, 0) to (10, 10) therefore covers exactly
100 pixels.

Masks at model resolution are the image-resolution masks resized with the same
nearest-neighbour sampling PIL uses to resize the image for the model, so mask pixel
(i, j) always describes model-input pixel (i, j).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from PIL import Image
from skimage.draw import polygon as draw_polygon

from core.preprocess import resize_mask

from .schema import Annotation, Shape, ShapeLabel

MODEL_SIZE = (299, 299)


@dataclass(frozen=True)
class CellMasks:
    """Boolean masks, each ``(H, W) ndarray`` of bool.

    ``cell`` is the whole cell (cytoplasm outlines united with the nucleus), ``nucleus``
    the union of the nucleus outlines, ``cytoplasm`` = cell minus nucleus.
    """

    cell: np.ndarray
    nucleus: np.ndarray
    cytoplasm: np.ndarray

    def resized(self, size: tuple[int, int] = MODEL_SIZE) -> CellMasks:
        """Masks resized to ``size`` = (height, width) with NEAREST, like the image."""
        return CellMasks(*(resize_mask(m, size) for m in (self.cell, self.nucleus, self.cytoplasm)))


def polygon_mask(points: Iterable[tuple[float, float]], shape: tuple[int, int]) -> np.ndarray:
    """Fill one closed polygon given as (x, y) points into a ``shape`` = (H, W) bool mask.

    Examples
    --------
    >>> int(polygon_mask([(0, 0), (10, 0), (10, 10), (0, 10)], (20, 20)).sum())
    100
    """
    pts = np.asarray(list(points), dtype=float)
    mask = np.zeros(shape, dtype=bool)
    if len(pts) < 3:
        return mask
    # Shift by half a pixel: skimage tests integer (row, col) positions, our pixel centres
    # sit at +0.5.
    rr, cc = draw_polygon(pts[:, 1] - 0.5, pts[:, 0] - 0.5, shape=shape)
    mask[rr, cc] = True
    return mask


def shapes_mask(shapes: Iterable[Shape], shape: tuple[int, int],
                label: ShapeLabel | str | None = None) -> np.ndarray:
    """Union of the outlines (optionally only those with ``label``) as a (H, W) bool mask."""
    want = None if label is None else ShapeLabel(label)
    mask = np.zeros(shape, dtype=bool)
    for s in shapes:
        if want is None or s.label is want:
            mask |= polygon_mask(s.points, shape)
    return mask


def cell_masks(annotation: Annotation, *, size: tuple[int, int] | None = None) -> CellMasks:
    """Cell, nucleus and cytoplasm masks of ``annotation``.

    Parameters
    ----------
    annotation : Annotation
    size : (height, width), optional
        Output resolution. None gives image resolution; e.g. (299, 299) gives the
        model-input resolution (nearest-neighbour, same geometry as the resized image).

    Returns
    -------
    CellMasks
        Three ``(H, W) ndarray`` of bool.
    """
    width, height = annotation.image_size
    grid = (height, width)
    nucleus = shapes_mask(annotation.shapes, grid, ShapeLabel.NUCLEUS)
    cell = shapes_mask(annotation.shapes, grid, ShapeLabel.CYTOPLASM) | nucleus
    masks = CellMasks(cell=cell, nucleus=nucleus, cytoplasm=cell & ~nucleus)
    if size is not None and tuple(size) != (height, width):
        masks = masks.resized(tuple(size))
    return masks


def model_masks(annotation: Annotation, size: tuple[int, int] = MODEL_SIZE) -> CellMasks:
    """:func:`cell_masks` at model-input resolution (default 299 x 299)."""
    return cell_masks(annotation, size=size)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks; 1.0 when both are empty.

    >>> a = np.zeros((4, 4), bool); a[:2] = True
    >>> b = np.zeros((4, 4), bool); b[1:3] = True
    >>> round(mask_iou(a, b), 4)
    0.3333
    """
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    union = np.logical_or(a, b).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(a, b).sum() / union)


def mask_png_bytes(mask: np.ndarray) -> bytes:
    """A bool mask as an 8-bit PNG (0 / 255)."""
    import io
    buf = io.BytesIO()
    Image.fromarray(np.asarray(mask, dtype=np.uint8) * 255).save(buf, format="PNG")
    return buf.getvalue()
