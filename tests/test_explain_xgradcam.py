"""XGrad-CAM against a hand-computed one-conv net (core.explain.testing.one_conv_net)."""
from __future__ import annotations

import numpy as np
import pytest

from core.explain import compute
from core.explain.testing import one_conv_net, random_cells, tiny_cnn
from core.model_io import from_keras


def test_xgradcam_weights_and_map_by_hand():
    # constant gradients: w_k = sum(A g) / sum(A) = g_k whatever A is, so the weights are
    # (0.5, -0.25) and the map is relu(0.5 R - 0.25 G) as for Grad-CAM; channel 2 of the image
    # (B) is not seen by the model.
    image = np.zeros((1, 4, 4, 3), np.float32)
    image[0, :, :, 0] = np.linspace(0, 1, 16).reshape(4, 4)
    image[0, :, :, 1] = 0.8
    exp = compute("xgradcam", from_keras(one_conv_net()), image, "normal")
    assert exp.extras["channel_weights"][0] == pytest.approx([0.5, -0.25], abs=1e-6)
    np.testing.assert_allclose(exp.maps[0], np.maximum(0.5 * image[0, :, :, 0] - 0.2, 0), atol=1e-6)


def test_xgradcam_gives_an_all_zero_channel_no_weight():
    image = np.zeros((1, 4, 4, 3), np.float32)
    image[0, :, :, 0] = 0.5  # channel 1 (G) is all zero after the ReLU
    exp = compute("xgradcam", from_keras(one_conv_net()), image, "normal", params={"evidence": "signed"})
    assert exp.extras["channel_weights"][0] == pytest.approx([0.5, 0.0], abs=1e-7)
    np.testing.assert_allclose(exp.maps[0], 0.25, atol=1e-6)


def test_xgradcam_is_the_activation_weighted_gradient_mean_on_a_cnn():
    from core.explain._model import handle_for

    cnn = from_keras(tiny_cnn(16, seed=5))
    cells = random_cells(2, 16, seed=8)
    handle = handle_for(cnn)
    acts, grads, _ = handle.layer_gradients(cells, handle.layer_name(None), -1.0)
    a, g = acts.astype(np.float64), grads.astype(np.float64)
    total = a.sum(axis=(1, 2))
    expected = np.where(total > 0, (a * g).sum(axis=(1, 2)) / np.where(total > 0, total, 1), 0)
    exp = compute("xgradcam", cnn, cells, "dysplastic", params={"evidence": "signed"})
    np.testing.assert_allclose(exp.extras["channel_weights"], expected, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(exp.extras["cam"], np.einsum("nhwc,nc->nhw", a, expected), rtol=1e-4, atol=1e-6)
