"""Automatic outline suggestion: a classical stain-aware segmentation of the central cell.

The image is turned into optical density relative to its own background (Beer-Lambert:
stains add absorbance, so overlapping objects add up) and unmixed into three stain
concentrations: nucleus (deep blue-violet), neutrophil cytoplasm (pale lilac-pink) and red
cell (pink-mauve). Then

* nucleus = hysteresis threshold of the nucleus concentration relative to its own level
  (granules are removed first by a grey opening), closed, small holes filled (a ring
  nucleus keeps its hole);
* cell = cytoplasm concentration above a threshold, or nucleus; opened to cut bridges to
  touching red cells; the connected component at the image centre; holes filled.

Nothing is learnt; the defaults suit CellaVision May-Grunwald-Giemsa captures and are all
fields of :class:`SegmentationParams`. The suggestion is a starting point the pathologist
accepts or edits.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage as ndi
from skimage import measure, morphology
from skimage.filters import apply_hysteresis_threshold

from core.errors import DisplasiaError

from .masks import mask_iou
from .schema import Shape, ShapeLabel

_REFERENCE_BACKGROUND = (236.0, 228.0, 210.0)


@dataclass(frozen=True)
class SegmentationParams:
    """Settings of :func:`suggest_outlines` (hashable: usable as a cache key)."""

    #: Transmitted RGB of each stain at full strength over a cream reference background.
    nucleus_rgb: tuple[float, float, float] = (80.0, 50.0, 135.0)
    cytoplasm_rgb: tuple[float, float, float] = (220.0, 196.0, 214.0)
    red_cell_rgb: tuple[float, float, float] = (224.0, 170.0, 166.0)
    #: Brightness quantile above which pixels are taken as background.
    background_quantile: float = 0.8
    #: Nucleus hysteresis thresholds as fractions of the nucleus's own median level.
    nucleus_high: float = 0.55
    nucleus_low: float = 0.25
    #: Absolute nucleus concentration that seeds the level estimate.
    nucleus_seed: float = 0.30
    nucleus_sigma: float = 0.5
    nucleus_min_area: int = 60
    nucleus_max_hole: int = 150
    nucleus_closing_radius: int = 2
    #: Nucleus components must come this close to the centre (fraction of the shorter side).
    nucleus_max_offset: float = 0.3
    #: A nucleus component smaller than this fraction of the largest one is kept only if
    #: its median concentration reaches ``nucleus_dense_fraction`` of the level.
    nucleus_minor_fraction: float = 0.15
    nucleus_dense_fraction: float = 0.75
    #: Cytoplasm concentration (1 = full-strength cytoplasm) that counts as cell: a
    #: fraction of the level measured in a ring ``ring_inner``..``ring_outer`` pixels
    #: around the nucleus, clipped to [cell_threshold_min, cell_threshold].
    cell_threshold: float = 0.45
    cell_relative: float = 0.5
    cell_threshold_min: float = 0.15
    ring_inner: int = 4
    ring_outer: int = 14
    cell_sigma: float = 1.5
    cell_opening_radius: int = 3
    cell_edge_sigma: float = 2.0
    #: Douglas-Peucker tolerance (pixels) of the returned polygons.
    polygon_tolerance: float = 1.0


@dataclass(frozen=True)
class OutlineSuggestion:
    """Masks (``(H, W) ndarray`` of bool) and polygon outlines of the central cell."""

    cell: np.ndarray
    nucleus: np.ndarray
    shapes: tuple[Shape, ...]

    @property
    def cytoplasm(self) -> np.ndarray:
        return self.cell & ~self.nucleus


def _od(rgb: np.ndarray, background: np.ndarray) -> np.ndarray:
    return -np.log(np.maximum(rgb, 1.0) / np.maximum(background, 1.0))


def stain_concentrations(rgb: np.ndarray, params: SegmentationParams = SegmentationParams()
                         ) -> np.ndarray:
    """Nucleus, cytoplasm and red-cell concentrations, ``(H, W, 3) ndarray`` of float.

    The background colour is the median of the brightest pixels, so a warmer or cooler
    capture shifts the reference with it.
    """
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise DisplasiaError(f"expected an RGB image, got an array of shape {rgb.shape}")
    brightness = rgb.sum(axis=2)
    bright = brightness >= np.quantile(brightness, params.background_quantile)
    background = np.median(rgb[bright], axis=0)
    ref = np.asarray(_REFERENCE_BACKGROUND)
    stains = np.stack([_od(np.asarray(c, float), ref)
                       for c in (params.nucleus_rgb, params.cytoplasm_rgb, params.red_cell_rgb)])
    return _od(rgb, background) @ np.linalg.pinv(stains)


def _central_component(mask: np.ndarray) -> np.ndarray:
    labels = measure.label(mask)
    if labels.max() == 0:
        return mask
    h, w = mask.shape
    at_centre = labels[h // 2, w // 2]
    if at_centre:
        return labels == at_centre
    # Nothing under the centre pixel: the component closest to it, larger ones preferred.
    best = min(measure.regionprops(labels),
               key=lambda p: np.hypot(p.centroid[0] - h / 2, p.centroid[1] - w / 2) - np.sqrt(p.area))
    return labels == best.label


def _near_centre(mask: np.ndarray, max_offset: float) -> np.ndarray:
    """Keep components that reach within ``max_offset`` x the shorter side of the centre
    (platelets and neighbouring cells near the border are not the nucleus)."""
    labels = measure.label(mask)
    if labels.max() == 0:
        return mask
    h, w = mask.shape
    yy, xx = np.ogrid[:h, :w]
    near = np.hypot(yy - h / 2, xx - w / 2) <= max_offset * min(h, w)
    keep = np.unique(labels[near & mask])
    return np.isin(labels, keep[keep > 0])


def _drop_pale_specks(nucleus: np.ndarray, nuc_map: np.ndarray, level: float,
                      params: SegmentationParams) -> np.ndarray:
    """Remove small pale components (Dohle bodies, clumps of granules) from the nucleus.

    A real lobe is either large or as dense as the rest of the nucleus.
    """
    labels = measure.label(nucleus)
    if labels.max() <= 1:
        return nucleus
    regions = measure.regionprops(labels, intensity_image=nuc_map)
    largest = max(r.area for r in regions)
    keep = [r.label for r in regions
            if r.area >= params.nucleus_minor_fraction * largest
            or float(np.median(r.image_intensity[r.image])) >= params.nucleus_dense_fraction * level]
    return np.isin(labels, keep)


def _cell_threshold(cyto_map: np.ndarray, nucleus: np.ndarray, params: SegmentationParams) -> float:
    """Cytoplasm threshold from the cytoplasm's own level in a ring around the nucleus.

    Stains vary (a hypogranular cytoplasm is paler and bluer), so a fixed concentration
    would lose pale cells; the ring just outside the nucleus is cytoplasm in every cell.
    """
    if not nucleus.any():
        return params.cell_threshold
    outer = ndi.binary_dilation(nucleus, morphology.disk(params.ring_outer))
    inner = ndi.binary_dilation(nucleus, morphology.disk(params.ring_inner))
    ring = outer & ~inner
    if ring.sum() < 50:
        return params.cell_threshold
    level = float(np.median(cyto_map[ring]))
    return float(np.clip(params.cell_relative * level, params.cell_threshold_min,
                         params.cell_threshold))


def segment_cell(rgb: np.ndarray, params: SegmentationParams = SegmentationParams()
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(cell, nucleus) masks of the cell at the centre of ``rgb`` ((H, W, 3) uint8)."""
    conc = stain_concentrations(rgb, params)
    # Nucleus.
    nuc_map = ndi.gaussian_filter(conc[..., 0], params.nucleus_sigma)
    nuc_map = ndi.grey_opening(nuc_map, footprint=morphology.disk(2))   # drop granules
    seeds = nuc_map > params.nucleus_seed
    level = float(np.median(nuc_map[seeds])) if seeds.any() else 2 * params.nucleus_seed
    nucleus = apply_hysteresis_threshold(nuc_map, params.nucleus_low * level,
                                         params.nucleus_high * level)
    nucleus = ndi.binary_opening(nucleus, morphology.disk(2))
    nucleus = morphology.remove_small_objects(nucleus, max_size=params.nucleus_min_area)
    nucleus = _near_centre(nucleus, params.nucleus_max_offset)
    nucleus = _drop_pale_specks(nucleus, nuc_map, level, params)
    # Cell.
    cyto_map = ndi.gaussian_filter(conc[..., 1], params.cell_sigma)
    cell = (cyto_map > _cell_threshold(cyto_map, nucleus, params)) | nucleus
    cell = ndi.binary_opening(cell, morphology.disk(params.cell_opening_radius))
    cell = _central_component(cell)
    cell = ndi.binary_fill_holes(ndi.binary_closing(cell, morphology.disk(3)))
    # Smooth the ragged edge left by granules and noise (a cell outline is smooth).
    cell = ndi.gaussian_filter(cell.astype(float), params.cell_edge_sigma) > 0.5
    nucleus = ndi.binary_closing(nucleus & cell, morphology.disk(params.nucleus_closing_radius)) & cell
    nucleus = morphology.remove_small_holes(nucleus, max_size=params.nucleus_max_hole)
    return cell, nucleus


