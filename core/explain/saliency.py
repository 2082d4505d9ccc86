"""Vanilla saliency: |d logit / d pixel|, max over the colour channels.

Simonyan, Vedaldi & Zisserman (2014), "Deep Inside Convolutional Networks: Visualising
Image Classification Models and Saliency Maps", arXiv:1312.6034.

The gradient is taken on the pre-sigmoid logit (no saturation); the "dysplastic" target
uses the negated logit, so the absolute map is the same for both targets, as in the study.
"""
from __future__ import annotations

import time

import numpy as np

from core.explain._model import handle_for
from core.explain.base import Explanation, Params, check_images, target_probability, target_sign
from core.explain.batching import batch_size_for, concat, run_batched


def attribution(handle, images, target, *, progress=None, cancel=None, batch_size=None) -> np.ndarray:
    """Per-channel |gradient| ``(N, H, W, 3)`` of the signed logit (the base of SmoothGrad)."""
    sign = target_sign(target)
    batch_size = batch_size or batch_size_for(handle.description, factor=3)
    chunks = run_batched(lambda a, b: np.abs(handle.logit_gradients(images[a:b], sign)[0]),
                         len(images), batch_size, progress=progress, cancel=cancel)
    return concat(chunks).astype(np.float32)


def to_map(attr: np.ndarray) -> np.ndarray:
    """Reduce a per-channel attribution to a pixel map: max over channels (study's choice)."""
    return attr.max(axis=-1).astype(np.float32)


def explain(model, images, target="dysplastic", *, progress=None, cancel=None, batch_size=None) -> Explanation:
    """Vanilla saliency map of each image.

    Parameters
    ----------
    model : LoadedModel or keras.Model
    images : (N, H, W, 3) float32 ndarray in [0, 1]
    target : {"dysplastic", "normal"}

    Returns
    -------
    Explanation
        ``maps`` (N, H, W): max over channels of |d(+/-logit)/dx|.
    """
    handle = handle_for(model)
    images = check_images(images, handle.input_shape)
    t0 = time.perf_counter()
    attr = attribution(handle, images, target, progress=progress, cancel=cancel, batch_size=batch_size)
    t1 = time.perf_counter()
    baseline = target_probability(handle.p_normal(images), target)
    return Explanation("saliency", target, to_map(attr), baseline, Params(),
                       {"gradients": t1 - t0, "total": time.perf_counter() - t0}, {})
