"""TCAV with the explanation engine's call shape, for the method registry (kind "dataset").

``explain(model, images, target, ...)`` measures, on the given cells (the dataset's cells of
the class explained), how often each generator concept raises the target's logit at one
layer. It has no per-pixel map: ``maps`` are zeros and the answer is in ``extras``.
"""
from __future__ import annotations

import hashlib

import numpy as np

from core.explain.base import Explanation, Params, check_images, target_probability


def explain(model, images, target="dysplastic", *, layer=None, cells=20, runs=20, seed=0, progress=None,
            cancel=None, batch_size=None) -> Explanation:
    """TCAV of every generator concept at one layer, scored on ``images``.

    Parameters
    ----------
    model : LoadedModel or keras.Model
    images : (N, H, W, 3) float32 ndarray in [0, 1]
        The cells whose directional derivatives give the TCAV score of ``target``.
    target : {"dysplastic", "normal"}
    layer : str, optional
        A conv-block layer; default the CAM layer (post-ReLU output of the last conv block).
    cells : int
        Generated cells per concept side (and twice as many random cells).
    runs : int
        CAVs per concept and random CAVs (the paper: at least 20).
    seed : int

    Returns
    -------
    Explanation
        ``maps`` zeros (N, H, W); ``extras``: ``concept`` (U), ``status`` (U), ``score``,
        ``score_low``, ``score_high``, ``random_score``, ``accuracy``, ``p``, ``p_corrected``
        (one entry per concept, control last).
    """
    from core.concepts.sets import ImageSet, generator_concepts, random_cells
    from core.concepts.tcav import TcavParams, run_tcav
    from core.explain._model import handle_for

    handle = handle_for(model)
    images = check_images(images, handle.input_shape)
    loaded = handle.loaded
    layer = handle.layer_name(layer)
    size = handle.description.image_size
    token = hashlib.sha256(images.tobytes()).hexdigest()
    inputs = ImageSet("cells", token, len(images), lambda: images)
    concepts = generator_concepts(n=int(cells), seed=2018 + int(seed), size=size)
    pool = random_cells(n=2 * int(cells), seed=99 + int(seed), size=size)
    params = TcavParams(layers=(layer,), runs=int(runs), seed=int(seed), min_images=min(10, int(cells)),
                        batch_size=batch_size or 16)
    result = run_tcav(loaded, concepts, pool, {"dysplastic": inputs, "normal": inputs}, params, progress=progress)
    rows = result.table[result.table["target"] == target]
    extras = {"concept": rows["concept"].to_numpy().astype(str), "status": rows["status"].to_numpy().astype(str)}
    for col in ("score", "score_low", "score_high", "random_score", "accuracy", "p", "p_corrected"):
        extras[col] = rows[col].to_numpy(dtype=np.float64)
    extras["significant"] = rows["significant"].to_numpy(dtype=bool)
    h, w = handle.input_shape[:2]
    baseline = target_probability(handle.p_normal(images), target)
    return Explanation("tcav", target, np.zeros((len(images), h, w), np.float32), baseline,
                       Params({"layer": layer, "cells": int(cells), "runs": int(runs), "seed": int(seed)}),
                       dict(result.timings), extras)
