"""Saturation: DisplasiaNet says P(normal) = 1.0 exactly (float32) for about 1 real normal cell in 5.

A model with the real DisplasiaNet architecture (the demo model, its last Dense bias raised
so that a normal demo cell's logit is about 18) reproduces that. In probability space
every perturbation scores 1.0 and the maps are flat (the engine says ``saturated``); in
the default log-odds space occlusion, LIME and Score-CAM still see what matters.
"""
from __future__ import annotations

import numpy as np
import pytest

from core.explain import compute

TARGET_LOGIT = 18.0
#: Smallest range (in log-odds) a map must span to count as not flat.
VISIBLE = 0.05
#: Score-CAM signed: its published ReLU may legitimately blank "normal" on such a cell (no
#: channel mask raises a logit of 18), which says nothing about flatness.
METHODS = {"occlusion": {"patch": 20}, "lime": {"samples": 300, "stability_runs": 1},
           "scorecam": {"evidence": "signed"}}


@pytest.fixture(scope="module")
def saturated():
    import keras

    from core.config import DEMO_DIR, demo_model_path
    from core.explain._model import handle_for
    from core.model_io import from_keras, load_model
    from core.preprocess import load_batch

    json_path, weights_path = demo_model_path()
    if not json_path.is_file():
        pytest.skip("the demo model is not bundled")
    loaded = load_model(json_path, weights_path)
    image = load_batch(sorted(DEMO_DIR.glob("TN_*.jpg"))[:1], loaded.description.image_size)
    clone = keras.models.clone_model(loaded.model)
    clone.set_weights(loaded.model.get_weights())
    z = float(handle_for(loaded).normal_scores(image, "logit")[0])
    kernel, bias = clone.get_layer("dense_1").get_weights()
    clone.get_layer("dense_1").set_weights([kernel, bias + np.float32(TARGET_LOGIT - z)])
    model = from_keras(clone, source="demo model, saturated")
    return model, image


def test_the_model_saturates_like_the_real_one(saturated):
    from core.explain._model import handle_for

    model, image = saturated
    handle = handle_for(model)
    assert handle.p_normal(image)[0] == np.float32(1.0)
    assert handle.normal_scores(image, "logit")[0] == pytest.approx(TARGET_LOGIT, abs=0.01)


@pytest.mark.parametrize("name", list(METHODS))
def test_default_log_odds_maps_are_not_flat_on_a_saturated_cell(saturated, name):
    model, image = saturated
    for target in ("normal", "dysplastic"):
        exp = compute(name, model, image, target, params=METHODS[name])
        assert exp.extras["score_space"] == "logit" and not exp.extras["saturated"][0]
        assert np.ptp(exp.maps[0]) > VISIBLE, (name, target, float(np.ptp(exp.maps[0])))


@pytest.mark.parametrize("name", list(METHODS))
def test_probability_space_says_saturated(saturated, name):
    model, image = saturated
    exp = compute(name, model, image, "normal", params={**METHODS[name], "score": "probability"})
    assert bool(exp.extras["saturated"][0]) and exp.extras["baseline_score"][0] == np.float32(1.0)


@pytest.mark.parametrize("name", ["occlusion", "lime"])
def test_small_perturbations_are_flat_or_float_noise_in_probability(saturated, name):
    """Patches and superpixels keep P at 1.0 (Score-CAM's heavy masks can leave saturation)."""
    model, image = saturated
    prob = compute(name, model, image, "normal", params={**METHODS[name], "score": "probability"})
    logit = compute(name, model, image, "normal", params=METHODS[name])
    assert np.ptp(prob.maps[0]) < 1e-3 * np.ptp(logit.maps[0]), (name, float(np.ptp(prob.maps[0])))
