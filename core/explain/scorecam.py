"""Score-CAM as published: channels weighted by the target's score on the image masked by each channel.

Wang et al. (2020), "Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural
Networks", CVPR workshops.

Each channel A_k of the layer is upsampled to the input size, scaled to [0, 1] (H_k) and
multiplied into the image; the channel's weight is the target's score on ``X * H_k``
minus its score on the unchanged image ``X`` (the paper's "increase of confidence",
``weights="increase"``, default), or the masked score alone (``weights="score"``). The map
is ``ReLU(sum_k w_k A_k)``. The score is the target's log-odds (``score="logit"``, default:
it never saturates) or its probability (``score="probability"``: for a single sigmoid
output the paper's 2-class softmax is p for normal and 1 - p for dysplastic).

There is no softmax across channels: an earlier version of this module took one, which
squeezes weights of probabilities in [0, 1] to within a factor e of each other and
erases the class. tf-keras-vis takes a softmax over the model *outputs*, which for a
single sigmoid output is 1 for every channel, so its maps are flat or blank (its issue
#78; likely the study's blank dysplastic maps).

Extras (besides the CAM template's ``cam`` and ``channel_weights``)
-------------------------------------------------------------------
channel_scores : (N, C) the target score of each masked image, in the chosen space.
score_space, baseline_score, saturated : see ``core.explain.base.score_extras``.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from core.explain.base import check_space, score_extras, target_score
from core.explain.batching import batch_size_for, run_batched
from core.explain.cam import CAM, upsample

WEIGHTS = ("increase", "score")


def channel_masks(activations, height, width) -> np.ndarray:
    """``(N, H, W, C)`` masks: each channel upsampled and min-max scaled to [0, 1].

    (The method computes the same masks inside the graph, see ``masked_p_normal``.)
    """
    up = upsample(activations, height, width)
    low = up.min(axis=(1, 2), keepdims=True)
    high = up.max(axis=(1, 2), keepdims=True)
    return ((up - low) / (high - low + 1e-7)).astype(np.float32)


class ScoreCAM(CAM):
    """One configuration of Score-CAM (a new, immutable instance per call)."""

    name = "scorecam"
    needs_gradients = False

    def __init__(self, space: str = "logit", weights: str = "increase"):
        self.space = check_space(space)
        if weights not in WEIGHTS:
            from core.errors import DisplasiaError

            raise DisplasiaError(f"Score-CAM weights must be one of {', '.join(WEIGHTS)}, not '{weights}'.")
        self.weights = weights

    def channel_scores(self, activations, context) -> np.ndarray:
        """``(N, C)`` target score of the image masked by each channel."""
        handle = context.handle
        n, channels = activations.shape[0], activations.shape[-1]
        # masked images need no gradients: larger chunks than the gradient methods
        batch = batch_size_for(handle.description, cap=16)
        scores = np.empty((n, channels), np.float32)
        for i in range(n):
            def chunk(a, b, i=i):
                return handle.masked_p_normal(context.images[i], activations[i, ..., a:b], self.space)

            raw = np.concatenate(run_batched(chunk, channels, batch, cancel=context.cancel))
            scores[i] = target_score(raw, context.target, self.space)
        return scores

    def channel_weights(self, activations, gradients, context):
        scores = self.channel_scores(activations, context)
        if self.weights == "score":
            return scores
        base = target_score(context.handle.normal_scores(context.images, self.space), context.target, self.space)
        return scores - base[:, None]


def explain(model, images, target="dysplastic", *, layer=None, evidence="positive", score="logit",
            weights="increase", progress=None, cancel=None, batch_size=None):
    """Score-CAM of each image (see the module docstring; parameters as the CAM template's, plus).

    Parameters
    ----------
    score : {"logit", "probability"}
        Space of the target's score.
    weights : {"increase", "score"}
        Channel weight: the masked image's score minus the unchanged image's (the paper's
        increase of confidence), or the masked image's score alone.
    """
    from core.explain._model import handle_for
    from core.explain.base import Params

    handle = handle_for(model)
    method = ScoreCAM(score, weights)
    exp = method.explain(handle, images, target, layer=layer, evidence=evidence, progress=progress, cancel=cancel,
                         batch_size=batch_size)
    images = np.asarray(images, np.float32).reshape((-1, *handle.input_shape))
    baseline = target_score(handle.normal_scores(images, method.space), target, method.space)
    channel_weights = np.asarray(exp.extras["channel_weights"], np.float32)
    channel_scores = channel_weights + (baseline[:, None] if method.weights == "increase" else 0.0)
    extras = {**exp.extras, "channel_scores": channel_scores.astype(np.float32),
              **score_extras(method.space, baseline, exp.baseline)}
    params = Params({**dict(exp.params), "score": method.space, "weights": method.weights})
    return dataclasses.replace(exp, params=params, extras=extras)
