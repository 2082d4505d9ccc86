"""Agreement with the reference libraries (tf-keras-vis 0.8.7, lime 0.2.0.1) on identical inputs."""
from __future__ import annotations

import numpy as np
import pytest

from core.explain import compute, get_method
from core.explain.testing import random_cells, tiny_cnn
from core.model_io import from_keras

pytest.importorskip("tf_keras_vis")
pytest.importorskip("lime")


@pytest.fixture(scope="module")
def cnn():
    return from_keras(tiny_cnn(16, seed=11))


@pytest.fixture(scope="module")
def cells():
    return random_cells(3, 16, seed=4)


def pearson(a, b) -> float:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(np.corrcoef(a, b)[0, 1])


def score_of(target):
    # the model handed to tf-keras-vis is the logit model: explain "dysplastic" = negated logit
    return (lambda out: out) if target == "normal" else (lambda out: -out)


@pytest.mark.parametrize("target", ["dysplastic", "normal"])
def test_saliency_matches_tf_keras_vis(cnn, cells, target):
    from tf_keras_vis.saliency import Saliency

    ref = Saliency(cnn.logit_model, clone=False)(score_of(target), cells, normalize_map=False)
    ours = compute("saliency", cnn, cells, target).maps
    for i in range(len(cells)):
        assert pearson(ours[i], ref[i]) >= 0.99
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("target", ["dysplastic", "normal"])
def test_smoothgrad_matches_tf_keras_vis_with_the_same_noise(cnn, cells, target):
    from tf_keras_vis.saliency import Saliency

    from core.explain import saliency, smoothgrad
    from core.explain._model import handle_for

    samples, level = 6, 0.2
    np.random.seed(123)
    ref = Saliency(cnn.logit_model, clone=False)(score_of(target), cells, smooth_samples=samples,
                                                 smooth_noise=level, normalize_map=False)
    # the same draws as tf-keras-vis: sigma = level * (max - min) per image, numpy's global RNG
    sigma = level * (cells.max(axis=(1, 2, 3)) - cells.min(axis=(1, 2, 3)))
    np.random.seed(123)
    draws = np.random.normal(0.0, np.broadcast_to(sigma[None, :, None, None, None], (samples, len(cells), 1, 1, 1)),
                             (samples, *cells.shape))
    attr = smoothgrad.smooth_attribution(handle_for(cnn), cells, target, draws.astype(np.float32))
    ours = saliency.to_map(attr)
    for i in range(len(cells)):
        assert pearson(ours[i], ref[i]) >= 0.99
    np.testing.assert_allclose(ours, ref, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("target", ["dysplastic", "normal"])
def test_gradcam_matches_tf_keras_vis(cnn, cells, target):
    from tf_keras_vis.gradcam import Gradcam

    ref = Gradcam(cnn.logit_model, clone=False)(score_of(target), cells, penultimate_layer="activation_1",
                                                seek_penultimate_conv_layer=False, normalize_cam=False)
    ours = compute("gradcam", cnn, cells, target).maps
    for i in range(len(cells)):
        if np.ptp(ref[i]) > 0:
            assert pearson(ours[i], ref[i]) >= 0.99
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("target", ["dysplastic", "normal"])
def test_gradcam_pp_matches_tf_keras_vis_up_to_its_exp_score_factor(cnn, cells, target):
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus

    ref = GradcamPlusPlus(cnn.logit_model, clone=False)(score_of(target), cells, penultimate_layer="activation_1",
                                                        seek_penultimate_conv_layer=False, normalize_cam=False)
    exp = compute("gradcam_pp", cnn, cells, target)
    signed_logit = np.log(exp.baseline / (1 - exp.baseline))  # logit of the target probability
    for i in range(len(cells)):
        if np.ptp(ref[i]) > 0:
            assert pearson(exp.maps[i], ref[i]) >= 0.99
        np.testing.assert_allclose(exp.maps[i] * np.exp(signed_logit[i]), ref[i], rtol=1e-3, atol=1e-6)


def test_cams_on_an_untrained_displasianet_match_tf_keras_vis_on_activation_3():
    """The study's setup: the sigmoid model with tf-keras-vis's ReplaceToLinear modifier."""
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear

    from core.architecture import displasianet

    loaded = from_keras(displasianet(seed=1))
    assert loaded.description.cam_layer == "activation_3"
    image = random_cells(1, 299, seed=9)
    for name, cls in (("gradcam", Gradcam), ("gradcam_pp", GradcamPlusPlus)):
        ref = cls(loaded.model, model_modifier=ReplaceToLinear(), clone=True)(
            lambda out: -out[:, 0], image, penultimate_layer="activation_3", seek_penultimate_conv_layer=False,
            normalize_cam=False)
        ours = compute(name, loaded, image, "dysplastic").maps
        if np.ptp(ref[0]) > 0:
            assert pearson(ours[0], ref[0]) >= 0.99, name


@pytest.mark.parametrize("target", ["dysplastic", "normal"])
def test_lime_weights_equal_lime_base_on_the_same_perturbations(cnn, cells, target):
    from functools import partial

    from lime.lime_base import LimeBase
    from sklearn.metrics import pairwise_distances

    exp = compute("lime", cnn, cells[:1], target, params={"samples": 120, "kernel_width": 0.25, "max_dist": 5})
    n = int(exp.extras["n_segments"][0])
    data = exp.extras["perturbations"][0, :, :n].astype(np.int64)
    scores = exp.extras["sample_scores"][0].astype(np.float64)
    labels = np.stack([scores, 1 - scores], axis=1)  # column 0 = the explained target
    distances = pairwise_distances(data, data[0].reshape(1, -1), metric="cosine").ravel()

    def kernel(d, kernel_width):
        return np.sqrt(np.exp(-(d ** 2) / kernel_width ** 2))

    base = LimeBase(partial(kernel, kernel_width=0.25), random_state=0)
    intercept, pairs, r2, local = base.explain_instance_with_data(data, labels, distances, 0, 100000)
    ref = np.zeros(n)
    for feature, weight in pairs:
        ref[feature] = weight
    assert n > 10
    np.testing.assert_allclose(exp.extras["weights"][0, :n], ref, rtol=0, atol=1e-6)
    assert exp.extras["intercept"][0] == pytest.approx(intercept, abs=1e-6)
    assert exp.extras["r2"][0] == pytest.approx(r2, abs=1e-6)


@pytest.mark.parametrize("score", ["probability", "logit"])
def test_lime_whole_pipeline_equals_lime_image_explainer(cnn, cells, score):
    """Same segmentation and seed: lime's Python loop and the vectorised version agree.

    lime fits whatever the classifier returns: the log-odds space is lime with a classifier
    that returns (-logit, +logit).
    """
    from lime.lime_image import LimeImageExplainer

    from core.explain.lime import superpixels

    params = dict(get_method("lime").validate({"samples": 80, "seed": 5, "max_dist": 5, "score": score}))
    image = cells[2]
    exp = compute("lime", cnn, image[None], "normal", params=params)

    def classifier(batch):
        if score == "logit":
            z = cnn.logit_model(np.asarray(batch, np.float32)).numpy().reshape(-1)
            return np.stack([-z, z], axis=1)
        p = cnn.score_fn(np.asarray(batch, np.float32)).numpy().reshape(-1)
        return np.stack([1 - p, p], axis=1)

    segmentation = lambda img: superpixels(img, ratio=0.5, kernel_size=2, max_dist=5, seed=5)  # noqa: E731
    ref = LimeImageExplainer(kernel_width=0.25, random_state=5).explain_instance(
        image, classifier, labels=(1,), top_labels=None, num_samples=80, segmentation_fn=segmentation,
        random_seed=5, batch_size=10)
    n = int(exp.extras["n_segments"][0])
    ref_weights = np.zeros(n)
    for feature, weight in ref.local_exp[1]:
        ref_weights[feature] = weight
    assert n > 10
    np.testing.assert_array_equal(ref.segments, exp.extras["labels"][0])
    np.testing.assert_allclose(exp.extras["weights"][0, :n], ref_weights, rtol=0, atol=1e-6)
