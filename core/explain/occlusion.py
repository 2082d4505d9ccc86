"""Occlusion sensitivity map (OSM): the target probability with a patch hidden at each place.

Zeiler & Fergus (2014), "Visualizing and Understanding Convolutional Networks", ECCV.

Windows start every ``stride`` pixels (default: the patch size, as in the study), so a
299-pixel side gives ceil(299 / stride) positions and 3,600 windows for 5-pixel patches;
windows at the right and bottom edges are clipped. The map holds, at each pixel, the mean
target probability over the windows covering it (overlapping windows are averaged;
pixels no window covers keep the baseline), un-normalised, so untouched regions equal the
baseline score. Fill: ``mean`` = the patch's own mean colour (the study's preferred fill:
grey adds a colour the model never saw), ``grey`` = 0.5, ``blur`` = the same pixels after
a Gaussian blur of sigma = patch size.

Extras
------
difference : (N, H, W) map minus baseline (negative = the patch lowered the target).
window_scores : (N, ny, nx) target probability per window position.
max_reduction, max_increase, mean_change : (N,) per-image summary for the OSM table
    (reduction/increase are >= 0, in probability units).
"""
from __future__ import annotations

import math
import time

import numpy as np

from core.explain._model import handle_for
from core.explain.base import Explanation, Params, check_images, target_probability
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
                     crops=True):
    """P(normal) for every window position of one image, ``(ny, nx)``.

    With ``crops`` (default) and a model that is a chain of valid conv/pool layers, only
    the part of the network a patch can change is recomputed (exact; see ``_crops``).
    """
    h, w = image.shape[:2]
    gy, gx = window_grid(h, w, patch, stride)
    ys, xs = [a.ravel().astype(np.int32) for a in np.meshgrid(gy, gx, indexing="ij")]
    colours, fill_image, use_image = _fills(image, ys, xs, patch, fill)
    plan = handle.crop_plan() if crops else None
    if plan is not None and plan.tiles_for(patch) is not None:
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
                                        cancel=cancel)
        return scores.reshape(len(gy), len(gx))
    size = np.full(len(ys), patch, np.int32)
    batch_size = batch_size or batch_size_for(handle.description)

    def chunk(a, b):
        return handle.occluded_p_normal(image, fill_image, colours[a:b], use_image,
                                        ys[a:b], xs[a:b], size[a:b], size[a:b])

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


def explain(model, images, target="dysplastic", *, patch=20, stride=None, fill="mean",
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
    crops : bool
        Recompute only what each patch changes (exact, much faster); False = full passes.

    Returns
    -------
    Explanation
        ``maps`` (N, H, W): target probability with the patch in place (raw).
    """
    handle = handle_for(model)
    images = check_images(images, handle.input_shape)
    patch = int(patch)
    stride = patch if stride is None else int(stride)
    n, h, w = images.shape[:3]
    t0 = time.perf_counter()
    baseline = target_probability(handle.p_normal(images), target)
    windows = math.ceil(h / stride) * math.ceil(w / stride)
    maps, grids = [], []
    for i in range(n):
        report = None if progress is None else (lambda d, t, i=i: progress(i * windows + d, n * windows))
        p = occlusion_scores(handle, images[i], patch=patch, stride=stride, fill=fill,
                             progress=report, cancel=cancel, batch_size=batch_size, crops=crops)
        grid = target_probability(p, target)
        grids.append(grid)
        maps.append(scores_to_map(grid, h, w, patch, stride, baseline[i]))
    maps = np.stack(maps)
    grids = np.stack(grids)
    change = grids - baseline[:, None, None]
    extras = {
        "difference": (maps - baseline[:, None, None]).astype(np.float32),
        "window_scores": grids.astype(np.float32),
        "max_reduction": np.maximum(-change.min(axis=(1, 2)), 0).astype(np.float32),
        "max_increase": np.maximum(change.max(axis=(1, 2)), 0).astype(np.float32),
        "mean_change": change.mean(axis=(1, 2)).astype(np.float32),
    }
    params = Params({"patch": patch, "stride": None if stride == patch else stride, "fill": fill})
    return Explanation("occlusion", target, maps, baseline, params,
                       {"total": time.perf_counter() - t0}, extras)
