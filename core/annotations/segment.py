"""Automatic outline suggestion: a classical colour segmentation of the central cell.

Everything is measured in CIE Lab relative to the image's own background (the median
colour of its brightest pixels), so a warmer, cooler, brighter or darker capture keeps
its parts. Then

* nucleus = dark and blue (lightness and b* well below the background's), opened to drop
  granules and the thin filaments between lobes; a component is kept only if it holds
  dense chromatin (hysteresis: clusters of granules never get that dark) and lies near the
  centre; closed, small holes filled (a ring nucleus keeps its hole);
* cell = not background and *lilac*: neutrophil cytoplasm is bluer for its darkness than
  the red cells around it (``b* - 0.5 L*`` relative to the background, measured once on
  the cytoplasm just outside the nucleus and once on the red cells far from it; the
  threshold lies 0.4 of the way from the red cells' level to the cytoplasm's); opened to
  cut bridges to touching red cells; the component that holds the nucleus part nearest
  the centre; nucleus parts not chained to that one by gaps under ``lobe_max_gap`` pixels
  (platelets, a touching neighbour's nucleus) are dropped and the pixels nearer to them
  cut off; at most ``max_rim`` pixels from the nucleus; closed, holes filled.

Nothing is learnt; the defaults suit CellaVision May-Grunwald-Giemsa captures (checked on
the generated demo set and on real PBC captures) and are all fields of
:class:`SegmentationParams`. The suggestion is a starting point the pathologist accepts or
edits.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage as ndi
from skimage import measure, morphology
from skimage.color import rgb2lab

from core.errors import DisplasiaError

from .masks import mask_iou
from .schema import Shape, ShapeLabel


@dataclass(frozen=True)
class SegmentationParams:
    """Settings of :func:`suggest_outlines` (hashable: usable as a cache key).

    Colour settings are CIE Lab differences from the image's own background.
    """

    #: Lightness quantile taken as the background level.
    background_quantile: float = 0.9
    #: Pixels darker than the background by this much are not background.
    foreground_drop: float = 5.0
    #: Nucleus: darker than the background by ``nucleus_drop`` and bluer (b*) by
    #: ``nucleus_blue``; a component must hold ``nucleus_dense_pixels`` pixels darker by
    #: ``nucleus_dense_drop`` (dense chromatin).
    nucleus_drop: float = 35.0
    nucleus_blue: float = 20.0
    nucleus_dense_drop: float = 50.0
    nucleus_dense_pixels: int = 40
    nucleus_sigma: float = 1.0
    nucleus_opening_radius: int = 4
    nucleus_min_area: int = 150
    nucleus_max_hole: int = 150
    nucleus_closing_radius: int = 2
    #: Nucleus components must lie this close to the centre (fraction of the shorter side).
    nucleus_max_offset: float = 0.33
    #: Lilac index ``b* - lilac_lightness_weight * L*`` (relative to the background):
    #: about 0 on red cells and background, clearly negative on neutrophil cytoplasm.
    lilac_lightness_weight: float = 0.5
    lilac_sigma: float = 2.0
    #: Where the cell threshold sits between the red-cell level (0) and the cytoplasm
    #: level (1), clipped to ``lilac_margin_min``..``lilac_margin_max`` below the red cells.
    lilac_split: float = 0.4
    lilac_margin_min: float = 1.0
    lilac_margin_max: float = 6.0
    #: Cytoplasm sample: ring ``ring_inner``..``ring_outer`` px around the nucleus; red
    #: cells: foreground farther than ``red_distance`` px from it.
    ring_inner: int = 4
    ring_outer: int = 12
    red_distance: int = 80
    cell_opening_radius: int = 6
    cell_closing_radius: int = 12
    #: Nucleus components this many pixels farther from the centre than the nearest one
    #: cannot be the main one (which picks the cell).
    main_tolerance: float = 15.0
    #: A nucleus part farther than this (pixels) from the main part is another cell's.
    #: (25 px cut off the far lobe of wide pseudo-Pelger dumbbells in large real-sized cells.)
    lobe_max_gap: float = 35.0
    #: The cytoplasm never reaches farther than this from the nucleus (pixels).
    max_rim: float = 65.0
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


def relative_lab(rgb: np.ndarray, params: SegmentationParams = SegmentationParams()) -> np.ndarray:
    """CIE Lab minus the background's Lab, ``(H, W, 3) ndarray`` of float.

    The background is the median colour of the pixels within 3 L* of the
    ``background_quantile`` lightness.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise DisplasiaError(f"expected an RGB image, got an array of shape {rgb.shape}")
    lab = rgb2lab(rgb.astype(np.uint8) if rgb.dtype != np.uint8 else rgb)
    L = lab[..., 0]
    level = float(np.quantile(L, params.background_quantile))
    background = np.median(lab[L >= level - 3.0], axis=0)
    background[0] = level
    return lab - background


def _disk(radius: int) -> np.ndarray:
    return morphology.disk(radius).astype(bool)


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


