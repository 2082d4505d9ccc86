"""The display on real pages (AppTest): Compare explains an empty positive CAM in its tile,
tiles share a scale per family and unit, and the saturation button switches to the logit."""
from __future__ import annotations

from tests.test_app import demo_env, map_pictures, run_page  # noqa: F401  (fixture)


def test_compare_explains_an_empty_positive_cam_and_shares_scales(demo_env):  # noqa: F811
    from core.config import DEMO_DIR
    from core.explain import method_names

    normal = sorted(p.name for p in DEMO_DIR.glob("TN_*.jpg"))[0]
    # LIME is the slow one; a few samples keep the test short without changing what is drawn.
    at = run_page("pages/compare.py", state={"cell": normal, "target": "dysplastic", "lime.samples": 40,
                                             "lime.stability_runs": 1})
    assert not at.exception, at.exception
    captions = [c.value for c in at.caption]
    assert any("Empty: nothing supports 'dysplastic'" in c for c in captions), captions
    shared = [c for c in captions if ", shared with " in c]
    assert shared, "Compare must say which tiles share a scale"
    assert len(map_pictures(at)) == len(method_names(compare=True)) + 1     # every method and the cell
    gradient_cams = [c for c in captions if c.startswith("activation x logit gradient")]
    assert gradient_cams and not [c for c in gradient_cams if "Score-CAM" in c], \
        "score-weighted and gradient-weighted CAMs must not share a scale"
    assert not at.error, [e.value for e in at.error]
