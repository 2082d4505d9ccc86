"""LayerCAM: cross-checked against tf-keras-vis's Layercam on identical inputs, and by hand."""
from __future__ import annotations

import numpy as np
import pytest

from core.explain import compute
from core.explain.testing import random_cells, tiny_cnn
from core.model_io import from_keras


@pytest.fixture(scope="module")
def cnn():
    return from_keras(tiny_cnn(16, seed=11))


@pytest.fixture(scope="module")
def cells():
    return random_cells(3, 16, seed=4)


@pytest.mark.parametrize("target", ["dysplastic", "normal"])
def test_layercam_matches_tf_keras_vis(cnn, cells, target):
    pytest.importorskip("tf_keras_vis")
    from tf_keras_vis.layercam import Layercam

    score = (lambda out: out) if target == "normal" else (lambda out: -out)
    ref = Layercam(cnn.logit_model, clone=False)(score, cells, penultimate_layer="activation_1",
                                                 seek_penultimate_conv_layer=False, normalize_cam=False)
    ours = compute("layercam", cnn, cells, target).maps
    compared = 0
    for i in range(len(cells)):
        if np.ptp(ref[i]) > 0:
            assert np.corrcoef(ours[i].ravel(), ref[i].ravel())[0, 1] >= 0.99
            compared += 1
    assert compared >= 1
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-6)


def test_layercam_is_the_positive_gradient_times_activation_summed_over_channels(cnn, cells):
    from core.explain._model import handle_for

    handle = handle_for(cnn)
    acts, grads, _ = handle.layer_gradients(cells, handle.layer_name(None), 1.0)
    expected = np.maximum((np.maximum(grads, 0) * acts).sum(axis=-1), 0)
    exp = compute("layercam", cnn, cells, "normal")
    np.testing.assert_allclose(exp.extras["cam"], expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(exp.extras["channel_weights"], np.maximum(grads, 0).mean(axis=(1, 2)), rtol=1e-5,
                               atol=1e-8)


def test_layercam_differs_from_gradcam_where_gradients_vary_in_space(cnn, cells):
    layer = compute("layercam", cnn, cells, "normal", params={"evidence": "signed"}).maps
    grad = compute("gradcam", cnn, cells, "normal", params={"evidence": "signed"}).maps
    assert not np.allclose(layer, grad, atol=1e-6)
