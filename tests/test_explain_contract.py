"""Contract: every registered method, same inputs, both targets, two output heads."""
from __future__ import annotations

import numpy as np
import pytest

from core.explain import METHODS, Explanation, Params, compute
from core.explain.testing import random_cells, tiny_cnn
from core.model_io import from_keras

#: Small settings so that the whole registry runs in seconds on 16x16 inputs (methods not
#: listed run with their defaults, so a new method is covered without an edit here).
QUICK = {"occlusion": {"patch": 4}, "lime": {"samples": 40, "max_dist": 5}, "smoothgrad": {"samples": 4},
         "features": {"perplexity": 2}, "tcav": {"cells": 4, "runs": 2}}


def quick(name, **extra):
    """Small settings; CAM-family maps signed so that the target visibly matters."""
    params = dict(QUICK.get(name, {}))
    if "evidence" in {p.name for p in METHODS[name].params}:
        params["evidence"] = "signed"
    return {**params, **extra}


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


def run(name, model, images, target, mask, **extra):
    return compute(name, model, images, target, params=quick(name, **extra),
                   cell_mask=mask if METHODS[name].needs_mask else None)


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
    spec = METHODS[name]
    assert exp.version == spec.version
    check_sign(spec.sign_for(exp.params), dys, nor)
    if spec.signed_param is not None:  # the signed form of a magnitude method: the target matters
        signed = {t: run(name, model, images, t, mask, **{spec.signed_param: "yes"}) for t in ("dysplastic", "normal")}
        assert spec.sign_for(signed["normal"].params) == "supports"
        check_sign("supports", signed["dysplastic"], signed["normal"])


def check_sign(sign, dys, nor):
    if sign == "score":  # P(target) with the place hidden: the two targets sum to 1
        np.testing.assert_allclose(dys.maps + nor.maps, 1.0, atol=1e-5)
    elif sign == "magnitude":  # no direction: the class cannot change the map
        np.testing.assert_allclose(dys.maps, nor.maps, atol=1e-6)
    else:  # "supports": evidence for one class is evidence against the other
        assert not np.allclose(dys.maps[:3], nor.maps[:3], atol=1e-9), "the target must change the map"


@pytest.mark.parametrize("name", [n for n, spec in METHODS.items() if "score" in {p.name for p in spec.params}])
def test_score_space_methods_say_which_space_and_whether_saturated(name, model, images, mask):
    """Perturbation methods report the space, the baseline in it and the saturation flag."""
    for space in ("logit", "probability"):
        exp = run(name, model, images, "normal", mask, score=space)
        assert exp.extras["score_space"] == space and exp.params["score"] == space
        assert exp.extras["baseline_score"].shape == (len(images),)
        assert exp.extras["saturated"].dtype == bool and exp.extras["saturated"].shape == (len(images),)
        if space == "probability":
            np.testing.assert_allclose(exp.extras["baseline_score"], exp.baseline, atol=1e-6)


def test_every_method_declares_what_consumers_need():
    """Pages, Compare, precompute, the summary and the README read these fields; nothing else."""
    from core.explain.registry import SIGNS
    from ui.page_list import PAGES

    scripts = {p.script for p in PAGES}
    for spec in METHODS.values():
        assert spec.title and spec.summary and spec.family, spec.name
        assert spec.version >= 1 and spec.sign in SIGNS, spec.name
        assert callable(getattr(spec.load(), "explain", None)), spec.name
        assert spec.page in scripts, (spec.name, spec.page)
        if spec.compare or spec.localisation:
            assert spec.per_cell and spec.reference, spec.name
        if spec.precompute:
            assert not spec.needs_mask, spec.name
        if spec.empty_positive_ok:
            assert "evidence" in {p.name for p in spec.params}, spec.name
        for p in spec.params:
            assert p.help and p.kind in ("int", "float", "choice", "layer"), (spec.name, p.name)
            assert p.coerce(p.default, spec.name) == p.default or p.optional, (spec.name, p.name)


def test_readme_method_table_is_the_registry():
    """Generated, never hand-edited: ``python -m core methods --update-readme`` rewrites it."""
    from core.config import REPO_ROOT
    from core.explain.cli import README_TABLE, methods_markdown

    block = README_TABLE[0] + methods_markdown() + README_TABLE[1]
    assert block in (REPO_ROOT / "README.md").read_text(encoding="utf-8"), "run: python -m core methods --update-readme"


def test_the_study_setup_gives_non_constant_maps_for_both_targets():
    """On DisplasiaNet-sized input every method varies over the cell (no blank Score-CAM)."""
    from core.architecture import displasianet

    model = from_keras(displasianet(seed=4))
    image = random_cells(1, 299, seed=6)
    mask = np.zeros((299, 299), bool)
    mask[80:220, 80:220] = True
    settings = {"occlusion": {"patch": 40}, "lime": {"samples": 60}, "smoothgrad": {"samples": 4}}
    for name in METHODS:
        if not METHODS[name].per_cell:
            continue
        for target in ("dysplastic", "normal"):
            exp = compute(name, model, image, target, params=settings.get(name))
            if METHODS[name].empty_positive_ok and np.ptp(exp.maps[0]) == 0:
                # published CAMs end in a ReLU: blank when nothing supports the class; signed must vary
                signed = compute(name, model, image, target, params={"evidence": "signed"}).maps[0]
                assert np.ptp(signed) > 0 and signed.max() <= 1e-6, (name, target)
                continue
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

    A CAM's final ReLU (the papers' definition, kept as the default) legitimately blanks
    the map of a class nothing in the cell supports (e.g. "dysplastic" on a confidently
    normal cell); the signed map must then vary and be <= 0 everywhere.
    """
    from core.config import demo_model_path
    from core.model_io import load_model
    from core.preprocess import load_batch

    loaded = load_model(*demo_model_path())
    cells = _demo_cells()
    images = load_batch(cells, loaded.description.image_size)
    settings = {"occlusion": {"patch": 20}, "lime": {"samples": 100}, "smoothgrad": {"samples": 8}}
    for name in METHODS:
        spec = METHODS[name]
        if not spec.per_cell:
            continue
        for target in ("dysplastic", "normal"):
            exp = compute(name, loaded, images, target, params=settings.get(name))
            signed = None
            if spec.empty_positive_ok:
                signed = compute(name, loaded, images, target, params={"evidence": "signed"}).maps
            for i, cell in enumerate(cells):
                if signed is not None:
                    assert np.ptp(signed[i]) > 0, (name, target, cell.name)
                if spec.empty_positive_ok and np.ptp(exp.maps[i]) == 0:
                    assert signed[i].max() <= 1e-6, (name, target, cell.name)
                    continue
                assert np.ptp(exp.maps[i]) > 0, (name, target, cell.name)
