"""The sign convention, tested where it matters: deleting a map's top evidence lowers the target.

For every per-cell method whose map claims direction ("+ supports the explained class",
derived from the registry with the summary's signed settings), on the demo model and two
demo cells of each class, for each target: replacing the 5 % of the image with the
highest attribution by a blurred copy lowers the target's log-odds more than replacing
the same amount at random places (mean of 5 random draws), on average over the cells. A
map drawn with the wrong sign, or one that shows image structure rather than the model's
evidence, fails.

Both are deleted in the same unit, 13 x 13 px squares ranked by their mean attribution
(region perturbation, ``core.summary.faithfulness.pixel_ranks``): scattered single pixels
leave a speckle that the demo model reads as granules, which would compare blocky maps
with a different perturbation. CAMs are ranked on their signed map (the ReLU leaves ties).

Measured on the demo model of generator 4.0 (retrained 2026-11-30, content hash
604fb5c3b288): for the normal target every directed method has it but SmoothGrad (mean gain
-0.20 log-odds); for the dysplastic target only occlusion, XGrad-CAM and LayerCAM have it,
while saliency (-1.28), SmoothGrad (-1.05), LIME (-0.13), Grad-CAM (-0.01), Grad-CAM++ (-2.08)
and Score-CAM (-1.93) do not. Those are the expected failures below (non-strict: the
generator-2.0 demo model failed other cases, see docs/EVIDENCE.md; the list is a measurement
of one model, not a property of the methods).
"""
from __future__ import annotations

import numpy as np
import pytest

from core.explain import compute, get_method, method_names
from core.summary.maps import attribution, summary_params

FRACTION = 0.05
RANDOM_DRAWS = 5
TILE = 13
#: Quicker settings that keep each method's character (LIME without its extra stability runs).
QUICK = {"lime": {"stability_runs": 1}, "smoothgrad": {"samples": 16}}
#: Measured exceptions on the demo model (see the module docstring): method -> targets.
UNFAITHFUL_ON_DEMO = {**{name: ("dysplastic",) for name in ("saliency", "lime", "gradcam", "gradcam_pp", "scorecam")},
                      "smoothgrad": ("dysplastic", "normal")}


def directed_methods() -> list:
    """Per-cell methods whose (summary) map says "+ supports the class"."""
    names = []
    for name in method_names(kind="image", needs_mask=False):
        spec = get_method(name)
        if spec.sign_for(summary_params(name)) == "supports":
            names.append(name)
    return names


def _params(name):
    params = summary_params(name, QUICK.get(name))
    if "evidence" in {p.name for p in get_method(name).params}:
        params["evidence"] = "signed"  # rank every pixel, not only the ReLU's survivors
    return params


@pytest.fixture(scope="module")
def demo():
    from core.config import DEMO_DIR, demo_model_path
    from core.model_io import load_model
    from core.preprocess import load_batch

    json_path, weights_path = demo_model_path()
    if not json_path.is_file() or not DEMO_DIR.is_dir():
        pytest.skip("the demo model and cells are not bundled")
    loaded = load_model(json_path, weights_path)
    paths = sorted(DEMO_DIR.glob("TD_*.jpg"))[:2] + sorted(DEMO_DIR.glob("TN_*.jpg"))[:2]
    return loaded, load_batch(paths, loaded.description.image_size), [p.name for p in paths]


def test_the_directed_methods_are_the_registry_s():
    names = directed_methods()
    assert {"occlusion", "lime", "saliency", "smoothgrad", "gradcam", "scorecam"} <= set(names)
    assert "feature_maps" not in names  # activations make no claim about a class


def _cases():
    for name in directed_methods():
        for target in ("dysplastic", "normal"):
            marks = ()
            if target in UNFAITHFUL_ON_DEMO.get(name, ()):
                marks = pytest.mark.xfail(reason="measured: no better than random on the demo model", strict=False)
            yield pytest.param(name, target, marks=marks, id=f"{name}-{target}")


@pytest.mark.parametrize("name,target", list(_cases()))
def test_deleting_top_evidence_lowers_the_target_more_than_random_places(demo, name, target):
    from core.summary.faithfulness import blurred_copy, pixel_ranks, target_scores

    loaded, images, names = demo
    results = []
    for i, image in enumerate(images):
        fill = blurred_copy(image)
        squares = int(pixel_ranks(np.zeros(image.shape[:2]), tile=TILE).max()) + 1
        count = int(round(FRACTION * squares))
        randoms = [pixel_ranks(np.random.default_rng([i, d]).random(image.shape[:2]), tile=TILE)
                   for d in range(RANDOM_DRAWS)]
        params = _params(name)
        exp = compute(name, loaded, image[None], target, params=params)
        values = attribution(name, exp.maps, exp.baseline, params)[0]
        batch = [np.where((ranks < count)[..., None], fill, image)
                 for ranks in [pixel_ranks(values, tile=TILE)] + randoms]
        scores = target_scores(loaded, np.stack([image] + batch), target, "logit")
        drop_top = scores[0] - scores[1]
        drop_random = float(np.mean(scores[0] - scores[2:]))
        results.append((names[i], target, round(float(drop_top), 3), round(drop_random, 3)))
    gain = float(np.mean([r[2] - r[3] for r in results]))
    assert gain > 0, f"{name}, {target}: mean gain {gain:.3f}; (cell, target, top-evidence drop, random drop) {results}"