def mask_polygons(mask: np.ndarray, *, tolerance: float = 1.0, min_area: int = 20
                  ) -> list[list[tuple[float, float]]]:
    """Outer outlines of the components of ``mask`` as (x, y) polygons in pixel coordinates.

    Coordinates follow :mod:`core.annotations.masks` (pixel (r, c) has its centre at
    (c + 0.5, r + 0.5)), so rasterising the polygons gives the mask back closely.
    """
    filled = ndi.binary_fill_holes(mask)
    labels = measure.label(filled)
    polygons = []
    for region in measure.regionprops(labels):
        if region.area < min_area:
            continue
        one = np.pad(labels == region.label, 1)
        contours = measure.find_contours(one.astype(float), 0.5)
        if not contours:
            continue
        contour = max(contours, key=len)
        contour = measure.approximate_polygon(contour, tolerance)
        pts = [(float(c) - 1 + 0.5, float(r) - 1 + 0.5) for r, c in contour[:-1]]
        if len(pts) >= 3:
            polygons.append(pts)
    return polygons


def suggest_outlines(rgb: np.ndarray, params: SegmentationParams = SegmentationParams()
                     ) -> OutlineSuggestion:
    """Propose the cell and nucleus outlines of the neutrophil at the image centre.

    Parameters
    ----------
    rgb : (H, W, 3) ndarray of uint8
        The cell image at original resolution.

    Returns
    -------
    OutlineSuggestion
        Masks plus shapes: one "cytoplasm" outline (whole cell) and one "nucleus" outline
        per nucleus component, ready for an :class:`~core.annotations.Annotation`.
    """
    rgb = np.asarray(rgb)
    cell, nucleus = segment_cell(rgb, params)
    h, w = cell.shape
    shapes = []
    for label, mask in ((ShapeLabel.CYTOPLASM, cell), (ShapeLabel.NUCLEUS, nucleus)):
        for pts in mask_polygons(mask, tolerance=params.polygon_tolerance):
            pts = [(min(max(x, 0.0), w), min(max(y, 0.0), h)) for x, y in pts]
            shapes.append(Shape(label, tuple(pts)))
    return OutlineSuggestion(cell=cell, nucleus=nucleus, shapes=tuple(shapes))


