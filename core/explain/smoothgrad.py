"""SmoothGrad: saliency averaged over noisy copies of the image.

Smilkov et al. (2017), "SmoothGrad: removing noise by adding noise", arXiv:1706.03825.

Written as a wrapper around the saliency attribution (Captum's NoiseTunnel idea): the
per-channel |gradient| of each noisy copy is averaged, then reduced to a map by the max
over channels (``signed="no"``, the study's map, the same for both classes). With
``signed="yes"`` the *signed* gradients are averaged and the map is that mean gradient x
the (noise-free) input, summed over the colour channels, as in ``saliency``: positive
supports the explained class. The noise follows tf-keras-vis (the study's library):
sigma = noise x (max - min) of each image, so results agree with it given the same noise
draws.
"""
from __future__ import annotations

import hashlib
import time

import numpy as np

from core.explain import saliency
from core.explain._model import handle_for
from core.explain.base import Explanation, Params, check_images, target_probability, target_sign
from core.explain.batching import batch_size_for, run_batched


def noise_draws(image, samples: int, noise: float, seed: int) -> np.ndarray:
    """Gaussian noise ``(samples, H, W, 3)`` for one image.

    The generator is seeded by ``seed`` and the image's own pixels, so a cell's map does
    not depend on which other cells share the batch, or on their order.
    """
    sigma = float(noise) * float(image.max() - image.min())
    digest = hashlib.sha256(np.ascontiguousarray(image, dtype=np.float32).tobytes()).digest()
    rng = np.random.default_rng((int(seed), int.from_bytes(digest[:8], "little")))
    noise = rng.standard_normal(size=(samples, *image.shape), dtype=np.float32)
    noise *= np.float32(sigma)
    return noise


def smooth_attribution(handle, images, target, draws, *, progress=None, cancel=None, batch_size=None,
                       absolute: bool = True):
    """Mean over the noisy copies of the base attribution (|gradient|, or the gradient).

    Parameters
    ----------
    draws : (S, N, H, W, 3) float32 ndarray or callable(i) -> (S, H, W, 3)
        Noise added to the images (a callable is asked once per image).

    Returns
    -------
    (N, H, W, 3) float32 ndarray
    """
    n = len(images)
    sign = target_sign(target)
    batch_size = batch_size or batch_size_for(handle.description, factor=3)
    total = np.zeros(images.shape, dtype=np.float64)
    for i in range(n):
        noise = draws(i) if callable(draws) else draws[:, i]
        samples = len(noise)

        def chunk(a, b, i=i, noise=noise):
            return handle.abs_gradient_sum(images[i], noise[a:b], sign, absolute).astype(np.float64)

        report = None if progress is None else (lambda d, t, i=i: progress(i * t + d, n * t))
        total[i] = np.sum(run_batched(chunk, samples, batch_size, progress=report, cancel=cancel), axis=0) / samples
    return total.astype(np.float32)


def explain(model, images, target="dysplastic", *, samples=40, noise=0.15, seed=0, signed="no",
            progress=None, cancel=None, batch_size=None) -> Explanation:
    """SmoothGrad map of each image.

    Parameters
    ----------
    model : LoadedModel or keras.Model
    images : (N, H, W, 3) float32 ndarray in [0, 1]
    target : {"dysplastic", "normal"}
    samples : int
        Noisy copies per image (the study: 40).
    noise : float
        Sigma as a fraction of the image's value range (the study: 0.15). 0 gives saliency.
    seed : int
    signed : {"no", "yes"}
        "no": max over channels of the mean |gradient| (the same for both classes); "yes":
        mean gradient x input summed over channels (+ supports the target).

    Returns
    -------
    Explanation
        ``maps`` (N, H, W).
    """
    handle = handle_for(model)
    images = check_images(images, handle.input_shape)
    use_sign = saliency.check_signed(signed)
    t0 = time.perf_counter()
    attr = smooth_attribution(handle, images, target,
                              lambda i: noise_draws(images[i], int(samples), noise, seed),
                              progress=progress, cancel=cancel, batch_size=batch_size, absolute=not use_sign)
    t1 = time.perf_counter()
    maps = saliency.signed_map(attr, images) if use_sign else saliency.to_map(attr)
    baseline = target_probability(handle.p_normal(images), target)
    params = Params({"samples": int(samples), "noise": float(noise), "seed": int(seed),
                     "signed": "yes" if use_sign else "no"})
    return Explanation("smoothgrad", target, maps, baseline, params,
                       {"gradients": t1 - t0, "total": time.perf_counter() - t0}, {})
