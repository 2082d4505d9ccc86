"""Analytic checks of the explanation methods on tiny models whose answers are known."""
from __future__ import annotations

import numpy as np
import pytest

from core.errors import DisplasiaError
from core.explain import Cancelled, compute, get_method
from core.explain.testing import linear_model, random_cells, tiny_cnn
from core.model_io import from_keras


@pytest.fixture(scope="module")
def cnn():
    return from_keras(tiny_cnn(16, seed=3))


@pytest.fixture(scope="module")
def cells():
    return random_cells(3, 16, seed=1)


@pytest.fixture(scope="module")
def weights():
    w = np.random.default_rng(7).normal(0, 1, (16, 16, 3)).astype(np.float32)
    w[:, 8:] = 0.0  # the model ignores the right half
    return w


@pytest.fixture(scope="module")
def linear(weights):
    return from_keras(linear_model(weights, bias=0.3))


def test_linear_saliency_is_abs_weights(linear, weights, cells):
    exp = compute("saliency", linear, cells, "normal")
    expected = np.abs(weights).max(axis=-1)
    np.testing.assert_allclose(exp.maps, np.broadcast_to(expected, exp.maps.shape), rtol=1e-6, atol=1e-7)
    # the dysplastic target negates the logit: same absolute map
    np.testing.assert_allclose(compute("saliency", linear, cells, "dysplastic").maps, exp.maps, atol=1e-7)


def test_smoothgrad_without_noise_is_saliency(cnn, cells):
    plain = compute("saliency", cnn, cells, "dysplastic").maps
    smooth = compute("smoothgrad", cnn, cells, "dysplastic", params={"samples": 3, "noise": 0.0}).maps
    np.testing.assert_allclose(smooth, plain, rtol=1e-5, atol=1e-8)