@dataclass(frozen=True)
class SegmentationScore:
    """IoU of the suggestion against truth masks, per image and summarised."""

    rows: list = field(default_factory=list)   # dicts: image, cell_iou, nucleus_iou

    @property
    def n(self) -> int:
        return len(self.rows)

    def _values(self, key: str) -> np.ndarray:
        return np.array([r[key] for r in self.rows], dtype=float)

    @property
    def cell_mean(self) -> float:
        return float(self._values("cell_iou").mean()) if self.rows else float("nan")

    @property
    def cell_min(self) -> float:
        return float(self._values("cell_iou").min()) if self.rows else float("nan")

    @property
    def nucleus_mean(self) -> float:
        return float(self._values("nucleus_iou").mean()) if self.rows else float("nan")

    @property
    def nucleus_min(self) -> float:
        return float(self._values("nucleus_iou").min()) if self.rows else float("nan")


def _read_mask(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L")) > 127


def evaluate_folder(images_dir: str | Path, truth_dir: str | Path,
                    params: SegmentationParams = SegmentationParams()) -> SegmentationScore:
    """Mean IoU of :func:`suggest_outlines` over every image of ``images_dir`` that has
    ``<stem>_cell.png`` and ``<stem>_nucleus.png`` in ``truth_dir``."""
    images_dir, truth_dir = Path(images_dir), Path(truth_dir)
    if not images_dir.is_dir() or not truth_dir.is_dir():
        raise DisplasiaError(f"folder not found: {images_dir if not images_dir.is_dir() else truth_dir}")
    rows = []
    for path in sorted(images_dir.iterdir()):
        if path.suffix.lower() not in (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"):
            continue
        cell_truth = truth_dir / f"{path.stem}_cell.png"
        nucleus_truth = truth_dir / f"{path.stem}_nucleus.png"
        if not (cell_truth.is_file() and nucleus_truth.is_file()):
            continue
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
        result = suggest_outlines(rgb, params)
        rows.append({"image": path.name,
                     "cell_iou": mask_iou(result.cell, _read_mask(cell_truth)),
                     "nucleus_iou": mask_iou(result.nucleus, _read_mask(nucleus_truth))})
    if not rows:
        raise DisplasiaError(f"no image in {images_dir} has truth masks in {truth_dir}")
    return SegmentationScore(rows)
