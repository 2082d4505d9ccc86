"""Feature maps: the activations of every conv/activation/pool layer before Flatten.

For DisplasiaNet these are 12 layers x 16 channels = 192 maps (the study normalises each
on its own for display; here they are raw). Per-channel mean activations allow class
comparisons (e.g. block 3 pooling, channel 5 lights up granular cytoplasm).

Extras
------
activation:<layer> : (N, h, w, c) float32 raw activations of each feature-map layer.
channel_mean:<layer> : (N, c) float32 mean activation per channel.
layers : (L,) str the layer names in order.
"""
from __future__ import annotations

import time

import numpy as np

from core.explain._model import handle_for
from core.explain.base import Explanation, Params, check_images, target_probability
from core.explain.batching import batch_size_for, concat, run_batched
from core.explain.cam import upsample


def explain(model, images, target="dysplastic", *, layer=None, progress=None, cancel=None,
            batch_size=None) -> Explanation:
    """Activations of every feature-map layer.

    Parameters
    ----------
    model : LoadedModel or keras.Model
    images : (N, H, W, 3) float32 ndarray in [0, 1]
    target : {"dysplastic", "normal"}
        Only the baseline score depends on it.
    layer : str, optional
        Layer whose channel-mean map is returned as ``maps``; default the CAM layer.

    Returns
    -------
    Explanation
        ``maps`` (N, H, W): mean over channels of ``layer``, upsampled bilinearly.
    """
    handle = handle_for(model)
    images = check_images(images, handle.input_shape)
    chosen = handle.layer_name(layer)
    layers = tuple(handle.description.feature_map_layers)
    t0 = time.perf_counter()
    batch_size = batch_size or batch_size_for(handle.description)
    parts = run_batched(lambda a, b: handle.layer_outputs(images[a:b], layers), len(images), batch_size,
                        progress=progress, cancel=cancel)
    extras = {"layers": np.array(layers)}
    for j, name in enumerate(layers):
        acts = concat([p[j] for p in parts]).astype(np.float32)
        extras[f"activation:{name}"] = acts
        extras[f"channel_mean:{name}"] = acts.mean(axis=(1, 2)).astype(np.float32)
    maps = upsample(extras[f"activation:{chosen}"].mean(axis=-1), *handle.input_shape[:2])
    baseline = target_probability(handle.p_normal(images), target)
    return Explanation("feature_maps", target, maps, baseline, Params({"layer": layer}),
                       {"total": time.perf_counter() - t0}, extras)
