"""LayerCAM: every activation weighted by its own positive gradient.

Jiang et al. (2021), "LayerCAM: Exploring Hierarchical Class Activation Maps for
Localization", IEEE Transactions on Image Processing.

    M = ReLU( sum_k relu(g^k) * A^k )        (element-wise, no spatial averaging)

Element-wise weights keep fine detail, so the method also gives useful maps on early
layers. The reported ``channel_weights`` are the spatial means of relu(g).
"""
from __future__ import annotations

import numpy as np

from core.explain.cam import CAM


class LayerCAM(CAM):
    name = "layercam"

    def element_weights(self, activations, gradients, context):
        return np.maximum(gradients, 0.0)


explain = LayerCAM().explain
