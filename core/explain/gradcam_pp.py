"""Grad-CAM++: channels weighted by alpha-weighted positive gradients.

Chattopadhay et al. (2018), "Grad-CAM++: Generalized Gradient-based Visual Explanations for
Deep Convolutional Networks", WACV.

Formula used (tf-keras-vis's, the study's library), with g = d(+/-logit)/dA:

    alpha_ij^k = g^2 / (2 g^2 + sum_ab(A_ab^k) g^3)          (0 where g = 0)
    alpha^k   <- alpha^k / sum_ij(alpha_ij^k)                  (per-channel renormalisation)
    w_k       = sum_ij alpha_ij^k relu(g_ij^k)

The paper and tf-keras-vis multiply every derivative by exp(S); it cancels in alpha and
only rescales w (hence each image's map) by the positive constant exp(S), which overflows
float32 for logits above 88, so it is left out: maps equal tf-keras-vis's up to a per-image
positive factor. The renormalisation of alpha is tf-keras-vis's (not in the paper's
formula); it is kept so that maps agree with the study's.
"""
from __future__ import annotations

import numpy as np

from core.explain.cam import CAM


class GradCAMPlusPlus(CAM):
    name = "gradcam_pp"

    def channel_weights(self, activations, gradients, context):
        g = gradients.astype(np.float64)
        g2, g3 = g ** 2, g ** 3
        total = activations.astype(np.float64).sum(axis=(1, 2), keepdims=True)
        denominator = 2.0 * g2 + total * g3
        denominator = denominator + (g2 == 0.0)
        alpha = g2 / denominator
        norm = alpha.sum(axis=(1, 2), keepdims=True)
        alpha = alpha / (norm + (norm == 0.0))
        return (alpha * np.maximum(g, 0.0)).sum(axis=(1, 2))


explain = GradCAMPlusPlus().explain
