"""Occlusion sensitivity map (OSM): how much hiding each place lowers the target's score.

Zeiler & Fergus (2014), "Visualizing and Understanding Convolutional Networks", ECCV.

Windows start every ``stride`` pixels (default: the patch size, as in the study), so a
299-pixel side gives ceil(299 / stride) positions and 3,600 windows for 5-pixel patches;
windows at the right and bottom edges are clipped. Fill: ``mean`` = the patch's own mean
colour (the study's preferred fill: grey adds a colour the model never saw), ``grey`` =
0.5, ``blur`` = the same pixels after a Gaussian blur of sigma = patch size.

The map is the *drop* of the target's score when a patch hides the pixel: the baseline
score minus the mean score over the windows covering the pixel (overlapping windows are
averaged; pixels no window covers get 0). Positive = hiding it lowers the target = the
place supports the class, as for every map of the engine. The score is the target's
log-odds by default (``score="logit"``: nothing saturates) or its probability
(``score="probability"``, the study's OSM); the raw "score with the patch in place" map
stays in the extras, so that the study's view (un-normalised, background = baseline) can
still be drawn.

Extras
------
occluded_score : (N, H, W) the target score with the patch in place (uncovered pixels: the
    baseline score), in the chosen space.
window_scores : (N, ny, nx) target score per window position, in the chosen space.
max_reduction, max_increase, mean_change : (N,) per-image summary for the OSM table
    (reduction/increase are >= 0, in the units of the chosen space).
score_space, baseline_score, saturated : see ``core.explain.base.score_extras``.
"""
from __future__ import annotations

import math
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
from core.explain.batching import MEMORY_BUDGET, batch_size_for, run_batched

#: Crops are small: larger batches amortise the per-call cost.
CROP_BATCH = 64



def window_grid(height: int, width: int, patch: int, stride: int):
    """Top-left corners of the windows: ``(ys, xs)`` of ceil(H/stride) x ceil(W/stride)."""
    return np.arange(0, height, stride), np.arange(0, width, stride)


def _fills(image, ys, xs, patch, fill):
    """Per-window colours (B, 3), fill image (H, W, 3) and whether to use the image."""
    if fill == "blur":
        from scipy.ndimage import gaussian_filter

        blurred = gaussian_filter(image, sigma=(patch, patch, 0), mode="nearest").astype(np.float32)
        return np.zeros((len(ys), 3), np.float32), blurred, 1.0
    if fill == "grey":
        return np.full((len(ys), 3), 0.5, np.float32), image, 0.0
    # The patch's own mean colour, from a summed-area table (exact, vectorised).
    h, w = image.shape[:2]
    sat = np.zeros((h + 1, w + 1, 3), np.float64)
    sat[1:, 1:] = image.astype(np.float64).cumsum(0).cumsum(1)
    y1, x1 = np.minimum(ys + patch, h), np.minimum(xs + patch, w)
    sums = sat[y1, x1] - sat[ys, x1] - sat[y1, xs] + sat[ys, xs]
    area = ((y1 - ys) * (x1 - xs))[:, None]
    return (sums / area).astype(np.float32), image, 0.0


def occlusion_scores(handle, image, *, patch, stride, fill, progress=None, cancel=None, batch_size=None,
                     crops=True, space="probability"):
    """P(normal) (or its logit, ``space="logit"``) for every window position of one image, ``(ny, nx)``.

    With ``crops`` (default) and a model that is a chain of valid conv/pool layers, only
    the part of the network a patch can change is recomputed (exact; see ``_crops``).
    """
    h, w = image.shape[:2]
    gy, gx = window_grid(h, w, patch, stride)
    ys, xs = [a.ravel().astype(np.int32) for a in np.meshgrid(gy, gx, indexing="ij")]
    colours, fill_image, use_image = _fills(image, ys, xs, patch, fill)
    plan = handle.crop_plan() if crops else None
    if plan is not None and plan.tiles_for(patch) is not None and plan.supports(space):
        def occlude(crop, k, cy, cx):
            y0, x0 = ys[k] - cy, xs[k] - cx
            a0, a1 = max(y0, 0), min(y0 + patch, crop.shape[0])
            b0, b1 = max(x0, 0), min(x0 + patch, crop.shape[1])
            if a1 > a0 and b1 > b0:
                crop[a0:a1, b0:b1] = fill_image[cy + a0:cy + a1, cx + b0:cx + b1] if use_image else colours[k]

        area = np.prod(plan._crop_size(plan.tiles_for(patch))) / float(h * w)
        size = batch_size or min(CROP_BATCH, batch_size_for(handle.description, factor=area, budget=MEMORY_BUDGET,
                                                            cap=CROP_BATCH))
        scores = plan.occluded_p_normal(image, occlude, ys, xs, patch, batch_size=size, progress=progress,
                                        cancel=cancel, space=space)
        return scores.reshape(len(gy), len(gx))
    size = np.full(len(ys), patch, np.int32)
    batch_size = batch_size or batch_size_for(handle.description)

    def chunk(a, b):
        return handle.occluded_p_normal(image, fill_image, colours[a:b], use_image,
                                        ys[a:b], xs[a:b], size[a:b], size[a:b], space)

    scores = np.concatenate(run_batched(chunk, len(ys), batch_size, progress=progress, cancel=cancel))
    return scores.reshape(len(gy), len(gx))


