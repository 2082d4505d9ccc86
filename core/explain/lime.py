"""LIME on quickshift superpixels, vectorised, with the lime package's surrogate.

Ribeiro, Singh & Guestrin (2016), "'Why Should I Trust You?': Explaining the Predictions of
Any Classifier", KDD.

Same recipe as ``lime.lime_image.LimeImageExplainer`` so that weights match it exactly on
the same perturbation matrix: the perturbation matrix is ``RandomState(seed).randint(0, 2,
(samples, S))`` with the first row all ones; hidden superpixels show their own mean colour
(or grey 0.5); sample weights are ``sqrt(exp(-d^2 / kernel_width^2))`` with d the cosine
distance to the all-ones row; the surrogate is ``Ridge(alpha=1)`` fitted with those weights
on the target's score: its log-odds by default (``score="logit"``; on a saturated cell,
P(normal) = 1.0 in float32, every perturbation scores the same probability and the
surrogate fits float noise) or its probability (``score="probability"``, lime's and the
study's choice). lime builds each perturbed image with a Python loop over superpixels;
here the whole batch is built inside the graph from the label image.

Stability: a LIME map is one draw of random perturbations. Every result also runs the
same superpixels with ``stability_runs - 1`` further perturbation seeds (seed + 1, ...)
and reports how much the superpixel weights agree: the mean Spearman rank correlation
over the pairs of runs and the mean overlap of their top-k positive superpixels
(|A and B| / k). On real cells the study's settings (about 230 superpixels, 700 samples)
are unstable; :data:`PRESETS` gives a "stable" preset chosen by measurement
(docs/EVIDENCE.md).

Extras
------
labels : (N, H, W) int32 superpixel labels 0..S-1.
weights : (N, S_max) float32 surrogate coefficient per superpixel (NaN padding).
n_segments : (N,) int32.  intercept, r2, local_pred : (N,) float32.
top_positive, top_negative : (N, top_k) int32 superpixel labels (-1 padding), strongest first.
perturbations : (N, samples, S_max) uint8 the 0/1 matrix.  sample_scores : (N, samples) float32
    (target score in the chosen space).
stability_spearman, stability_topk : (N,) float32 mean over pairs of runs (NaN with one run).
stability_runs : int.
score_space, baseline_score, saturated : see ``core.explain.base.score_extras``.
"""
from __future__ import annotations

import time

import numpy as np

from core.explain._model import handle_for
from core.explain.base import (
    Explanation,
    Params,
    check_images,
    check_space,
    score_extras,
    target_probability,
    target_score,
)
from core.explain.batching import batch_size_for, run_batched

#: Named settings. "study": the study's published code (median 235 superpixels on 20 real
#: cells, 700 samples). "stable": lime_image's own quickshift settings, fewer and larger
#: superpixels (median 68), same 700 samples. Measured on 20 real cells in log-odds
#: (docs/EVIDENCE.md): seed-to-seed Spearman of the weights 0.60 (study) against 0.86
#: (stable), top-10 overlap 0.91 against 0.93.
PRESETS = {
    "study": {"samples": 700, "ratio": 0.5, "kernel_size": 2.0, "max_dist": 150.0, "sigma": 0.0},
    "stable": {"samples": 700, "ratio": 0.2, "kernel_size": 4.0, "max_dist": 200.0, "sigma": 0.0},
}


def superpixels(image, *, ratio=0.5, kernel_size=2.0, max_dist=150.0, sigma=0.0, seed=0) -> np.ndarray:
    """Quickshift labels ``(H, W)`` int32, renumbered 0..S-1."""
    from skimage.segmentation import quickshift

    labels = quickshift(np.asarray(image, dtype=np.float64), ratio=float(ratio), kernel_size=float(kernel_size),
                        max_dist=float(max_dist), sigma=float(sigma), rng=int(seed))
    _, labels = np.unique(labels, return_inverse=True)
    return labels.reshape(image.shape[:2]).astype(np.int32)


def hidden_image(image, labels, fill: str) -> np.ndarray:
    """What a hidden superpixel shows: its own mean colour, or grey."""
    if fill == "grey":
        return np.full(image.shape, 0.5, np.float32)
    flat = labels.ravel()
    counts = np.bincount(flat)
    means = np.stack([np.bincount(flat, weights=image[..., c].ravel()) / counts for c in range(3)], axis=1)
    return means[labels].astype(np.float32)


