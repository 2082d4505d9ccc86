"""LIME on quickshift superpixels, vectorised, with the lime package's surrogate.

Ribeiro, Singh & Guestrin (2016), "'Why Should I Trust You?': Explaining the Predictions of
Any Classifier", KDD.

Same recipe as ``lime.lime_image.LimeImageExplainer`` so that weights match it exactly on
the same perturbation matrix: the perturbation matrix is ``RandomState(seed).randint(0, 2,
(samples, S))`` with the first row all ones; hidden superpixels show their own mean colour
(or grey 0.5); sample weights are ``sqrt(exp(-d^2 / kernel_width^2))`` with d the cosine
distance to the all-ones row; the surrogate is ``Ridge(alpha=1)`` fitted with those weights
on the target probability. lime builds each perturbed image with a Python loop over
superpixels; here the whole batch is built inside the graph from the label image.

Extras
------
labels : (N, H, W) int32 superpixel labels 0..S-1.
weights : (N, S_max) float32 surrogate coefficient per superpixel (NaN padding).
n_segments : (N,) int32.  intercept, r2, local_pred : (N,) float32.
top_positive, top_negative : (N, top_k) int32 superpixel labels (-1 padding), strongest first.
perturbations : (N, samples, S_max) uint8 the 0/1 matrix.  sample_scores : (N, samples) float32.
"""
from __future__ import annotations

import time

import numpy as np

from core.explain._model import handle_for
from core.explain.base import Explanation, Params, check_images, target_probability
from core.explain.batching import batch_size_for, run_batched


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


def explain(model, images, target="dysplastic", *, samples=700, ratio=0.5, kernel_size=2.0, max_dist=150.0,
            sigma=0.0, kernel_width=0.25, top_k=10, fill="mean", seed=0,
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

    Returns
    -------
    Explanation
        ``maps`` (N, H, W): the surrogate weight of each pixel's superpixel.
    """
    handle = handle_for(model)
    images = check_images(images, handle.input_shape)
    samples, top_k = int(samples), int(top_k)
    batch_size = batch_size or batch_size_for(handle.description)
    t0 = time.perf_counter()
    n = len(images)
    results, timings = [], {"segmentation": 0.0, "perturbation": 0.0, "surrogate": 0.0}
    for i, image in enumerate(images):
        ts = time.perf_counter()
        labels = superpixels(image, ratio=ratio, kernel_size=kernel_size, max_dist=max_dist, sigma=sigma, seed=seed)
        segments = int(labels.max()) + 1
        fudged = hidden_image(image, labels, fill)
        data = perturbation_matrix(segments, samples, seed)
        on = data.astype(np.float32)
        tp = time.perf_counter()
        report = None if progress is None else (lambda d, t, i=i: progress(i * samples + d, n * samples))
        import tensorflow as tf

        # converted once: each of the ~90 batches would otherwise copy ~2.5 MB into TF again
        constants = (tf.constant(image), tf.constant(fudged), tf.constant(labels))
        p = np.concatenate(run_batched(lambda a, b: handle.perturbed_p_normal(*constants, on[a:b]),
                                       samples, batch_size, progress=report, cancel=cancel))
        scores = target_probability(p, target)
        tr = time.perf_counter()
        coef, intercept, r2, local = surrogate(data, scores.astype(np.float64), kernel_width=float(kernel_width))
        timings["segmentation"] += tp - ts
        timings["perturbation"] += tr - tp
        timings["surrogate"] += time.perf_counter() - tr
        results.append((labels, coef, intercept, r2, local, data, scores))
    width = max(r[1].shape[0] for r in results)
    weights = np.full((n, width), np.nan, np.float32)
    perturbations = np.zeros((n, samples, width), np.uint8)
    for i, r in enumerate(results):
        weights[i, :len(r[1])] = r[1]
        perturbations[i, :, :r[5].shape[1]] = r[5]
    maps = np.stack([r[1][r[0]] for r in results]).astype(np.float32)
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
        "sample_scores": np.stack([r[6] for r in results]).astype(np.float32),
    }
    baseline = extras["sample_scores"][:, 0].copy()  # first sample = the unchanged image
    params = Params({"samples": samples, "ratio": float(ratio), "kernel_size": float(kernel_size),
                     "max_dist": float(max_dist), "sigma": float(sigma), "kernel_width": float(kernel_width),
                     "top_k": top_k, "fill": fill, "seed": int(seed)})
    timings["total"] = time.perf_counter() - t0
    return Explanation("lime", target, maps, baseline, params, timings, extras)