def _nucleus(rel: np.ndarray, params: SegmentationParams) -> np.ndarray:
    L = ndi.gaussian_filter(rel[..., 0], params.nucleus_sigma)
    b = ndi.gaussian_filter(rel[..., 2], params.nucleus_sigma)
    nucleus = (L < -params.nucleus_drop) & (b < -params.nucleus_blue)
    # Opening keeps lobes (15+ px thick), drops granules, chains of granules and filaments.
    nucleus = ndi.binary_opening(nucleus, structure=_disk(params.nucleus_opening_radius))
    labels, n = ndi.label(nucleus)
    if n == 0:
        return nucleus
    index = np.arange(1, n + 1)
    dense = ndi.sum(L < -params.nucleus_dense_drop, labels, index=index)
    sizes = ndi.sum(nucleus, labels, index=index)
    centres = ndi.center_of_mass(nucleus, labels, index=index)
    h, w = nucleus.shape
    reach = params.nucleus_max_offset * min(h, w)
    keep = [i for i, d, s, (cy, cx) in zip(index, dense, sizes, centres)
            if d >= params.nucleus_dense_pixels and s >= params.nucleus_min_area
            and np.hypot(cy - h / 2, cx - w / 2) < reach]
    return np.isin(labels, keep)


def _lilac_threshold(lilac: np.ndarray, foreground: np.ndarray, nucleus: np.ndarray,
                     params: SegmentationParams) -> float:
    """Threshold of the lilac index between the red cells' level and the cytoplasm's.

    Stains vary (a hypogranular cytoplasm is paler and bluer, a warm capture shifts every
    part), so both levels are measured on the image itself.
    """
    distance = ndi.distance_transform_edt(~nucleus)
    ring = foreground & (distance > params.ring_inner) & (distance < params.ring_outer)
    far = foreground & (distance > params.red_distance)
    red_level = float(np.median(lilac[far])) if far.sum() >= 200 else 0.0
    if ring.sum() < 50:
        return red_level - params.lilac_margin_max
    cyto_level = float(np.median(lilac[ring]))
    margin = params.lilac_split * (red_level - cyto_level)
    return red_level - float(np.clip(margin, params.lilac_margin_min, params.lilac_margin_max))


def _main_component(mask: np.ndarray, tolerance: float) -> np.ndarray:
    """The component nearest to the image centre (its closest pixel); among those within
    ``tolerance`` pixels of the nearest, the largest (a lobe of the central cell, not a
    neighbouring cell's nucleus)."""
    labels, n = ndi.label(mask)
    h, w = mask.shape
    yy, xx = np.mgrid[:h, :w]
    index = np.arange(1, n + 1)
    reach = np.asarray(ndi.minimum(np.hypot(yy - h / 2, xx - w / 2), labels, index=index))
    sizes = np.asarray(ndi.sum(mask, labels, index=index))
    near = reach <= reach.min() + tolerance
    return labels == index[near][np.argmax(sizes[near])]


def segment_cell(rgb: np.ndarray, params: SegmentationParams = SegmentationParams()
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(cell, nucleus) masks of the cell at the centre of ``rgb`` ((H, W, 3) uint8)."""
    rel = relative_lab(rgb, params)
    nucleus = _nucleus(rel, params)
    if not nucleus.any():
        empty = np.zeros(rel.shape[:2], bool)
        return empty, empty
    foreground = ndi.gaussian_filter(rel[..., 0], 1.5) < -params.foreground_drop
    lilac = ndi.gaussian_filter(rel[..., 2] - params.lilac_lightness_weight * rel[..., 0],
                                params.lilac_sigma)
    threshold = _lilac_threshold(lilac, foreground, nucleus, params)
    near_nucleus = ndi.binary_dilation(nucleus, iterations=3)
    cell = foreground & (lilac < threshold) | near_nucleus
    cell = ndi.binary_opening(cell, structure=_disk(params.cell_opening_radius)) | nucleus
    # The cell is the component holding the main nucleus component; other nucleus
    # components count only inside it (a platelet or a neighbour's nucleus is not a lobe).
    main = _main_component(nucleus, params.main_tolerance)
    # Lobes lie close to each other (joined by filaments the opening removed): a nucleus
    # part not linked to the main one by a chain of gaps under ``lobe_max_gap`` belongs to
    # a neighbouring cell, whose territory is then cut off.
    near = ndi.distance_transform_edt(~nucleus) <= params.lobe_max_gap / 2
    groups, _ = ndi.label(near)
    foreign = nucleus & ~np.isin(groups, np.unique(groups[main]))
    nucleus &= ~foreign
    if foreign.any():
        cell &= ndi.distance_transform_edt(~nucleus) <= ndi.distance_transform_edt(~foreign)
    labels = measure.label(cell)
    ids = np.unique(labels[main])
    cell = np.isin(labels, ids[ids > 0])
    nucleus &= cell
    cell &= ndi.distance_transform_edt(~nucleus) < params.max_rim
    cell = ndi.binary_fill_holes(ndi.binary_closing(cell, structure=_disk(params.cell_closing_radius)))
    # Smooth the ragged edge left by granules and noise (a cell outline is smooth).
    cell = ndi.gaussian_filter(cell.astype(float), params.cell_edge_sigma) > 0.5
    cell = ndi.binary_fill_holes(cell)
    nucleus = ndi.binary_closing(nucleus, _disk(params.nucleus_closing_radius)) & cell
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
