"""XGrad-CAM: channels weighted by the activation-weighted mean of the logit's gradient.

Fu et al. (2020), "Axiom-based Grad-CAM: Towards Accurate Visualization and Explanation of
CNNs", BMVC.

    w_k = sum_ij (A_ij^k / sum_ab A_ab^k) * g_ij^k      (0 for a channel that is all zero)

The weights satisfy the paper's sensitivity and conservation axioms; where a channel's
activation is uniform they equal Grad-CAM's.
"""
from __future__ import annotations

import numpy as np

from core.explain.cam import CAM


class XGradCAM(CAM):
    name = "xgradcam"

    def channel_weights(self, activations, gradients, context):
        a = activations.astype(np.float64)
        total = a.sum(axis=(1, 2))
        weighted = (a * gradients).sum(axis=(1, 2))
        return np.where(total != 0.0, weighted / np.where(total != 0.0, total, 1.0), 0.0)


explain = XGradCAM().explain