def scores_to_map(window_scores, height, width, patch, stride, baseline):
    """Average the window scores over every pixel they cover; uncovered pixels = baseline."""
    total = np.zeros((height, width), np.float64)
    count = np.zeros((height, width), np.int32)
    gy, gx = window_grid(height, width, patch, stride)
    for iy, y in enumerate(gy):
        for ix, x in enumerate(gx):
            total[y:y + patch, x:x + patch] += window_scores[iy, ix]
            count[y:y + patch, x:x + patch] += 1
    out = np.where(count > 0, total / np.maximum(count, 1), baseline)
    return out.astype(np.float32)


def explain(model, images, target="dysplastic", *, patch=20, stride=None, fill="mean", score="logit",
            progress=None, cancel=None, batch_size=None, crops=True) -> Explanation:
    """Occlusion sensitivity map of each image.

    Parameters
    ----------
    model : LoadedModel or keras.Model
    images : (N, H, W, 3) float32 ndarray in [0, 1]
    target : {"dysplastic", "normal"}
    patch : int
        Side of the square patch in pixels (study: 5, 10, 20, 40).
    stride : int, optional
        Step between windows; default ``patch``. Smaller strides overlap and are averaged.
    fill : {"mean", "grey", "blur"}
    score : {"logit", "probability"}
        Space of the target's score: log-odds (default, never saturates) or probability.
    crops : bool
        Recompute only what each patch changes (exact, much faster); False = full passes.

    Returns
    -------
    Explanation
        ``maps`` (N, H, W): the drop of the target score when the patch hides the pixel
        (positive = supports the target).
    """
    handle = handle_for(model)
    images = check_images(images, handle.input_shape)
    space = check_space(score)
    patch = int(patch)
    stride = patch if stride is None else int(stride)
    n, h, w = images.shape[:3]
    t0 = time.perf_counter()
    probability = target_probability(handle.p_normal(images), target)
    baseline = target_score(handle.normal_scores(images, space), target, space)
    windows = math.ceil(h / stride) * math.ceil(w / stride)
    occluded, grids = [], []
    for i in range(n):
        report = None if progress is None else (lambda d, t, i=i: progress(i * windows + d, n * windows))
        raw = occlusion_scores(handle, images[i], patch=patch, stride=stride, fill=fill, progress=report,
                               cancel=cancel, batch_size=batch_size, crops=crops, space=space)
        grid = target_score(raw, target, space)
        grids.append(grid)
        occluded.append(scores_to_map(grid, h, w, patch, stride, baseline[i]))
    occluded = np.stack(occluded)
    grids = np.stack(grids)
    change = grids.astype(np.float64) - baseline[:, None, None]
    drop = (baseline[:, None, None].astype(np.float64) - occluded).astype(np.float32)
    extras = {
        "occluded_score": occluded.astype(np.float32),
        "window_scores": grids.astype(np.float32),
        "max_reduction": np.maximum(-change.min(axis=(1, 2)), 0).astype(np.float32),
        "max_increase": np.maximum(change.max(axis=(1, 2)), 0).astype(np.float32),
        "mean_change": change.mean(axis=(1, 2)).astype(np.float32),
        **score_extras(space, baseline, probability),
    }
    params = Params({"patch": patch, "stride": None if stride == patch else stride, "fill": fill, "score": space})
    return Explanation("occlusion", target, drop, probability, params,
                       {"total": time.perf_counter() - t0}, extras)
