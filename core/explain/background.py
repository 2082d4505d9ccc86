"""Background generalisation test: the score with everything outside the cell made uniform.

The study replaced the blood-smear background (red cells, platelets) around the outlined
cell by one uniform colour, the image's background base colour, and compared scores per
group. The colour here is the median (default) or mean of the pixels outside the cell, per
channel, so it needs no hand-picked value.

Extras
------
masked_images : (N, H, W, 3) float32 the images with the uniform background.
fill_colour : (N, 3) float32.
original_score, masked_score, difference : (N,) float32 model scores P(normal)
    (difference = masked - original), the study's table.
masked_baseline : (N,) float32 probability of the target class for the masked image.
"""
from __future__ import annotations

import time

import numpy as np

from core.errors import DisplasiaError
from core.explain._model import handle_for
from core.explain.base import Explanation, Params, check_images, target_probability
from core.preprocess import resize_mask


def uniform_background(image, cell_mask, colour: str = "median"):
    """``(masked_image, fill_colour)``: outside the mask replaced by one colour."""
    outside = image[~cell_mask]
    if len(outside) == 0:
        raise DisplasiaError("The cell outline covers the whole image: there is no background to replace.")
    fill = np.median(outside, axis=0) if colour == "median" else outside.mean(axis=0)
    masked = np.where(cell_mask[..., None], image, fill[None, None, :].astype(np.float32))
    return masked.astype(np.float32), fill.astype(np.float32)


def explain(model, images, target="dysplastic", *, cell_mask=None, colour="median", progress=None,
            cancel=None, batch_size=None) -> Explanation:
    """Score of each cell with and without its background.

    Parameters
    ----------
    model : LoadedModel or keras.Model
    images : (N, H, W, 3) float32 ndarray in [0, 1]
    target : {"dysplastic", "normal"}
    cell_mask : (N, h, w) or (h, w) bool ndarray
        True inside the cell outline (cytoplasm + nucleus); resized (nearest) to the input.
    colour : {"median", "mean"}

    Returns
    -------
    Explanation
        ``maps`` (N, H, W): the cell mask used (1 inside) as float32.
    """
    handle = handle_for(model)
    images = check_images(images, handle.input_shape)
    if cell_mask is None:
        raise DisplasiaError("The background test needs a cell outline (annotation or ground-truth mask).")
    masks = np.asarray(cell_mask)
    masks = np.broadcast_to(masks, (len(images), *masks.shape)) if masks.ndim == 2 else masks
    if masks.ndim != 3 or len(masks) != len(images):
        raise DisplasiaError("Give one cell mask per image.")
    h, w = handle.input_shape[:2]
    t0 = time.perf_counter()
    masks = np.stack([resize_mask(m, (h, w)) for m in masks])
    if not masks.any(axis=(1, 2)).all():
        raise DisplasiaError("A cell outline is empty: draw the cell before running the background test.")
    pairs = [uniform_background(img, m, colour) for img, m in zip(images, masks)]
    masked = np.stack([p[0] for p in pairs])
    original = handle.p_normal(images)
    after = handle.p_normal(masked)
    if progress is not None:
        progress(len(images), len(images))
    extras = {"masked_images": masked, "fill_colour": np.stack([p[1] for p in pairs]),
              "original_score": original, "masked_score": after, "difference": (after - original).astype(np.float32),
              "masked_baseline": target_probability(after, target)}
    return Explanation("background", target, masks.astype(np.float32), target_probability(original, target),
                       Params({"colour": colour}), {"total": time.perf_counter() - t0}, extras)
