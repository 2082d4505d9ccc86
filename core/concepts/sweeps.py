"""Concept sweeps: vary one latent feature of a generated cell, keep the rest, score each step.

A cell's synthetic twin is its generator features: the ground truth of a generated cell
(``<folder>/truth/<stem>.json``), or any generated cell. Each step is rendered and read
exactly as an image file is (JPEG decode, nearest resize, / 255), then scored as the
logit of *normal* and as P(normal) = sigmoid(logit) computed in float64, so the curve
still moves where the model's float32 probability has saturated at 1.

The renderer draws the granules, Dohle bodies and red cells from one seeded stream, so
changing a count also moves what is drawn after it: "the rest fixed" means the same
latent features, not the same pixels.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import DisplasiaError

VERSION = 1
METHOD = "concept-sweep"


@dataclass(frozen=True)
class SweepSpec:
    """One sweepable feature: its label and the values a sweep visits (in increasing order)."""

    feature: str
    label: str
    values: tuple
    expected: str  # the direction of P(normal) a pathologist expects: "up", "down" or "flat"


SWEEPS = {
    s.feature: s for s in (
        SweepSpec("granule_density", "granule density (1 = typical normal cell)",
                  tuple(round(float(v), 3) for v in np.linspace(0.0, 1.3, 14)), "up"),
        SweepSpec("chromatin_heterogeneity", "chromatin heterogeneity (0 homogeneous, 1 clumped)",
                  tuple(round(float(v), 3) for v in np.linspace(0.0, 1.0, 11)), "down"),
        SweepSpec("lobe_count", "nuclear lobes (1 round, 2 dumbbell, 3-5 segmented, > 5 hypersegmented)",
                  (1, 2, 3, 4, 5, 6, 7), "flat"),
        SweepSpec("granule_size", "granule size", tuple(round(float(v), 3) for v in np.linspace(0.6, 1.3, 8)),
                  "flat"),
        SweepSpec("dohle_bodies", "Dohle bodies", (0, 1, 2, 3), "flat"),
        SweepSpec("rbc_overlap", "red cells touching the neutrophil", (0, 1, 2, 3), "flat"),
        SweepSpec("drumstick", "drumstick appendage (0 no, 1 yes)", (0, 1), "flat"),
        SweepSpec("blur_sigma", "focus blur (pixels)", tuple(round(float(v), 3) for v in np.linspace(0.0, 1.5, 7)),
                  "flat"),
    )
}


def check_feature(feature: str) -> SweepSpec:
    if feature not in SWEEPS:
        raise DisplasiaError(f"Cannot sweep '{feature}'; choose one of {', '.join(SWEEPS)}.")
    return SWEEPS[feature]


def vary(features, feature: str, value):
    """``features`` with one feature set to ``value`` (lobe counts also set the nucleus shape).

    Examples
    --------
    >>> from core.synth import cell_features
    >>> f = cell_features(1, 0, "normal")
    >>> vary(f, "lobe_count", 2).nucleus_shape, vary(f, "lobe_count", 7).nucleus_shape
    ('dumbbell', 'hypersegmented')
    >>> vary(f, "granule_density", 0.0).granule_density
    0.0
    """
    check_feature(feature)
    if feature == "lobe_count":
        k = int(value)
        shape = "round" if k <= 1 else "dumbbell" if k == 2 else "segmented" if k <= 5 else "hypersegmented"
        return dataclasses.replace(features, nucleus_shape=shape, lobe_count=k)
    if feature == "drumstick":
        return dataclasses.replace(features, drumstick=bool(value))
    kind = type(getattr(features, feature))
    return dataclasses.replace(features, **{feature: kind(value)})


@dataclass
class SweepResult:
    """Scores of ``N`` cells along one feature: ``logit`` and ``probability`` are ``(N, K)``."""

    feature: str
    values: np.ndarray  # (K,)
    logit: np.ndarray  # (N, K) logit of normal
    probability: np.ndarray  # (N, K) P(normal)
    thumbnails: np.ndarray  # (K, t, t, 3) uint8, the first cell along the sweep
    names: tuple = ()
    from_cache: bool = False

    def band(self, space: str = "probability", low: float = 10, high: float = 90) -> tuple:
        """Mean and the ``low``-``high`` percentile band over cells, each ``(K,)``."""
        v = self.logit if space == "logit" else self.probability
        return v.mean(axis=0), np.percentile(v, low, axis=0), np.percentile(v, high, axis=0)

    def monotone(self, *, tolerance: float = 0.05) -> np.ndarray:
        """Per cell: is the logit monotone along the sweep (in either direction)?"""
        return monotone_curves(self.logit, tolerance=tolerance)

    def spearman(self) -> np.ndarray:
        """Per cell: Spearman correlation of the feature and the logit (NaN for a flat curve)."""
        from scipy import stats

        out = []
        for row in self.logit:
            out.append(np.nan if np.ptp(row) == 0 else float(stats.spearmanr(self.values, row)[0]))
        return np.asarray(out)


def monotone_curves(curves, *, tolerance: float = 0.05, direction: str = "either") -> np.ndarray:
    """Which curves (rows of ``(N, K)``) are monotone, allowing steps against the trend of
    at most ``tolerance`` times the curve's range (renderer noise).

    Examples
    --------
    >>> monotone_curves(np.array([[0, 1, 2, 3], [0, 2, 1.95, 3], [0, 3, 0, 3]]), tolerance=0.05).tolist()
    [True, True, False]
    >>> monotone_curves(np.array([[3, 2, 1.0]]), direction="up").tolist()
    [False]
    """
    c = np.asarray(curves, np.float64)
    steps = np.diff(c, axis=1)
    slack = tolerance * np.ptp(c, axis=1, keepdims=True)
    up = (steps >= -slack).all(axis=1)
    down = (steps <= slack).all(axis=1)
    if direction == "up":
        return up
    if direction == "down":
        return down
    return up | down


def sigmoid(logit) -> np.ndarray:
    z = np.asarray(logit, np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def twin_features(image_path):
    """The generator features of a generated cell image (from ``truth/<stem>.json``), or None."""
    from core.synth import CellFeatures

    path = Path(image_path)
    truth = path.parent / "truth" / f"{path.stem}.json"
    if not truth.is_file():
        return None
    try:
        return CellFeatures.from_dict(json.loads(truth.read_text(encoding="utf-8")))
    except (ValueError, TypeError, json.JSONDecodeError):
        return None


def generated_cells(n: int, *, seed: int = 11, kind: str = "mixed") -> list:
    """Latent features of ``n`` generated cells (the batch a sweep summarises)."""
    from core.synth import cell_features

    return [cell_features(seed, i, kind) for i in range(int(n))]


def sweep(loaded, cells, feature: str, values=None, *, interpolation: str = "nearest", thumbnail: int = 96,
          names=(), cache=None, batch_size: int = 16, progress=None) -> SweepResult:
    """Score every cell of ``cells`` (CellFeatures) at every value of ``feature``.

    Parameters
    ----------
    loaded : core.model_io.LoadedModel
    cells : sequence of core.synth.CellFeatures
    feature : str
        A key of :data:`SWEEPS`.
    values : sequence, optional
        Default: the feature's range in :data:`SWEEPS`.
    """
    spec = check_feature(feature)
    values = tuple(spec.values if values is None else values)
    cells = list(cells)
    if not cells or len(values) < 2:
        raise DisplasiaError("A sweep needs at least one cell and two values.")
    key = None
    if cache is not None:
        from core.cache import make_key
        from core.synth import GENERATOR_VERSION

        text = json.dumps([GENERATOR_VERSION, [c.to_dict() for c in cells], list(values)], sort_keys=True,
                          default=str)
        token = np.frombuffer(hashlib.sha256(text.encode()).digest(), np.uint8)
        key = make_key(loaded.description.content_hash, token, METHOD, VERSION, "normal",
                       {"feature": feature, "interpolation": interpolation, "thumbnail": int(thumbnail)})
        hit = cache.get(key)
        if hit is not None:
            return _from_explanation(hit, feature, names)
    result = _compute(loaded, cells, feature, values, interpolation, thumbnail, names, batch_size, progress)
    if cache is not None:
        cache.put(key, _to_explanation(result))
    return result


def _compute(loaded, cells, feature, values, interpolation, thumbnail, names, batch_size, progress):
    from PIL import Image

    from core.model_io import compiled
    from core.preprocess import to_model_input
    from core.synth import render_cell

    size = loaded.description.image_size
    heads = loaded.__dict__.setdefault("_concept_heads", {})
    if "logit_fn" not in heads:
        heads["logit_fn"] = compiled(loaded.logit_model)
    logit_fn = heads["logit_fn"]
    jobs = [(i, j) for i in range(len(cells)) for j in range(len(values))]
    logit = np.zeros((len(cells), len(values)), np.float64)
    thumbs = []
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start:start + batch_size]
        batch = []
        for i, j in chunk:
            rgb = render_cell(vary(cells[i], feature, values[j])).rgb
            batch.append(to_model_input(rgb, size, interpolation))
            if i == 0 and thumbnail:
                image = Image.fromarray(rgb)
                image.thumbnail((thumbnail, thumbnail))
                canvas = np.full((thumbnail, thumbnail, 3), 255, np.uint8)
                t = np.asarray(image)
                canvas[:t.shape[0], :t.shape[1]] = t
                thumbs.append(canvas)
        z = np.asarray(logit_fn(np.stack(batch)), np.float64).reshape(-1)
        for (i, j), v in zip(chunk, z):
            logit[i, j] = v
        if progress is not None:
            progress(min(start + batch_size, len(jobs)), len(jobs))
    thumbnails = np.stack(thumbs) if thumbs else np.zeros((0, 1, 1, 3), np.uint8)
    return SweepResult(feature, np.asarray(values, np.float64), logit, sigmoid(logit), thumbnails, tuple(names))


def _to_explanation(result: SweepResult):
    from core.explain.base import Explanation, Params

    extras = {"values": result.values, "logit": result.logit, "thumbnails": result.thumbnails}
    return Explanation(METHOD, "normal", np.zeros((0, 1, 1), np.float32), np.zeros(0, np.float32),
                       Params({"feature": result.feature}), {}, extras, VERSION)


def _from_explanation(exp, feature, names) -> SweepResult:
    logit = np.asarray(exp.extras["logit"], np.float64)
    return SweepResult(feature, np.asarray(exp.extras["values"]), logit, sigmoid(logit),
                       np.asarray(exp.extras["thumbnails"], np.uint8), tuple(names), True)


def describe_sweep(result: SweepResult) -> str:
    """One sentence: how P(normal) moves along the sweep, on average and for how many cells."""
    spec = SWEEPS[result.feature]
    mean_p = result.probability.mean(axis=0)
    mean_z = result.logit.mean(axis=0)
    share = float(result.monotone().mean())
    n = len(result.logit)
    first, last = result.values[0], result.values[-1]
    trend = "rises" if mean_z[-1] > mean_z[0] else "falls"
    change = abs(mean_z[-1] - mean_z[0])
    if change < 0.5:
        what = f"barely moves (mean logit {mean_z[0]:+.2f} to {mean_z[-1]:+.2f})"
    else:
        what = (f"{trend} from {mean_p[0]:.2f} to {mean_p[-1]:.2f} on average (logit {mean_z[0]:+.1f} to "
                f"{mean_z[-1]:+.1f})")
    cells = "the cell" if n == 1 else f"{n} cells"
    rho = result.spearman()
    mono = "" if n == 1 else (f"; the logit follows the feature's order (Spearman |rho| >= 0.9) for "
                              f"{np.mean(np.abs(rho) >= 0.9):.0%} of cells and is monotone within 5 % of its range "
                              f"for {share:.0%}")
    if not math.isfinite(share):
        mono = ""
    return f"As {spec.label} goes from {first:g} to {last:g}, P(normal) of {cells} {what}{mono}."
