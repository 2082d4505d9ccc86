"""Grad-CAM: channels weighted by the spatial mean of the logit's gradient.

Selvaraju et al. (2017), "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization", ICCV.
"""
from __future__ import annotations

from core.explain.cam import CAM


class GradCAM(CAM):
    name = "gradcam"

    def channel_weights(self, activations, gradients, context):
        return gradients.mean(axis=(1, 2))


explain = GradCAM().explain
