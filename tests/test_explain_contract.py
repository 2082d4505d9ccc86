"""Contract: every registered method, same inputs, both targets, two output heads."""
from __future__ import annotations

import numpy as np
import pytest

from core.explain import METHODS, Explanation, Params, compute
from core.explain.testing import random_cells, tiny_cnn
from core.model_io import from_keras

#: Small settings so that the whole registry runs in seconds on 16x16 inputs.
QUICK = {"occlusion": {"patch": 4}, "lime": {"samples": 40, "max_dist": 5}, "smoothgrad": {"samples": 4},
         "features": {"perplexity": 2}}


@pytest.fixture(scope="module", params=["sigmoid", "softmax2"])
def model(request):
    return from_keras(tiny_cnn(16, seed=2, softmax=request.param == "softmax2"))


@pytest.fixture(scope="module")
def images():
    cells = random_cells(4, 16, seed=3)
    cells[3] = 0.0  # an all-black image must not break any method
    return cells


@pytest.fixture(scope="module")
def mask():
    m = np.zeros((16, 16), bool)
    m[3:13, 3:13] = True
    return m


def run(name, model, images, target, mask):
    return compute(name, model, images, target, params=QUICK.get(name), cell_mask=mask if METHODS[name].needs_mask else None)


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_keeps_the_contract(name, model, images, mask):
    results = {}
    for target in ("dysplastic", "normal"):
        exp = run(name, model, images, target, mask)
        assert isinstance(exp, Explanation)
        assert exp.method == name and exp.target == target
        assert exp.maps.shape == (len(images), 16, 16) and exp.maps.dtype == np.float32
        assert np.isfinite(exp.maps).all()
        assert exp.baseline.shape == (len(images),) and exp.baseline.dtype == np.float32
        assert isinstance(exp.params, Params) and hash(exp.params) == hash(exp.params)
        assert set(exp.params) <= {p.name for p in METHODS[name].params}
        for key, value in exp.extras.items():
            if isinstance(value, np.ndarray):
                assert value.dtype.kind in "biufU", key
                if value.dtype.kind == "f":
                    assert not np.isinf(value).any(), key
        results[target] = exp
    dys, nor = results["dysplastic"], results["normal"]
    # the target flips the class: P(dysplastic) + P(normal) = 1
    np.testing.assert_allclose(dys.baseline + nor.baseline, 1.0, atol=1e-6)
    p = model.score_fn(images).numpy().reshape(-1)
    np.testing.assert_allclose(nor.baseline, p, atol=1e-6)
    if name == "occlusion":
        np.testing.assert_allclose(dys.maps + nor.maps, 1.0, atol=1e-5)
    elif name == "lime":
        np.testing.assert_allclose(dys.maps, -nor.maps, atol=1e-6)
    elif name in ("saliency", "smoothgrad", "feature_maps", "features", "background"):
        np.testing.assert_allclose(dys.maps, nor.maps, atol=1e-6)  # target-free maps (|gradient|, activations)
    elif name == "gradcam":
        np.testing.assert_allclose(dys.extras["channel_weights"], -nor.extras["channel_weights"], atol=1e-6)
    elif name == "gradcam_pp":
        # relu(g) keeps different channels for the two classes
        assert not np.allclose(dys.extras["channel_weights"][:3], nor.extras["channel_weights"][:3])
    elif name == "scorecam":
        assert not np.allclose(dys.extras["channel_weights"][:3], nor.extras["channel_weights"][:3])


def test_the_study_setup_gives_non_constant_maps_for_both_targets():
    """On DisplasiaNet-sized input every method varies over the cell (no blank Score-CAM)."""
    from core.architecture import displasianet

    model = from_keras(displasianet(seed=4))
    image = random_cells(1, 299, seed=6)
    mask = np.zeros((299, 299), bool)
    mask[80:220, 80:220] = True
    quick = {"occlusion": {"patch": 40}, "lime": {"samples": 60}, "smoothgrad": {"samples": 4}}
    for name in METHODS:
        if METHODS[name].kind == "dataset" or name == "background":
            continue
        for target in ("dysplastic", "normal"):
            exp = compute(name, model, image, target, params=quick.get(name))
            assert np.ptp(exp.maps[0]) > 0, (name, target)


def _demo_cells():
    from core.config import DEMO_DIR, demo_model_path

    json_path, _ = demo_model_path()
    if not json_path.is_file() or not DEMO_DIR.is_dir():
        return None
    images = sorted(DEMO_DIR.glob("*.jpg"))
    dysplastic = [p for p in images if p.name[:2] in ("TD", "ZD")]
    normal = [p for p in images if p.name[:2] in ("TN", "ZN")]
    return (dysplastic[:1] + normal[:1]) if dysplastic and normal else None


@pytest.mark.skipif(_demo_cells() is None, reason="the demo model and cells are not bundled yet")
def test_demo_model_gives_non_constant_maps_for_a_dysplastic_and_a_normal_cell():
    """Every method, both targets, varies over a real demo cell; Score-CAM is never blank.

    Grad-CAM's final ReLU (the paper's definition, kept as the default) legitimately blanks
    the map of a class nothing in the cell supports (e.g. "dysplastic" on a confidently
    normal cell); the signed map must then vary and be <= 0 everywhere.
    """
    from core.config import demo_model_path
    from core.model_io import load_model
    from core.preprocess import load_batch

    loaded = load_model(*demo_model_path())
    cells = _demo_cells()
    images = load_batch(cells, loaded.description.image_size)
    quick = {"occlusion": {"patch": 20}, "lime": {"samples": 100}, "smoothgrad": {"samples": 8}}
    for name in METHODS:
        if METHODS[name].kind == "dataset" or METHODS[name].needs_mask:
            continue
        for target in ("dysplastic", "normal"):
            exp = compute(name, loaded, images, target, params=quick.get(name))
            signed = None
            if name in ("gradcam", "gradcam_pp", "scorecam"):
                signed = compute(name, loaded, images, target, params={"evidence": "signed"}).maps
            for i, cell in enumerate(cells):
                if signed is not None:
                    assert np.ptp(signed[i]) > 0, (name, target, cell.name)
                if name in ("gradcam", "gradcam_pp") and np.ptp(exp.maps[i]) == 0:
                    assert signed[i].max() <= 1e-6, (name, target, cell.name)
                    continue
                assert np.ptp(exp.maps[i]) > 0, (name, target, cell.name)