def perturbation_matrix(n_segments: int, samples: int, seed: int) -> np.ndarray:
    """0/1 ``(samples, S)``, first row all ones; drawn like lime (RandomState.randint)."""
    data = np.random.RandomState(int(seed)).randint(0, 2, samples * n_segments).reshape((samples, n_segments))
    data[0, :] = 1
    return data


def surrogate(data, target_scores, *, kernel_width=0.25):
    """lime's locally weighted Ridge: ``(coef (S,), intercept, r2, local_pred)``.

    Same estimator as lime's default ``Ridge(alpha=1, fit_intercept=True)`` fitted with
    ``sample_weight``, written in closed form (weighted centring, then the normal
    equations), which is exact and avoids scikit-learn's per-call overhead. Weights use
    the cosine distance to the first (all-ones) row, as ``pairwise_distances(metric=
    "cosine")`` does (a row of zeros is at distance 1).
    """
    from threadpoolctl import threadpool_limits

    # a 700 x S problem: one BLAS thread avoids waking a pool that TensorFlow keeps busy
    with threadpool_limits(limits=1, user_api="blas"):
        return _ridge(np.asarray(data, dtype=np.float64), np.asarray(target_scores, dtype=np.float64),
                      kernel_width)


def _ridge(x, y, kernel_width):
    reference = x[0]
    norms = np.linalg.norm(x, axis=1) * np.linalg.norm(reference)
    similarity = np.divide(x @ reference, norms, out=np.zeros(len(x)), where=norms > 0)
    distances = np.clip(1.0 - similarity, 0.0, 2.0)
    weights = np.sqrt(np.exp(-(distances ** 2) / kernel_width ** 2))
    x_mean = weights @ x / weights.sum()
    y_mean = weights @ y / weights.sum()
    root = np.sqrt(weights)[:, None]
    xc, yc = (x - x_mean) * root, (y - y_mean) * root[:, 0]
    coef = np.linalg.solve(xc.T @ xc + np.eye(x.shape[1]), xc.T @ yc)
    intercept = y_mean - x_mean @ coef
    fitted = x @ coef + intercept
    total = weights @ (y - y_mean) ** 2
    r2 = 1.0 - (weights @ (y - fitted) ** 2) / total if total > 0 else 0.0
    return coef, float(intercept), float(r2), float(reference @ coef + intercept)


def _top(weights, k, sign):
    order = np.argsort(-sign * weights, kind="stable")[:k]
    order = order[sign * weights[order] > 0]
    return np.pad(order, (0, k - len(order)), constant_values=-1).astype(np.int32)


def stability(runs, top_k: int) -> tuple:
    """``(mean Spearman, mean top-k overlap)`` of the weight vectors of several runs.

    Over every pair of runs: Spearman rank correlation of the superpixel weights and the
    share of the top-k positive superpixels that both runs name (|A and B| / k). NaN for a
    single run; a constant weight vector gives a Spearman of NaN for its pairs.

    >>> w = np.array([0.3, 0.1, -0.2, 0.0])
    >>> [round(v, 3) for v in stability([w, w, w[::-1]], 1)]
    [-0.067, 0.333]
    """
    from itertools import combinations

    from scipy.stats import spearmanr

    pairs = list(combinations(range(len(runs)), 2))
    if not pairs:
        return float("nan"), float("nan")
    rhos, overlaps = [], []
    for a, b in pairs:
        wa, wb = np.asarray(runs[a], np.float64), np.asarray(runs[b], np.float64)
        rhos.append(float(spearmanr(wa, wb).statistic) if np.ptp(wa) > 0 and np.ptp(wb) > 0 else np.nan)
        ta, tb = set(_top(wa, top_k, 1.0)) - {-1}, set(_top(wb, top_k, 1.0)) - {-1}
        overlaps.append(len(ta & tb) / float(top_k))
    rho = float(np.nanmean(rhos)) if np.isfinite(rhos).any() else float("nan")
    return rho, float(np.mean(overlaps))


