"""How far the generated neutrophils are from real CellaVision captures.

Two measures, both on NORMAL cells (the only real cells there are):

* a **classifier two-sample test** (Lopez-Paz & Oquab, "Revisiting classifier two-sample
  tests", ICLR 2017): a small classifier learns to tell real from synthetic cells on
  hand-made colour and texture features; its accuracy on cells it never saw is the
  measure. 0.5 means the classifier cannot tell them apart; 1.0 means every cell gives
  itself away.
* **per-part distances**: mean colour (CIE Lab, Delta E 1976) and fine-scale texture of
  background, red cells, neutrophil cytoplasm and nucleus, each segmented with the same
  simple colour thresholds on real and synthetic images, so a segmentation error hits
  both sides alike.

The real cells are split once, by sorted file name: every fourth cell (index 3, 7, ...)
is *held out*. Tuning the generator may look at the other cells only; the reported
two-sample accuracy trains on the tuning cells and tests on the held-out ones.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from core.errors import DisplasiaError

from .render import IMAGE_SHAPE

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
PARTS = ("background", "red_cells", "cytoplasm", "nucleus")
#: Every ``HOLD_OUT_EVERY``-th cell by sorted name (starting at index ``HOLD_OUT_EVERY - 1``)
#: is held out.
HOLD_OUT_EVERY = 4
#: Seed of the synthetic normal cells the realism command generates.
REALISM_SEED = 777
#: Difference-of-Gaussian scales (pixels) of the texture bands: fine granule scale,
#: chromatin clumps, coarse shading.
_BANDS = ((0.6, 1.2), (1.2, 2.4), (2.4, 4.8))
_MAX_RIM = 45.0
_DISK3 = np.hypot(*np.mgrid[-3:4, -3:4]) <= 3.0


def is_held_out(index: int) -> bool:
    """True for the cells (by position in sorted-name order) that tuning must not see."""
    return index % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1


def image_paths(folder) -> list[Path]:
    """Image files of ``folder`` in sorted-name order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DisplasiaError(f"folder not found: {folder}")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DisplasiaError(f"no images in {folder}")
    return paths


def load_capture(path) -> np.ndarray:
    """An image as ``(363, 360, 3) uint8``: larger captures (366 x 369) are centre-cropped,
    smaller ones padded by edge replication, so image size gives nothing away."""
    try:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
    except OSError as exc:
        raise DisplasiaError(f"cannot read image {Path(path).name}: {exc}") from None
    return fit_shape(rgb)


def fit_shape(rgb: np.ndarray, shape=IMAGE_SHAPE) -> np.ndarray:
    h, w = shape
    H, W = rgb.shape[:2]
    if H < h or W < w:
        rgb = np.pad(rgb, ((0, max(h - H, 0)), (0, max(w - W, 0)), (0, 0)), mode="edge")
        H, W = rgb.shape[:2]
    y0, x0 = (H - h) // 2, (W - w) // 2
    return rgb[y0:y0 + h, x0:x0 + w]


# --------------------------------------------------------------------------- segmentation

