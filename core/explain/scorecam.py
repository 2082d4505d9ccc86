"""Score-CAM: channels weighted by the target probability of the image masked by each channel.

Wang et al. (2020), "Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural
Networks", CVPR workshops.

Each channel of the layer is upsampled to the input size, scaled to [0, 1] and multiplied
into the image; the masked image's probability of the *target* class (p for normal, 1 - p
for dysplastic) is the channel's score, and the weights are the softmax of the scores over
channels. tf-keras-vis instead takes a softmax over the model outputs, which for a single
sigmoid output is 1 for every channel, so its maps are flat or blank (its issue #78; likely
the study's blank dysplastic maps). Subtracting a baseline score, as the paper suggests,
would not change the softmax.
"""
from __future__ import annotations

import numpy as np

from core.explain.base import target_probability
from core.explain.batching import batch_size_for, run_batched
from core.explain.cam import CAM, upsample


def channel_masks(activations, height, width) -> np.ndarray:
    """``(N, H, W, C)`` masks: each channel upsampled and min-max scaled to [0, 1].

    (The method computes the same masks inside the graph, see ``masked_p_normal``.)
    """
    up = upsample(activations, height, width)
    low = up.min(axis=(1, 2), keepdims=True)
    high = up.max(axis=(1, 2), keepdims=True)
    return ((up - low) / (high - low + 1e-7)).astype(np.float32)


class ScoreCAM(CAM):
    name = "scorecam"
    needs_gradients = False

    def channel_weights(self, activations, gradients, context):
        handle = context.handle
        n, channels = activations.shape[0], activations.shape[-1]
        # masked images need no gradients: larger chunks than the gradient methods
        batch = batch_size_for(handle.description, cap=16)
        scores = np.empty((n, channels), np.float32)
        for i in range(n):
            def chunk(a, b, i=i):
                return handle.masked_p_normal(context.images[i], activations[i, ..., a:b])

            p = np.concatenate(run_batched(chunk, channels, batch, cancel=context.cancel))
            scores[i] = target_probability(p, context.target)
        shifted = scores - scores.max(axis=1, keepdims=True)
        return np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)


explain = ScoreCAM().explain