def explain(model, images, target="dysplastic", *, samples=700, ratio=0.5, kernel_size=2.0, max_dist=150.0,
            sigma=0.0, kernel_width=0.25, top_k=10, fill="mean", seed=0, score="logit", stability_runs=3,
            progress=None, cancel=None, batch_size=None) -> Explanation:
    """LIME explanation of each image.

    Parameters
    ----------
    model : LoadedModel or keras.Model
    images : (N, H, W, 3) float32 ndarray in [0, 1]
    target : {"dysplastic", "normal"}
    samples : int
        Random perturbations (study: 700).
    ratio, kernel_size, max_dist, sigma : float
        Quickshift settings (study's code: 0.5, 2, 150, 0; its text says max_dist 100).
    kernel_width : float
        Exponential kernel width on the cosine distance (lime_image: 0.25).
    top_k : int
    fill : {"mean", "grey"}
    seed : int
        Seeds the segmentation and the perturbations.
    score : {"logit", "probability"}
        What the surrogate fits: the target's log-odds (default) or its probability.
    stability_runs : int
        Runs with perturbation seeds seed, seed + 1, ... on the same superpixels for the
        stability extras (1 = no stability measure). The map is the first run's.

    Returns
    -------
    Explanation
        ``maps`` (N, H, W): the surrogate weight of each pixel's superpixel.
    """
    handle = handle_for(model)
    images = check_images(images, handle.input_shape)
    space = check_space(score)
    samples, top_k, runs = int(samples), int(top_k), max(1, int(stability_runs))
    batch_size = batch_size or batch_size_for(handle.description)
    t0 = time.perf_counter()
    n = len(images)
    results, timings = [], {"segmentation": 0.0, "perturbation": 0.0, "surrogate": 0.0}
    steps = n * samples * runs
    probability = target_probability(handle.p_normal(images), target)
    for i, image in enumerate(images):
        ts = time.perf_counter()
        labels = superpixels(image, ratio=ratio, kernel_size=kernel_size, max_dist=max_dist, sigma=sigma, seed=seed)
        segments = int(labels.max()) + 1
        fudged = hidden_image(image, labels, fill)
        timings["segmentation"] += time.perf_counter() - ts
        import tensorflow as tf

        # converted once: each of the ~90 batches would otherwise copy ~2.5 MB into TF again
        constants = (tf.constant(image), tf.constant(fudged), tf.constant(labels))
        fits = []
        for r in range(runs):
            tp = time.perf_counter()
            data = perturbation_matrix(segments, samples, seed + r)
            on = data.astype(np.float32)
            done = (i * runs + r) * samples
            report = None if progress is None else (lambda d, t, done=done: progress(done + d, steps))
            raw = np.concatenate(run_batched(lambda a, b: handle.perturbed_p_normal(*constants, on[a:b], space),
                                             samples, batch_size, progress=report, cancel=cancel))
            scores = target_score(raw, target, space)
            tr = time.perf_counter()
            fit = surrogate(data, scores.astype(np.float64), kernel_width=float(kernel_width))
            timings["perturbation"] += tr - tp
            timings["surrogate"] += time.perf_counter() - tr
            fits.append((fit, data, scores))
        (coef, intercept, r2, local), data, scores = fits[0]
        rho, overlap = stability([f[0][0] for f in fits], top_k)
        results.append((labels, coef, intercept, r2, local, data, scores, rho, overlap))
    width = max(r[1].shape[0] for r in results)
    weights = np.full((n, width), np.nan, np.float32)
    perturbations = np.zeros((n, samples, width), np.uint8)
    for i, r in enumerate(results):
        weights[i, :len(r[1])] = r[1]
        perturbations[i, :, :r[5].shape[1]] = r[5]
    maps = np.stack([r[1][r[0]] for r in results]).astype(np.float32)
    sample_scores = np.stack([r[6] for r in results]).astype(np.float32)
    extras = {
        "labels": np.stack([r[0] for r in results]).astype(np.int32),
        "weights": weights,
        "n_segments": np.array([len(r[1]) for r in results], np.int32),
        "intercept": np.array([r[2] for r in results], np.float32),
        "r2": np.array([r[3] for r in results], np.float32),
        "local_pred": np.array([r[4] for r in results], np.float32),
        "top_positive": np.stack([_top(r[1], top_k, 1.0) for r in results]),
        "top_negative": np.stack([_top(r[1], top_k, -1.0) for r in results]),
        "perturbations": perturbations,
        "sample_scores": sample_scores,
        "stability_spearman": np.array([r[7] for r in results], np.float32),
        "stability_topk": np.array([r[8] for r in results], np.float32),
        "stability_runs": runs,
        # first sample = the unchanged image
        **score_extras(space, sample_scores[:, 0].copy(), probability),
    }
    params = Params({"samples": samples, "ratio": float(ratio), "kernel_size": float(kernel_size),
                     "max_dist": float(max_dist), "sigma": float(sigma), "kernel_width": float(kernel_width),
                     "top_k": top_k, "fill": fill, "seed": int(seed), "score": space, "stability_runs": runs})
    timings["total"] = time.perf_counter() - t0
    return Explanation("lime", target, maps, probability, params, timings, extras)