def part_masks(rgb: np.ndarray, lab: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Background, red-cell, cytoplasm and nucleus masks from colour thresholds.

    Thresholds are relative to the image's own background lightness, so a brighter or
    darker capture keeps its parts. Nucleus: dark and blue (Lab b* below the background's
    by 20). Cell: the not-background region around the nucleus that is not red-cell
    coloured, opened to cut it from touching red cells. Red cells: the rest of the
    not-background region, away from the neutrophil.

    >>> rgb = np.full((120, 120, 3), (250, 225, 205), np.uint8)
    >>> rgb[30:90, 30:90] = (200, 190, 210); rgb[45:75, 45:75] = (90, 50, 150)
    >>> m = part_masks(rgb)
    >>> bool(m["nucleus"][60, 60]), bool(m["cytoplasm"][35, 35]), bool(m["background"][5, 5])
    (True, True, True)
    """
    from skimage.color import rgb2lab

    lab = rgb2lab(rgb) if lab is None else lab
    L, b = lab[..., 0], lab[..., 2]
    bg_L, bg_b = levels = background_levels(lab)
    not_bg = ndi.gaussian_filter(L, 1.5) < bg_L - 5.0
    L_s = ndi.gaussian_filter(L, 1.0)
    nucleus = chromatin_like(L_s, ndi.gaussian_filter(b, 1.0), levels)
    # Opening with a disk of radius 3 keeps lobes (15+ px thick) and drops granules and
    # chains of granules (a few px) and the thin filaments between lobes.
    nucleus = ndi.binary_opening(nucleus, structure=_DISK3)
    # Hysteresis: a nucleus region holds dense chromatin; clusters of granules, however
    # dark and blue, never get that dense.
    labels, n = ndi.label(nucleus)
    if n:
        dense = ndi.sum(L_s < bg_L - 50.0, labels, index=np.arange(1, n + 1))
        nucleus = np.isin(labels, 1 + np.flatnonzero(dense >= 40))
    nucleus = _central_components(nucleus, min_area=150)
    # Red cells are redder (a*) and warmer (b*) than neutrophil cytoplasm, which is lilac.
    red_like = ndi.gaussian_filter(b, 2.0) > bg_b - 10.0
    cell_candidate = not_bg & ~(red_like & ~ndi.binary_dilation(nucleus, iterations=6))
    cell = ndi.binary_opening(cell_candidate, iterations=4) | nucleus
    cell = _component_touching(cell, nucleus)
    # Cytoplasm is a rim around the nucleus, never wider than about a red-cell diameter:
    # this stops a leak into a bluish neighbour.
    cell &= ndi.distance_transform_edt(~nucleus) < _MAX_RIM
    cell = ndi.binary_fill_holes(ndi.binary_closing(cell, iterations=3))
    cell_zone = ndi.binary_dilation(cell, iterations=4)
    red = not_bg & ~cell_zone
    background = ~ndi.binary_dilation(not_bg, iterations=2) & ~cell_zone
    return {"background": background, "red_cells": red, "cytoplasm": cell & ~nucleus, "nucleus": nucleus}


def background_levels(lab: np.ndarray) -> tuple[float, float]:
    """L* and b* of a capture's background (its brightest tenth): every threshold of
    :func:`part_masks` is relative to them, so a brighter or darker capture keeps its parts."""
    L = lab[..., 0]
    bg_L = float(np.percentile(L, 90))
    return bg_L, float(np.median(lab[..., 2][L >= bg_L - 3]))


def chromatin_like(L_s: np.ndarray, b_s: np.ndarray, levels: tuple[float, float]) -> np.ndarray:
    """Pixels as dark and blue as chromatin (or a platelet): L* (smoothed) 28 below the
    background's and b* 20 below, ``levels`` from :func:`background_levels`."""
    bg_L, bg_b = levels
    return (L_s < bg_L - 28.0) & (b_s < bg_b - 20.0)


def _central_components(mask: np.ndarray, *, min_area: int) -> np.ndarray:
    """Components of at least ``min_area`` pixels within a third of the image of its centre."""
    labels, n = ndi.label(mask)
    if n == 0:
        return mask
    h, w = mask.shape
    sizes = ndi.sum(mask, labels, index=np.arange(1, n + 1))
    centres = ndi.center_of_mass(mask, labels, index=np.arange(1, n + 1))
    keep = [i + 1 for i, (s, (cy, cx)) in enumerate(zip(sizes, centres))
            if s >= min_area and math.hypot(cy - h / 2, cx - w / 2) < min(h, w) / 3]
    if not keep:
        keep = [int(np.argmax(sizes)) + 1]
    return np.isin(labels, keep)


def _component_touching(mask: np.ndarray, seed: np.ndarray) -> np.ndarray:
    labels, n = ndi.label(mask)
    ids = np.unique(labels[seed & mask])
    ids = ids[ids > 0]
    return np.isin(labels, ids) if len(ids) else seed


# --------------------------------------------------------------------------- features

def _lbp_histogram(L: np.ndarray, mask: np.ndarray) -> np.ndarray:
    from skimage.feature import local_binary_pattern

    # On 8-bit lightness: LBP compares neighbours, and float noise would flip ties.
    codes = local_binary_pattern(np.clip(L * 2.55, 0, 255).astype(np.uint8), 8, 1, method="uniform")
    if mask.sum() < 20:
        return np.zeros(10)
    return np.bincount(codes[mask].astype(int), minlength=10)[:10] / float(mask.sum())


@dataclass(frozen=True)
class CellMeasures:
    """Per-image measurements: the classifier's feature vector and per-part summaries."""

    features: np.ndarray          # (F,) float
    part_lab: dict                # part -> (3,) mean Lab, or None if the part is empty
    part_texture: dict            # part -> fine-band standard deviation of L, or None
    areas: dict                   # part -> fraction of the image


def measure_cell(rgb: np.ndarray) -> CellMeasures:
    """Colour and texture features of one ``(363, 360, 3) uint8`` image."""
    from skimage.color import rgb2lab

    rgb = fit_shape(np.asarray(rgb))
    lab = rgb2lab(rgb)
    masks = part_masks(rgb, lab)
    L = lab[..., 0]
    blurred = {s: ndi.gaussian_filter(L, s) for s in sorted({s for band in _BANDS for s in band})}
    bands = [blurred[s0] - blurred[s1] for s0, s1 in _BANDS]
    feats: list[float] = []
    part_lab, part_tex, areas = {}, {}, {}
    for part in PARTS:
        m = masks[part]
        areas[part] = float(m.mean())
        if m.sum() >= 30:
            px = lab[m]
            mean, sd = px.mean(0), px.std(0)
            energies = [float(band[m].std()) for band in bands]
            part_lab[part], part_tex[part] = mean, energies[0]
        else:
            mean, sd = np.full(3, np.nan), np.full(3, np.nan)
            energies = [np.nan] * len(bands)
            part_lab[part], part_tex[part] = None, None
        feats += [*mean, *sd, *np.log(np.asarray(energies) + 1e-3), areas[part]]
    for channel, (lo, hi) in zip(range(3), ((20, 100), (-10, 40), (-50, 30))):
        hist, _ = np.histogram(lab[..., channel], bins=8, range=(lo, hi))
        feats += list(hist / hist.sum())
    cell = masks["cytoplasm"] | masks["nucleus"]
    feats += list(_lbp_histogram(L, masks["cytoplasm"]))
    feats += list(_lbp_histogram(L, masks["background"] | masks["red_cells"]))
    feats.append(float(cell.mean()))
    return CellMeasures(np.asarray(feats, dtype=np.float64), part_lab, part_tex, areas)


#: Feature families of the two-sample test. ``hand``: the colour and texture features
#: above, which the generator was tuned against; ``pixels`` (24 x 24 block means of RGB)
#: and ``random-conv`` (fixed random filters) were never looked at while tuning, so they
#: check that the generator did not just learn to pass the hand-made features.
FEATURE_FAMILIES = ("hand", "pixels", "random-conv")
_RANDOM_FILTERS = np.random.default_rng(12345).standard_normal((48, 5, 5, 3)).astype(np.float32)
_RANDOM_FILTERS -= _RANDOM_FILTERS.mean(axis=(1, 2, 3), keepdims=True)


def pixel_features(rgb: np.ndarray) -> np.ndarray:
    """The image as 24 x 24 blocks of 15 x 15 pixels, mean RGB in [0, 1]: ``(1728,)``."""
    x = fit_shape(np.asarray(rgb)).astype(np.float32) / 255.0
    return x[:360, :360].reshape(24, 15, 24, 15, 3).mean(axis=(1, 3)).ravel()


def random_conv_features(rgb: np.ndarray) -> np.ndarray:
    """Mean and 95th percentile of 48 ReLU responses of fixed random zero-mean 5 x 5 x 3
    filters (texture, edges, colour noise at the pixel scale): ``(96,)``."""
    x = fit_shape(np.asarray(rgb)).astype(np.float32) / 255.0
    out = []
    for w in _RANDOM_FILTERS:
        r = np.maximum(sum(ndi.correlate(x[..., c], w[..., c], mode="reflect") for c in range(3)), 0.0)
        out += [float(r.mean()), float(np.percentile(r, 95))]
    return np.asarray(out)


# --------------------------------------------------------------------------- the test

def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion.

    >>> lo, hi = wilson_interval(50, 100)
    >>> round(lo, 3), round(hi, 3)
    (0.404, 0.596)
    """
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


def _classifier(kind: str, *, components: int | None = None):
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "logistic":
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=0.1, max_iter=5000)
    elif kind == "boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier

        model = HistGradientBoostingClassifier(max_iter=150, max_depth=3, learning_rate=0.1, random_state=0)
    else:
        raise DisplasiaError(f"unknown classifier {kind!r}: choose logistic or boosting")
    if components:
        from sklearn.decomposition import PCA

        return make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                             PCA(components, random_state=0), model)
    return make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), model)


@dataclass(frozen=True)
class TwoSampleResult:
    classifier: str
    accuracy: float
    ci: tuple[float, float]
    n_test_real: int
    n_test_synthetic: int
    n_train_real: int
    n_train_synthetic: int
    real_called_real: float          # share of held-out real cells the classifier calls real
    synthetic_called_synthetic: float


def two_sample_test(real_train, synth_train, real_test, synth_test, *, classifier="logistic",
                    components: int | None = None) -> TwoSampleResult:
    """Train on (real_train, synth_train) feature rows, report accuracy on the test rows.
    ``components``: reduce the standardised rows to that many principal components first."""
    x = np.vstack([real_train, synth_train])
    y = np.r_[np.ones(len(real_train)), np.zeros(len(synth_train))]
    model = _classifier(classifier, components=components).fit(x, y)
    pred_real = model.predict(np.asarray(real_test)) == 1
    pred_synth = model.predict(np.asarray(synth_test)) == 0
    correct = int(pred_real.sum() + pred_synth.sum())
    n = len(pred_real) + len(pred_synth)
    return TwoSampleResult(classifier, correct / n, wilson_interval(correct, n), len(real_test), len(synth_test),
                           len(real_train), len(synth_train), float(pred_real.mean()), float(pred_synth.mean()))


def cross_validated_accuracy(real, synth, *, classifier="logistic", folds=5, components: int | None = None) -> float:
    """Stratified k-fold accuracy: the number to tune on (tuning cells only)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    x = np.vstack([real, synth])
    y = np.r_[np.ones(len(real)), np.zeros(len(synth))]
    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    return float(cross_val_score(_classifier(classifier, components=components), x, y, cv=cv).mean())


def grouped_cv_accuracy(real, synth, real_groups, synth_groups, *, classifier="logistic", folds=5,
                        components: int | None = None) -> float:
    """k-fold accuracy with folds split by *group*: a real cell's own name, and for a cell drawn
    into a real capture (generator 4.0 and later) the name of that capture.

    A canvas-based generator reuses each tuning capture for several synthetic cells, and the
    capture is itself one of the real tuning cells. Plain cross-validation (and the held-out
    test, whose synthetic cells reuse the captures of the training ones) can then recognise a
    capture seen in training instead of telling real from synthetic: on unchanged copies of the
    captures, boosted trees scored 0.78 on the held-out split. Here a capture, its real cell and
    every cell drawn into it are always in the same fold.
    """
    from sklearn.model_selection import GroupKFold

    x = np.vstack([real, synth])
    y = np.r_[np.ones(len(real)), np.zeros(len(synth))]
    groups = np.asarray([*real_groups, *synth_groups], dtype=object)
    if len(groups) != len(y):
        raise DisplasiaError("one group per real and per synthetic cell is needed")
    folds = min(folds, len(set(groups)))
    correct = 0
    for train, test in GroupKFold(folds).split(x, y, groups):
        model = _classifier(classifier, components=components).fit(x[train], y[train])
        correct += int((model.predict(x[test]) == y[test]).sum())
    return correct / len(y)


@dataclass(frozen=True)
class PartDistance:
    part: str
    real_lab: tuple[float, float, float]
    synthetic_lab: tuple[float, float, float]
    delta_e: float
    real_texture: float
    synthetic_texture: float
    real_area: float
    synthetic_area: float


def part_distances(real: list[CellMeasures], synth: list[CellMeasures]) -> list[PartDistance]:
    """Mean Lab colour, Delta E 1976, fine-band texture and area of each part."""
    out = []
    def mean_lab(ms, part):
        v = [m.part_lab[part] for m in ms if m.part_lab[part] is not None]
        return np.mean(v, axis=0) if v else np.full(3, np.nan)

    def median_texture(ms, part):
        v = [m.part_texture[part] for m in ms if m.part_texture[part] is not None]
        return float(np.median(v)) if v else float("nan")

    for part in PARTS:
        r, s = mean_lab(real, part), mean_lab(synth, part)
        out.append(PartDistance(part, tuple(np.round(r, 1)), tuple(np.round(s, 1)), float(np.linalg.norm(r - s)),
                                median_texture(real, part), median_texture(synth, part),
                                float(np.mean([m.areas[part] for m in real])),
                                float(np.mean([m.areas[part] for m in synth]))))
    return out


@dataclass(frozen=True)
class RealismReport:
    two_sample: TwoSampleResult
    tuning_cv_accuracy: float
    parts: list
    n_real: int
    n_synthetic: int
    source: str
    features: str = "hand"
    grouped_cv_accuracy: float | None = None   # tuning cells, folds split by capture (canvas generators)

    def lines(self) -> list[str]:
        t = self.two_sample
        family = {"hand": "colour + texture features", "pixels": "24x24 pixel blocks, 20 principal components",
                  "random-conv": "random convolution features"}[self.features]
        out = [
            f"real: {self.n_real} cells ({t.n_train_real} tuning, {t.n_test_real} held out); "
            f"synthetic: {self.n_synthetic} normal cells ({self.source})",
            f"two-sample test ({t.classifier} on {family}), held-out accuracy "
            f"{t.accuracy:.3f} (95% CI {t.ci[0]:.3f}-{t.ci[1]:.3f}; 0.5 = indistinguishable) "
            f"on {t.n_test_real} real + {t.n_test_synthetic} synthetic",
            f"  held-out real called real {t.real_called_real:.2f}, synthetic called synthetic "
            f"{t.synthetic_called_synthetic:.2f}; 5-fold CV accuracy on tuning cells {self.tuning_cv_accuracy:.3f}",
        ]
        if self.grouped_cv_accuracy is not None:
            out.append(f"  5-fold CV accuracy on tuning cells grouped by capture (a capture, its real cell and the "
                       f"cells drawn into it never split) {self.grouped_cv_accuracy:.3f}")
        out.append("part        real Lab              synthetic Lab         dE76   texture real/synth   area real/synth")
        for p in self.parts:
            rl = " ".join(f"{v:5.1f}" for v in p.real_lab)
            sl = " ".join(f"{v:5.1f}" for v in p.synthetic_lab)
            out.append(f"{p.part:<11} {rl:<21} {sl:<21} {p.delta_e:5.1f}   {p.real_texture:5.2f} / "
                       f"{p.synthetic_texture:5.2f}        {p.real_area:.3f} / {p.synthetic_area:.3f}")
        return out


def synthetic_cells(n: int, seed: int = REALISM_SEED, *, version: str | None = None):
    """``n`` generated normal cells (:class:`~core.synth.render.SyntheticCell`) of set ``seed``."""
    from . import GENERATOR_VERSION, generate_cell

    return [generate_cell(seed, i, "normal", version=version or GENERATOR_VERSION) for i in range(n)]


def synthetic_images(n: int, seed: int = REALISM_SEED, *, version: str | None = None):
    """``n`` generated normal cells (decoded JPEG pixels) of set ``seed``."""
    return [cell.rgb for cell in synthetic_cells(n, seed, version=version)]


def realism_report(real_images, synth_images, *, classifier="logistic", source="generated",
                   features="hand", real_names=None, synth_captures=None) -> RealismReport:
    """Split both sides by position (every fourth held out), test, and measure parts.

    ``features`` is the family the two-sample classifier sees (:data:`FEATURE_FAMILIES`);
    the per-part distances always come from the hand-made measures. ``real_names`` (file
    names) and ``synth_captures`` (for each synthetic cell the file name of the real capture
    it was drawn into) add the CV grouped by capture (:func:`grouped_cv_accuracy`).
    """
    if features not in FEATURE_FAMILIES:
        raise DisplasiaError(f"unknown feature family {features!r}: choose one of {', '.join(FEATURE_FAMILIES)}")
    if len(real_images) < 2 * HOLD_OUT_EVERY or len(synth_images) < 2 * HOLD_OUT_EVERY:
        raise DisplasiaError(f"need at least {2 * HOLD_OUT_EVERY} real and synthetic images for the realism test")
    real = [measure_cell(x) for x in real_images]
    synth = [measure_cell(x) for x in synth_images]
    if features == "hand":
        rows_real, rows_synth = [m.features for m in real], [m.features for m in synth]
    else:
        family = pixel_features if features == "pixels" else random_conv_features
        rows_real, rows_synth = [family(x) for x in real_images], [family(x) for x in synth_images]
    feats = lambda rows, held: np.array([r for i, r in enumerate(rows) if is_held_out(i) == held])  # noqa: E731
    # 20 components, fewer on tiny sets (cross-validation folds hold 4/5 of the tuning rows).
    n_fold = 4 * (len(feats(rows_real, False)) + len(feats(rows_synth, False))) // 5
    components = min(20, n_fold - 1) if features == "pixels" else None
    result = two_sample_test(feats(rows_real, False), feats(rows_synth, False), feats(rows_real, True),
                             feats(rows_synth, True), classifier=classifier, components=components)
    cv = cross_validated_accuracy(feats(rows_real, False), feats(rows_synth, False), classifier=classifier,
                                  components=components)
    grouped = None
    if real_names is not None and synth_captures is not None and all(synth_captures):
        grouped = grouped_cv_accuracy(feats(rows_real, False), feats(rows_synth, False), feats(real_names, False),
                                      feats(synth_captures, False), classifier=classifier, components=components)
    held_real = [m for i, m in enumerate(real) if is_held_out(i)]
    held_synth = [m for i, m in enumerate(synth) if is_held_out(i)]
    return RealismReport(result, cv, part_distances(held_real, held_synth), len(real), len(synth), source, features,
                         grouped)


def comparison_sheet(real_images, synth_images, *, columns: int = 4, thumb: int = 180):
    """A PIL image: real cells in the top rows, synthetic ones below, same scale."""
    from PIL import ImageDraw

    rows_each = -(-max(len(real_images), len(synth_images)) // columns)
    label_h = 18
    width = columns * thumb
    height = 2 * (label_h + rows_each * thumb)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    y = 0
    for title, images in (("real CellaVision DM96 (PBC data set, CC BY 4.0)", real_images),
                          ("synthetic (core.synth)", synth_images)):
        draw.text((4, y + 3), title, fill=(0, 0, 0))
        y += label_h
        for k, rgb in enumerate(images):
            r, c = divmod(k, columns)
            tile = Image.fromarray(fit_shape(np.asarray(rgb))).resize((thumb, thumb), Image.Resampling.LANCZOS)
            sheet.paste(tile, (c * thumb, y + r * thumb))
        y += rows_each * thumb
    return sheet


# --------------------------------------------------------------------------- edges

#: Boundaries whose profiles :func:`edge_profiles` measures: red cell | background,
#: neutrophil | background, nucleus | cytoplasm (the first part lies at negative distances).
BOUNDARIES = ("red|background", "cell|background", "nucleus|cytoplasm")
#: Signed distances (pixels) of the edge profiles; negative inside the first part.
EDGE_DISTANCES = np.arange(-8, 9)
#: Bands of outline harmonics (cycles per turn) of :func:`outline_spectrum`.
OUTLINE_BANDS = ((2, 5), (5, 9), (9, 17), (17, 33), (33, 65))


def _signed_distance(mask: np.ndarray) -> np.ndarray:
    """Distance to the edge of ``mask``: negative inside (-1 on the first pixel in), positive outside."""
    return np.where(mask, -ndi.distance_transform_edt(mask), ndi.distance_transform_edt(~mask))


def edge_profiles(rgb: np.ndarray) -> dict[str, np.ndarray]:
    """Mean L*, a*, b* and gradient magnitude of L* (Gaussian, 0.7 px) at each signed
    distance from each boundary of :data:`BOUNDARIES`: ``(17, 4)`` arrays over
    :data:`EDGE_DISTANCES`, NaN where fewer than 15 pixels lie at that distance (the
    distance 0 is always NaN: it falls between pixels).

    Boundaries come from :func:`part_masks` (the same code on real and synthetic cells):
    red cells against background at least 10 px from the neutrophil; the neutrophil's
    outline against background at least 10 px from any red cell, inside only where the
    cytoplasm lies at least 8 px from the nucleus; the nucleus against cytoplasm.
    """
    from skimage.color import rgb2lab

    rgb = fit_shape(np.asarray(rgb))
    lab = rgb2lab(rgb)
    m = part_masks(rgb, lab)
    L = lab[..., 0]
    grad = ndi.gaussian_gradient_magnitude(L, 0.7)
    not_bg = ndi.gaussian_filter(L, 1.5) < float(np.percentile(L, 90)) - 5.0
    cell = m["cytoplasm"] | m["nucleus"]
    d_cell, d_red, d_nuc = (_signed_distance(m[k]) for k in ("cytoplasm", "red_cells", "nucleus"))
    d_cell = _signed_distance(cell)
    select = {
        "red|background": (d_cell > 10) & (m["red_cells"] | m["background"] | ((d_red > 0) & ~not_bg)),
        "cell|background": (m["cytoplasm"] & (d_nuc > 8)) | ((d_cell > 0) & (d_red > 10) & ~m["red_cells"]),
        "nucleus|cytoplasm": (cell & (d_cell < -3)) | m["nucleus"],
    }
    values = np.stack([L, lab[..., 1], lab[..., 2], grad], axis=-1)
    out = {}
    for name, d in zip(BOUNDARIES, (d_red, d_cell, d_nuc)):
        bins = np.rint(d).astype(int)
        rows = []
        for k in EDGE_DISTANCES:
            s = select[name] & (bins == k)
            rows.append(values[s].mean(0) if s.sum() >= 15 else np.full(4, np.nan))
        out[name] = np.array(rows)
    return out


def rise_distance(profile: np.ndarray) -> float:
    """10-90 % rise distance (pixels) of an L* edge profile over :data:`EDGE_DISTANCES`,
    between the plateaus at -8..-5 and +6..+8 (NaN gaps interpolated).

    >>> p = np.clip(50 + 10 * EDGE_DISTANCES, 20, 80).astype(float)[:, None]
    >>> round(rise_distance(p), 2)
    4.8
    """
    L = np.asarray(profile, float)[:, 0]
    ok = ~np.isnan(L)
    if ok.sum() < 10:
        return float("nan")
    x = np.linspace(EDGE_DISTANCES[0], EDGE_DISTANCES[-1], 641)
    Li = np.interp(x, EDGE_DISTANCES[ok], L[ok])
    a, b = float(np.mean(Li[x <= -5])), float(np.mean(Li[x >= 6]))
    s = np.sign(b - a) or 1.0
    t = (Li - a) * s / max(abs(b - a), 1e-6)
    return float(x[np.argmax(t >= 0.9)] - x[np.argmax(t >= 0.1)])


def outline_spectrum(mask: np.ndarray) -> np.ndarray:
    """How irregular an outline is: root-sum-square amplitude (pixels) of the harmonics of
    its radius around the centroid (128 angles, outermost edge pixel) in each band of
    :data:`OUTLINE_BANDS`, then the mean radius: ``(6,)``, NaN if the mask is too small
    or its outline not star-shaped enough.

    >>> yy, xx = np.mgrid[:101, :101]
    >>> s = outline_spectrum(np.hypot(yy - 50, xx - 50) < 30)
    >>> bool(s[:5].max() < 0.5), round(float(s[5]))
    (True, 29)
    """
    mask = np.asarray(mask, bool)
    if mask.sum() < 200:
        return np.full(len(OUTLINE_BANDS) + 1, np.nan)
    edge = mask & ~ndi.binary_erosion(mask)
    cy, cx = ndi.center_of_mass(mask)
    ys, xs = np.nonzero(edge)
    n = 128
    bins = ((np.arctan2(ys - cy, xs - cx) + np.pi) / (2 * np.pi) * n).astype(int) % n
    radius = np.full(n, -1.0)
    np.maximum.at(radius, bins, np.hypot(ys - cy, xs - cx))
    ok = radius >= 0
    if ok.sum() < 0.8 * n:
        return np.full(len(OUTLINE_BANDS) + 1, np.nan)
    radius = np.interp(np.arange(n), np.flatnonzero(ok), radius[ok], period=n)
    f = np.abs(np.fft.rfft(radius)) / n * 2
    return np.array([np.sqrt((f[a:b] ** 2).sum()) for a, b in OUTLINE_BANDS] + [radius.mean()])


def red_cell_outlines(masks: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Masks of the single, whole, convex red cells of :func:`part_masks`' ``red_cells``
    (2,500-6,000 px, off the image border, at least 95 % of their convex hull)."""
    from skimage.morphology import convex_hull_image

    labels, n = ndi.label(masks["red_cells"])
    out = []
    for i, sl in enumerate(ndi.find_objects(labels), start=1):
        one = labels == i
        size = int(one.sum())
        h, w = one.shape
        if not 2500 < size < 6000 or sl[0].start < 3 or sl[1].start < 3 or sl[0].stop > h - 3 or sl[1].stop > w - 3:
            continue
        if size / convex_hull_image(one).sum() > 0.95:
            out.append(one)
    return out