def test_smoothgrad_on_linear_model_is_abs_weights_whatever_the_noise(linear, weights, cells):
    exp = compute("smoothgrad", linear, cells, "normal", params={"samples": 5, "noise": 0.3})
    np.testing.assert_allclose(exp.maps[0], np.abs(weights).max(axis=-1), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("score", ["logit", "probability"])
def test_occlusion_of_an_ignored_region_changes_nothing(linear, cells, score):
    exp = compute("occlusion", linear, cells, "normal", params={"patch": 4, "fill": "grey", "score": score})
    np.testing.assert_allclose(exp.maps[:, :, 8:], 0.0, atol=1e-6)  # no drop where the model does not look
    right = exp.extras["occluded_score"][:, :, 8:]
    base = exp.extras["baseline_score"]
    np.testing.assert_allclose(right, np.broadcast_to(base[:, None, None], right.shape), atol=1e-6)
    assert np.abs(exp.maps[:, :, :8]).max() > 1e-3  # the left half does matter
    assert exp.extras["window_scores"].shape == (3, 4, 4)
    assert exp.extras["score_space"] == score and exp.params["score"] == score


@pytest.mark.parametrize("score", ["logit", "probability"])
def test_occlusion_map_is_the_drop_of_the_target_score(linear, weights, cells, score):
    """Linear model: occluding window W with colour c changes the logit by sum_W w (c - x).

    The map is the baseline score minus the score with the patch in place: positive where
    hiding the place lowers the target (the place supports it).
    """
    image = cells[0]
    exp = compute("occlusion", linear, image[None], "normal", params={"patch": 8, "fill": "mean", "score": score})
    z0 = float((weights * image).sum() + 0.3)
    base = z0 if score == "logit" else 1 / (1 + np.exp(-z0))
    assert exp.extras["baseline_score"][0] == pytest.approx(base, abs=1e-5)
    assert exp.baseline[0] == pytest.approx(1 / (1 + np.exp(-z0)), abs=1e-6)  # always the probability
    for iy, y in enumerate((0, 8)):
        for ix, x in enumerate((0, 8)):
            window = image[y:y + 8, x:x + 8]
            colour = window.reshape(-1, 3).mean(axis=0)
            z = z0 + float((weights[y:y + 8, x:x + 8] * (colour - window)).sum())
            hidden = z if score == "logit" else 1 / (1 + np.exp(-z))
            assert exp.extras["window_scores"][0, iy, ix] == pytest.approx(hidden, abs=1e-4)
            assert exp.extras["occluded_score"][0, y + 3, x + 3] == pytest.approx(hidden, abs=1e-4)
            assert exp.maps[0, y + 3, x + 3] == pytest.approx(base - hidden, abs=1e-4)
    dys = compute("occlusion", linear, image[None], "dysplastic", params={"patch": 8, "score": score})
    np.testing.assert_allclose(dys.maps, -exp.maps, atol=1e-5)  # evidence for one class is against the other


def test_occlusion_overlapping_windows_are_averaged(linear, cells):
    exp = compute("occlusion", linear, cells[:1], "normal", params={"patch": 4, "stride": 2, "fill": "grey"})
    grid = exp.extras["window_scores"][0]
    base = float(exp.extras["baseline_score"][0])
    assert grid.shape == (8, 8)
    # pixel (5, 5) is covered by windows starting at 2 and 4 on each axis
    expected = grid[1:3, 1:3].mean()
    assert exp.extras["occluded_score"][0, 5, 5] == pytest.approx(expected, abs=1e-5)
    assert exp.maps[0, 5, 5] == pytest.approx(base - expected, abs=1e-5)
    assert exp.maps[0, 0, 0] == pytest.approx(base - grid[0, 0], abs=1e-5)


def test_probability_space_flags_a_saturated_baseline(weights, cells):
    """A baseline within 1e-6 of 1 in probability space: flat map, ``saturated`` says so."""
    saturating = from_keras(linear_model(weights, bias=40.0))
    prob = compute("occlusion", saturating, cells[:1], "normal", params={"patch": 4, "score": "probability"})
    logit = compute("occlusion", saturating, cells[:1], "normal", params={"patch": 4})
    assert prob.extras["saturated"].tolist() == [True] and np.ptp(prob.maps) == 0
    assert logit.extras["saturated"].tolist() == [False] and np.ptp(logit.maps) > 1e-3


def test_gradcam_on_a_hand_set_one_conv_net():
    """conv 1x1 picks channels R and G; logit = sum(0.5 * relu(R)) - sum(0.25 * relu(G)).

    dlogit/dA is 0.5 on channel 0 and -0.25 on channel 1 everywhere, so the Grad-CAM
    weights are (0.5, -0.25) and the map is relu(0.5 R - 0.25 G) for "normal" and
    relu(-0.5 R + 0.25 G) for "dysplastic".
    """
    from core.explain.testing import one_conv_net

    model = one_conv_net()
    image = np.zeros((1, 4, 4, 3), np.float32)
    image[0, :, :, 0] = [[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8], [0.9, 1.0, 0.0, 0.1], [0.2, 0.3, 0.4, 0.5]]
    image[0, :, :, 1] = 0.8
    exp = compute("gradcam", from_keras(model), image, "normal")
    assert exp.extras["channel_weights"][0] == pytest.approx([0.5, -0.25], abs=1e-6)
    expected = np.maximum(0.5 * image[0, :, :, 0] - 0.2, 0)  # e.g. pixel (0, 0): relu(0.05 - 0.2) = 0
    np.testing.assert_allclose(exp.maps[0], expected, atol=1e-6)
    dys = compute("gradcam", from_keras(model), image, "dysplastic")
    np.testing.assert_allclose(dys.maps[0], np.maximum(0.2 - 0.5 * image[0, :, :, 0], 0), atol=1e-6)


BATCHED = [("saliency", {}), ("saliency", {"signed": "yes"}), ("smoothgrad", {"samples": 4}),
           ("smoothgrad", {"samples": 4, "signed": "yes"}), ("occlusion", {"patch": 4, "stride": 3}),
           ("occlusion", {"patch": 4, "score": "probability"}), ("lime", {"samples": 40}), ("gradcam", {}),
           ("gradcam_pp", {}), ("scorecam", {}), ("scorecam", {"score": "probability"}), ("feature_maps", {})]


@pytest.mark.parametrize("method,params", BATCHED)
def test_results_do_not_depend_on_batch_size_or_batch_neighbours(cnn, cells, method, params):
    module = get_method(method).load()
    values = dict(get_method(method).validate(params))
    big = module.explain(cnn, cells, "dysplastic", **values)
    small = module.explain(cnn, cells, "dysplastic", batch_size=1, **values)
    alone = module.explain(cnn, cells[1:2], "dysplastic", **values)
    np.testing.assert_allclose(small.maps, big.maps, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(alone.maps[0], big.maps[1], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("method,params", [("smoothgrad", {"samples": 4, "noise": 0.2}), ("lime", {"samples": 40})])
def test_same_seed_same_result_other_seed_other_result(cnn, cells, method, params):
    a = compute(method, cnn, cells[:1], "normal", params=params | {"seed": 1}).maps
    b = compute(method, cnn, cells[:1], "normal", params=params | {"seed": 1}).maps
    c = compute(method, cnn, cells[:1], "normal", params=params | {"seed": 2}).maps
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_lime_dysplastic_weights_are_the_negated_normal_weights(cnn, cells):
    normal = compute("lime", cnn, cells[:1], "normal", params={"samples": 60})
    dys = compute("lime", cnn, cells[:1], "dysplastic", params={"samples": 60})
    np.testing.assert_allclose(dys.extras["weights"], -normal.extras["weights"], atol=1e-7)
    np.testing.assert_array_equal(dys.extras["top_positive"], normal.extras["top_negative"])


def test_lime_grey_fill_and_top_k(cnn, cells):
    exp = compute("lime", cnn, cells[:1], "normal", params={"samples": 60, "fill": "grey", "top_k": 3})
    w = exp.extras["weights"][0]
    top = exp.extras["top_positive"][0]
    assert top.shape == (3,)
    valid = top[top >= 0]
    assert list(valid) == list(np.argsort(-np.nan_to_num(w, nan=-np.inf))[:len(valid)])
    assert np.all(w[valid] > 0)
    np.testing.assert_allclose(exp.maps[0], w[exp.extras["labels"][0]])


_SUBMODELS: dict = {}


def _reference_submodels(keras_model, layer):
    """(logit, activations of ``layer``) of ``keras_model``, built once per model and layer.
    They are called directly (inference mode): ``Model.predict`` costs tens of milliseconds of
    set-up per call, and the reference makes one call per channel."""
    import keras

    key = (id(keras_model), layer)
    if key not in _SUBMODELS:
        _SUBMODELS[key] = (keras.Model(keras_model.input, keras_model.get_layer("activation_5").input),
                           keras.Model(keras_model.input, keras_model.get_layer(layer).output), keras_model)
    return _SUBMODELS[key][:2]


def published_scorecam(keras_model, layer, image, target, space, weights):
    """Score-CAM written straight from Wang et al. (2020): one masked image, one prediction per channel.

    H_k = min-max scaled bilinear upsampling of channel A_k; S_k = target score of X * H_k
    (probability: the 2-class softmax of a sigmoid, p or 1 - p; logit: +/- log-odds);
    w_k = S_k - score(X) (increase of confidence) or S_k; L = ReLU(sum_k w_k A_k).
    No softmax across channels.
    """
    from scipy.ndimage import zoom

    logit_of, acts_of = _reference_submodels(keras_model, layer)
    acts = np.asarray(acts_of(image[None], training=False))[0]
    h, w = image.shape[:2]

    def score(x):
        z = float(np.asarray(logit_of(x[None], training=False)).reshape(-1)[0])
        if space == "logit":
            return z if target == "normal" else -z
        p = 1.0 / (1.0 + np.exp(-np.float64(z)))
        return p if target == "normal" else 1.0 - p

    base = score(image)
    channel_weights = []
    for k in range(acts.shape[-1]):
        up = zoom(acts[..., k].astype(np.float64), (h / acts.shape[0], w / acts.shape[1]), order=1, mode="nearest")
        mask = (up - up.min()) / (up.max() - up.min() + 1e-7)
        s_k = score((image * mask[..., None]).astype(np.float32))
        channel_weights.append(s_k - base if weights == "increase" else s_k)
    cam = np.maximum((acts * np.asarray(channel_weights)).sum(axis=-1), 0)
    return zoom(cam, (h / cam.shape[0], w / cam.shape[1]), order=1), np.asarray(channel_weights)


@pytest.mark.parametrize("space,weights", [("logit", "increase"), ("probability", "increase"),
                                           ("probability", "score"), ("logit", "score")])
def test_scorecam_equals_the_published_formula(cnn, cells, space, weights):
    for target in ("dysplastic", "normal"):
        exp = compute("scorecam", cnn, cells, target, params={"score": space, "weights": weights})
        for i, image in enumerate(cells):
            expected, channel_weights = published_scorecam(cnn.model, "activation_1", image, target, space, weights)
            np.testing.assert_allclose(exp.extras["channel_weights"][i], channel_weights, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(exp.maps[i], expected, rtol=1e-4, atol=1e-5)


def test_scorecam_matches_the_published_formula_on_the_demo_model():
    """r >= 0.999 with the paper's formula on demo cells, both targets, default settings."""
    from core.config import DEMO_DIR, demo_model_path
    from core.model_io import load_model
    from core.preprocess import load_batch

    json_path, weights_path = demo_model_path()
    if not json_path.is_file():
        pytest.skip("the demo model is not bundled")
    loaded = load_model(json_path, weights_path)
    paths = sorted(DEMO_DIR.glob("T[DN]_*.jpg"))[:1] + sorted(DEMO_DIR.glob("TN_*.jpg"))[:1]
    images = load_batch(paths, loaded.description.image_size)
    for target in ("dysplastic", "normal"):
        exp = compute("scorecam", loaded, images, target)
        for i, image in enumerate(images):
            expected, channel_weights = published_scorecam(loaded.model, "activation_3", image, target, "logit",
                                                           "increase")
            r = np.corrcoef(exp.extras["channel_weights"][i], channel_weights)[0, 1]
            assert r >= 0.999, (target, paths[i].name, r)
            if np.ptp(expected) == 0:  # nothing supports the class: both blank
                assert np.ptp(exp.maps[i]) == 0
                continue
            r_map = np.corrcoef(exp.maps[i].ravel(), expected.ravel())[0, 1]
            assert r_map >= 0.999, (target, paths[i].name, r_map)


def test_background_test_replaces_outside_by_the_median_colour(cnn, cells):
    mask = np.zeros((16, 16), bool)
    mask[4:12, 3:13] = True
    exp = compute("background", cnn, cells[:2], "normal", cell_mask=mask)
    masked = exp.extras["masked_images"]
    for i in range(2):
        colour = np.median(cells[i][~mask], axis=0)
        np.testing.assert_allclose(masked[i][~mask], np.broadcast_to(colour, masked[i][~mask].shape), atol=1e-7)
        np.testing.assert_array_equal(masked[i][mask], cells[i][mask])
    p = cnn.score_fn(masked).numpy()
    np.testing.assert_allclose(exp.extras["masked_score"], p, atol=1e-6)
    np.testing.assert_allclose(exp.extras["original_score"], exp.baseline, atol=1e-6)
    with pytest.raises(DisplasiaError):
        compute("background", cnn, cells[:1], "normal")
    with pytest.raises(DisplasiaError):
        compute("background", cnn, cells[:1], "normal", cell_mask=np.zeros((16, 16), bool))


def test_features_projection(cnn):
    many = random_cells(12, 16, seed=5)
    exp = compute("features", cnn, many, "normal", params={"perplexity": 30})
    assert exp.extras["features"].shape == (12, 2 * 2 * 4)
    assert exp.extras["tsne"].shape == (12, 2) and np.isfinite(exp.extras["tsne"]).all()
    assert exp.extras["pca"].shape == (12, 2)
    assert exp.extras["perplexity_used"] == 11.0
    again = compute("features", cnn, many, "normal", params={"perplexity": 30})
    np.testing.assert_array_equal(again.extras["tsne"], exp.extras["tsne"])


def test_feature_maps_cover_every_conv_block_layer(cnn, cells):
    exp = compute("feature_maps", cnn, cells[:2], "normal")
    layers = list(exp.extras["layers"])
    assert layers == list(cnn.description.feature_map_layers)
    acts = exp.extras["activation:activation_1"]
    np.testing.assert_allclose(exp.extras["channel_mean:activation_1"], acts.mean(axis=(1, 2)), rtol=1e-6)
    assert sum(exp.extras[f"activation:{n}"].shape[-1] for n in layers) == 6 * 4


def test_progress_reaches_the_total_and_cancel_stops(cnn, cells):
    seen = []
    compute("occlusion", cnn, cells[:2], "normal", params={"patch": 2}, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1][0] == seen[-1][1] == 2 * 64
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))
    with pytest.raises(Cancelled):
        compute("occlusion", cnn, cells[:1], "normal", params={"patch": 2}, cancel=lambda: True)
    calls = []

    def cancel_after_first_batch():
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(Cancelled):
        get_method("smoothgrad").load().explain(cnn, cells[:1], "normal", samples=10, batch_size=2,
                                                cancel=cancel_after_first_batch)


def test_user_errors_are_one_line_displasia_errors(cnn, cells):
    cases = [
        lambda: compute("nope", cnn, cells),
        lambda: compute("occlusion", cnn, cells, params={"patch": 0}),
        lambda: compute("occlusion", cnn, cells, params={"patch": "five"}),
        lambda: compute("occlusion", cnn, cells, params={"fill": "pink"}),
        lambda: compute("smoothgrad", cnn, cells, params={"samples": 2.5}),
        lambda: compute("smoothgrad", cnn, cells, params={"colour": 1}),
        lambda: compute("gradcam", cnn, cells, params={"layer": "dense"}),
        lambda: compute("saliency", cnn, cells, "abnormal"),
        lambda: compute("saliency", cnn, np.zeros((1, 8, 8, 3), np.float32)),
        lambda: compute("saliency", cnn, cells * 255),
    ]
    for case in cases:
        with pytest.raises(DisplasiaError) as info:
            case()
        assert "\n" not in str(info.value)


def test_cli_strings_are_parsed_and_checked():
    spec = get_method("lime")
    params = spec.validate({"samples": "100", "max_dist": "100", "fill": "GREY"})
    assert params["samples"] == 100 and params["max_dist"] == 100.0 and params["fill"] == "grey"
    assert params["kernel_size"] == 2.0 and params["seed"] == 0
    assert get_method("occlusion").validate({"stride": "none"})["stride"] is None


def test_importing_the_engine_and_cache_does_not_load_tensorflow():
    import subprocess
    import sys

    code = ("import sys, core.explain, core.explain.registry, core.explain.cli, core.cache; "
            "core.explain.METHODS['lime'].validate({'samples': 10}); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("fill", ["mean", "grey", "blur"])
@pytest.mark.parametrize("patch,stride", [(3, None), (2, 1), (5, 3)])
def test_occlusion_on_crops_equals_full_forward_passes(fill, patch, stride):
    """The crop shortcut (recompute only what a patch changes) is exact."""
    from core.explain import occlusion

    model = from_keras(tiny_cnn(24, seed=5))
    images = random_cells(2, 24, seed=8)
    fast = occlusion.explain(model, images, "normal", patch=patch, stride=stride, fill=fill)
    slow = occlusion.explain(model, images, "normal", patch=patch, stride=stride, fill=fill, crops=False)
    np.testing.assert_allclose(fast.extras["window_scores"], slow.extras["window_scores"], atol=2e-6)
    np.testing.assert_allclose(fast.maps, slow.maps, atol=2e-6)


def test_occlusion_crops_are_used_and_exact_on_displasianet():
    from core.architecture import displasianet
    from core.explain import occlusion
    from core.explain._model import handle_for

    model = from_keras(displasianet(seed=2))
    plan = handle_for(model).crop_plan()
    assert plan is not None and plan.jump == (16, 16) and plan.field == (46, 46)
    assert plan.tiles_for(5) == (4, 4) and plan._crop_size((4, 4)) == (94, 94)
    image = random_cells(1, 299, seed=3)
    for score in ("logit", "probability"):
        fast = occlusion.explain(model, image, "dysplastic", patch=40, stride=20, score=score)
        slow = occlusion.explain(model, image, "dysplastic", patch=40, stride=20, score=score, crops=False)
        np.testing.assert_allclose(fast.extras["window_scores"], slow.extras["window_scores"], atol=1e-5)
    # pixels 286..298 are outside every receptive field of the last pooling layer
    edge = occlusion.explain(model, image, "dysplastic", patch=9, fill="grey").extras["window_scores"][0]
    base = occlusion.explain(model, image, "dysplastic", patch=40).extras["baseline_score"][0]
    # windows start every 9 px: those at 288 and 297 touch only ignored pixels, 279 does not
    assert np.all(edge[-2:, :] == base) and np.all(edge[:, -2:] == base)
    assert not np.all(edge[-3, :] == base)


def test_signed_cam_keeps_the_evidence_against_the_class(cnn, cells):
    positive = compute("gradcam", cnn, cells, "normal")
    signed = compute("gradcam", cnn, cells, "normal", params={"evidence": "signed"})
    np.testing.assert_allclose(positive.extras["cam"], np.maximum(signed.extras["cam"], 0), atol=1e-7)
    assert signed.extras["cam"].min() < 0
    dys = compute("gradcam", cnn, cells, "dysplastic", params={"evidence": "signed"})
    np.testing.assert_allclose(dys.maps, -signed.maps, atol=1e-6)


def test_scoring_only_the_used_pixels_is_exact_on_displasianet():
    """DisplasiaNet never sees its bottom/right 13 px: LIME and Score-CAM score 286 x 286 crops."""
    from core.architecture import displasianet
    from core.explain._model import handle_for

    model = from_keras(displasianet(seed=6))
    handle = handle_for(model)
    extent, scorer = handle.used_scorer()
    assert extent == (286, 286)
    images = random_cells(3, 299, seed=2)
    np.testing.assert_allclose(scorer(images[:, :286, :286]).numpy().reshape(-1), handle.p_normal(images), atol=1e-6)
    exp = compute("lime", model, images[:1], "normal", params={"samples": 30})
    labels = exp.extras["labels"][0]
    keep = exp.extras["perturbations"][0, :, :exp.extras["n_segments"][0]].astype(bool)
    from core.explain.lime import hidden_image

    fudged = hidden_image(images[0], labels, "mean")
    full = np.stack([np.where(k[labels][..., None], images[0], fudged) for k in keep[:8]])
    np.testing.assert_allclose(exp.extras["sample_scores"][0, :8], handle.normal_scores(full, "logit"), atol=1e-4)
    prob = compute("lime", model, images[:1], "normal", params={"samples": 30, "score": "probability"})
    np.testing.assert_allclose(prob.extras["sample_scores"][0, :8], handle.p_normal(full), atol=1e-6)


def test_smoothgrad_on_the_used_pixels_equals_the_full_gradient():
    from core.architecture import displasianet
    from core.explain import smoothgrad
    from core.explain._model import handle_for

    model = from_keras(displasianet(seed=7))
    handle = handle_for(model)
    assert handle.crop_plan().used_logit_model is not None
    image = random_cells(1, 299, seed=1)
    noise = smoothgrad.noise_draws(image[0], 3, 0.15, 0)
    fast = handle.abs_gradient_sum(image[0], noise, -1.0)
    full = np.abs(handle.logit_gradients(image[0][None] + noise, -1.0)[0]).sum(axis=0)
    np.testing.assert_allclose(fast, full, rtol=1e-4, atol=1e-6)
    assert np.all(full[286:] == 0) and np.all(full[:, 286:] == 0)


def test_projection_of_too_few_cells_falls_back_to_pca(cnn, cells):
    one = compute("features", cnn, cells[:1], "normal")
    assert one.extras["tsne"].shape == (1, 2) and np.all(one.extras["tsne"] == 0)
    three = compute("features", cnn, cells, "normal")
    np.testing.assert_array_equal(three.extras["tsne"], three.extras["pca"])
    assert three.extras["perplexity_used"] == 0.0


def test_background_mask_is_resized_from_the_original_image_size(cnn, cells):
    """Annotations are in original pixels (e.g. 360 x 363); the mask follows the image resize."""
    big = np.zeros((32, 30), bool)
    big[8:24, 6:24] = True
    exp = compute("background", cnn, cells[:1], "normal", cell_mask=big)
    assert exp.maps.shape == (1, 16, 16)
    np.testing.assert_array_equal(exp.maps[0].astype(bool), big[1::2, np.minimum((np.arange(16) + 0.5) * 30 / 16, 29).astype(int)])
