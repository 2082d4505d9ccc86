"""Vanilla saliency: |d logit / d pixel| (max over colour channels), or its signed form.

Simonyan, Vedaldi & Zisserman (2014), "Deep Inside Convolutional Networks: Visualising
Image Classification Models and Saliency Maps", arXiv:1312.6034.

The gradient is taken on the pre-sigmoid logit (no saturation); the "dysplastic" target
uses the negated logit. The study's map (``signed="no"``, default) is the absolute
gradient, max over the colour channels: it is the *same map for both classes* and says
how sensitive the score is to a pixel, not in which direction. ``signed="yes"`` gives
gradient x input summed over the colour channels (Shrikumar et al., 2016, "Not Just a
Black Box: Learning Important Features Through Propagating Activation Differences",
arXiv:1605.01713): the first-order change of the target's logit when the pixel is taken
away (set to black), so positive = the pixel supports the explained class, and the two
classes give opposite maps.
"""
from __future__ import annotations

import time

import numpy as np

from core.explain._model import handle_for
from core.explain.base import Explanation, Params, check_images, target_probability, target_sign
from core.explain.batching import batch_size_for, concat, run_batched

#: Values of the ``signed`` parameter.
SIGNED = ("no", "yes")


def attribution(handle, images, target, *, progress=None, cancel=None, batch_size=None,
                absolute: bool = True) -> np.ndarray:
    """Per-channel gradient ``(N, H, W, 3)`` of the signed logit, absolute by default (SmoothGrad's base)."""
    sign = target_sign(target)
    batch_size = batch_size or batch_size_for(handle.description, factor=3)

    def chunk(a, b):
        g = handle.logit_gradients(images[a:b], sign)[0]
        return np.abs(g) if absolute else g

    chunks = run_batched(chunk, len(images), batch_size, progress=progress, cancel=cancel)
    return concat(chunks).astype(np.float32)


def to_map(attr: np.ndarray) -> np.ndarray:
    """Reduce a per-channel |gradient| to a pixel map: max over channels (study's choice)."""
    return attr.max(axis=-1).astype(np.float32)


def signed_map(gradients: np.ndarray, images: np.ndarray) -> np.ndarray:
    """Gradient x input summed over the colour channels, ``(N, H, W)``: + supports the target."""
    return (np.asarray(gradients, np.float32) * np.asarray(images, np.float32)).sum(axis=-1).astype(np.float32)


def check_signed(signed) -> bool:
    """``"yes"``/``"no"`` (or a bool) -> bool; DisplasiaError otherwise."""
    if isinstance(signed, bool):
        return signed
    if signed not in SIGNED:
        from core.errors import DisplasiaError

        raise DisplasiaError(f"'signed' must be yes or no, not '{signed}'.")
    return signed == "yes"


def explain(model, images, target="dysplastic", *, signed="no", progress=None, cancel=None,
            batch_size=None) -> Explanation:
    """Vanilla saliency map of each image.

    Parameters
    ----------
    model : LoadedModel or keras.Model
    images : (N, H, W, 3) float32 ndarray in [0, 1]
    target : {"dysplastic", "normal"}
    signed : {"no", "yes"}
        "no": max over channels of |d(+/-logit)/dx| (the same for both classes); "yes":
        gradient x input summed over channels (+ supports the target).

    Returns
    -------
    Explanation
        ``maps`` (N, H, W).
    """
    handle = handle_for(model)
    images = check_images(images, handle.input_shape)
    use_sign = check_signed(signed)
    t0 = time.perf_counter()
    attr = attribution(handle, images, target, progress=progress, cancel=cancel, batch_size=batch_size,
                       absolute=not use_sign)
    t1 = time.perf_counter()
    maps = signed_map(attr, images) if use_sign else to_map(attr)
    baseline = target_probability(handle.p_normal(images), target)
    return Explanation("saliency", target, maps, baseline, Params({"signed": "yes" if use_sign else "no"}),
                       {"gradients": t1 - t0, "total": time.perf_counter() - t0}, {})
