"""How maps are drawn: one zero-centred scale in the map's units, a colour-blind-safe ramp,
flat and negligible maps never stretched, figures cached per map and display options."""
from __future__ import annotations

import numpy as np
import pytest
from skimage.color import rgb2lab

import core.display as cd
from core.display import DisplayOptions, Units, assess, diverging_ramp, scale_for, units_for
from core.errors import DisplasiaError

PROBABILITY = units_for("supports", "perturbation", "normal", space="probability")
LOGIT = units_for("supports", "perturbation", "normal", space="logit")


# ---- scale


@pytest.mark.parametrize("values", [np.array([[-2.0, 1.0], [0.0, 4.0]]), np.array([[0.5, 0.1]]),
                                    np.array([[-3.0, -0.5]])])
def test_default_scale_is_symmetric_around_zero(values):
    scale = scale_for(values, "supports", DisplayOptions())
    assert scale.diverging and scale.low == -scale.high
    assert scale.high == pytest.approx(np.abs(values).max())
    assert scale.fraction(np.array(0.0)) == pytest.approx(0.5), "zero must sit at the white centre"


def test_shared_limit_replaces_the_maps_own_peak():
    scale = scale_for(np.array([[0.1, -0.05]]), "supports", DisplayOptions(), limit=0.8)
    assert (scale.low, scale.high) == (-0.8, 0.8)


def test_positive_only_and_magnitude_and_minmax_scales():
    values = np.array([[-2.0, 1.0]])
    positive = scale_for(values, "supports", DisplayOptions(signed=False))
    assert positive.high == 1.0, "evidence against is left out, not folded into the range"
    magnitude = scale_for(np.array([[0.0, 3.0]]), "magnitude", DisplayOptions())
    assert (magnitude.low, magnitude.high, magnitude.cmap, magnitude.diverging) == (0.0, 3.0, "viridis", False)
    stretched = scale_for(np.array([[1.0, 3.0]]), "supports", DisplayOptions(normalisation="minmax"))
    assert (stretched.low, stretched.high, stretched.diverging) == (1.0, 3.0, False)


def test_percentile_scale_clips_outliers():
    values = np.concatenate([np.full(999, 0.1), [100.0]])
    scale = scale_for(values, "supports", DisplayOptions(normalisation="percentile", percentile=99.0))
    assert scale.high == pytest.approx(0.1)


def test_retired_rainbow_maps_become_auto_and_unknown_ones_are_refused():
    assert DisplayOptions(cmap="jet").cmap == "auto"
    with pytest.raises(DisplasiaError):
        DisplayOptions(cmap="rainbow")


# ---- colour ramp


def test_diverging_ramp_lightness_is_monotone_and_symmetric():
    lab = rgb2lab(diverging_ramp(257)[None])[0]
    lightness = lab[:, 0]
    assert np.all(np.diff(lightness[:129]) > 0), "opposes arm must lighten towards zero"
    assert np.all(np.diff(lightness[128:]) < 0), "supports arm must darken away from zero"
    assert lightness[0] == pytest.approx(lightness[-1], abs=1.0), "both ends equally dark"
    assert lightness[128] > 95


def test_diverging_ramp_is_perceptually_even_and_colour_blind_safe():
    lab = rgb2lab(diverging_ramp(257)[None])[0]
    steps = np.linalg.norm(np.diff(lab, axis=0), axis=1)
    arm = np.r_[steps[:127], steps[129:]]
    assert arm.max() / arm.min() < 1.2, "equal value steps must be about equal colour steps"
    # Red-green colour-blind viewers keep the blue-yellow axis (b*): the arms lie on its two sides.
    assert np.all(lab[:120, 2] < 0) and np.all(lab[137:, 2] > 0)
    # Deuteranopia (Vienot et al. 1999): the two ends stay far apart.
    ends = _deuteranope(diverging_ramp(3)[[0, 2]])
    assert np.linalg.norm(rgb2lab(ends[None])[0][0] - rgb2lab(ends[None])[0][1]) > 40


def _deuteranope(rgb: np.ndarray) -> np.ndarray:
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    to_lms = np.array([[17.8824, 43.5161, 4.11935], [3.45565, 27.1554, 3.86714], [0.0299566, 0.184309, 1.46709]])
    lms = linear @ to_lms.T
    lms[:, 1] = 0.494207 * lms[:, 0] + 1.24827 * lms[:, 2]
    back = np.clip(lms @ np.linalg.inv(to_lms).T, 0, 1)
    return np.where(back <= 0.0031308, 12.92 * back, 1.055 * back ** (1 / 2.4) - 0.055)


def test_plotly_colorscale_ends_and_centre():
    scale = cd.plotly_colorscale("blue-orange", 11)
    assert scale[0][0] == 0 and scale[-1][0] == 1 and scale[5][1] == "rgb(246,246,246)"


# ---- units


def test_units_text_is_in_the_targets_own_units():
    assert PROBABILITY.title == "drop in P(normal) when hidden (probability)"
    assert LOGIT.title == "drop in logit of normal when hidden (log-odds)"
    patch = units_for("supports", "perturbation", "dysplastic", space="probability", region="patch")
    assert patch.effect_text(0.4) == "hiding this patch lowers P(dysplastic) by 0.4"
    assert patch.effect_text(-0.02) == "hiding this patch raises P(dysplastic) by 0.02"
    magnitude = units_for("magnitude", "gradient", "normal")
    assert "same for both classes" in magnitude.title and magnitude.negligible is None


def test_units_follow_the_registry_family_and_the_score_space_of_the_result():
    from core.explain.base import Explanation, Params

    exp = Explanation("occlusion", "dysplastic", np.zeros((1, 4, 4)), np.array([0.3]), Params({"patch": 2}),
                      extras={"score_space": "logit", "baseline_score": np.array([-0.8], np.float32),
                              "window_scores": np.zeros((1, 2, 2), np.float32)})
    units = cd.units_of(exp)
    assert units.quantity == "logit of dysplastic" and units.region == "patch" and units.negligible == cd.NEGLIGIBLE_LOGIT


def test_a_score_map_becomes_the_drop_under_the_one_convention():
    values, sign = cd.to_evidence(np.array([[0.9, 0.5, 0.95]], np.float32), "score", 0.9)
    assert sign == "supports" and values.tolist() == [[0.0, pytest.approx(0.4), pytest.approx(-0.05)]]
    same, kept = cd.to_evidence(np.array([[0.2, -0.1]]), "supports", 0.9)
    assert kept == "supports" and same.tolist() == [[pytest.approx(0.2), pytest.approx(-0.1)]]


# ---- flat and negligible


def test_one_ulp_steps_on_a_saturated_cell_are_flat_never_stretched():
    ulp = float(np.spacing(np.float32(1.0)))
    steps = np.array([[0.0, ulp, 2 * ulp], [0.0, 0.0, ulp]])
    verdict = assess(steps, PROBABILITY, reference=1.0)
    assert verdict.state == "flat" and "not stretched" in verdict.message
    assert "no effect" not in verdict.message or verdict.peak <= verdict.resolution


def test_flat_needs_the_scale_of_the_scores_not_of_the_differences():
    # The same tiny numbers are a real (negligible) signal on a score near 0.001, where
    # float32 resolves 1e-10.
    assert assess(np.array([0.0, 2e-7, 5e-7]), PROBABILITY, reference=1e-3).state == "negligible"


def test_negligible_threshold_and_plain_language_line():
    verdict = assess(np.array([0.0, 5e-5, -2e-5]), PROBABILITY, reference=0.6)
    assert verdict.state == "negligible"
    assert "no patch" not in verdict.message  # region is 'place' here
    assert "changes P(normal) by more than 0.01%" in verdict.message
    assert assess(np.array([0.0, 2e-4]), PROBABILITY, reference=0.6).state == "ok"


def test_negligible_logit_bound_keeps_the_probability_change_under_the_probability_bound():
    assert cd.NEGLIGIBLE_LOGIT / 4 <= cd.NEGLIGIBLE_PROBABILITY
    assert assess(np.array([0.0, 3e-4]), LOGIT, reference=18.0).state == "negligible"
    assert assess(np.array([0.0, 2.0]), LOGIT, reference=18.0).state == "ok"


def test_maps_without_score_units_are_never_negligible_but_can_be_flat():
    cam = units_for("supports", "cam", "normal")
    assert assess(np.array([0.0, 1e-9]), cam).state == "ok"
    assert assess(np.zeros((3, 3)), cam).state == "flat"
    assert assess(np.full((3, 3), 0.3), cam).message.startswith("Flat map: the same value everywhere")


# ---- drawing


def test_overlay_leaves_places_without_effect_untouched():
    rgb = np.full((6, 6, 3), 120, np.uint8)
    values = np.zeros((3, 3), np.float32)
    values[0, 0] = 1.0
    out = cd.overlay(rgb, values, DisplayOptions(), sign="supports")
    assert (out[4:, 4:] == 120).all(), "zero effect must show the cell itself"
    assert not (out[0, 0] == 120).all()
    faint = cd.overlay(rgb, values, DisplayOptions(), sign="supports", faint=True)
    assert np.abs(faint[0, 0].astype(int) - 120).sum() < np.abs(out[0, 0].astype(int) - 120).sum()


def test_supports_is_orange_and_opposes_is_blue():
    rgb = np.full((2, 2, 3), 128, np.uint8)
    out = cd.overlay(rgb, np.array([[1.0, -1.0]], np.float32).repeat(2, 0), DisplayOptions(opacity=1.0))
    supports, opposes = out[0, 0].astype(int), out[0, 1].astype(int)
    assert supports[0] > supports[2] and opposes[2] > opposes[0]


def test_block_mean_grid_for_hover():
    grid = cd.block_mean(np.arange(299 * 299, dtype=np.float32).reshape(299, 299), 50)
    assert grid.shape == (50, 50)
    assert cd.block_mean(np.ones((10, 10)), 50).shape == (10, 10)


def test_figure_cache_key_changes_with_every_display_option_and_with_the_map():
    from ui.display import figure_key

    rgb = np.zeros((8, 8, 3), np.uint8)
    values = np.zeros((4, 4), np.float32)
    base = dict(options=DisplayOptions(), sign="supports", units=PROBABILITY, scale=None, title="", marks={})
    key = figure_key(rgb, values, base)
    for change in (dict(options=DisplayOptions(opacity=0.3)), dict(options=DisplayOptions(cmap="viridis")),
                   dict(options=DisplayOptions(signed=False)), dict(options=DisplayOptions(normalisation="minmax")),
                   dict(units=LOGIT), dict(sign="magnitude"), dict(scale=scale_for(values, "supports", DisplayOptions(), limit=2.0))):
        assert figure_key(rgb, values, base | change) != key, change
    other = values.copy()
    other[0, 0] = 1e-6
    assert figure_key(rgb, other, base) != key
    assert figure_key(rgb, values.copy(), dict(base)) == key


def _picture(values, sign="supports", units=PROBABILITY, **kw):
    from ui.display import build_map_picture

    rgb = kw.pop("rgb", np.random.default_rng(0).integers(0, 255, (363, 360, 3), dtype=np.uint8))
    settings = dict(title="t", colorbar_title="", marks={}, height=430, max_side=299, faint=False, target="normal",
                    compact=False) | kw
    return build_map_picture(rgb, values, DisplayOptions(), sign=sign, units=units,
                             scale=scale_for(values, sign, DisplayOptions()), **settings)


def test_map_picture_sends_one_small_image_not_a_heatmap_of_every_pixel():
    import base64
    import io
    import json

    from PIL import Image

    values = np.random.default_rng(1).normal(size=(299, 299)).astype(np.float32)
    picture = _picture(values)
    assert picture["src"].startswith("data:image/webp;base64,")
    sent = Image.open(io.BytesIO(base64.b64decode(picture["src"].split(",", 1)[1])))
    assert max(sent.size) <= 374                                  # max_side x 1.25, not the 360 x 363 capture
    assert (picture["width"], picture["height"]) == (360, 363)   # hover coordinates in the picture's pixels
    grid = np.asarray(picture["grid"], np.float64)
    assert grid.shape == (50, 50)
    assert np.allclose(grid[0, 0], values[:6, :6].mean(), rtol=1e-3, atol=1e-4)   # block means, 4 figures
    ticks = picture["bar"]["ticks"]
    assert ticks[0][1].endswith("opposes normal") and ticks[0][0] == 0.0
    assert ticks[-1][1].endswith("supports normal") and ticks[-1][0] == 1.0
    assert [t[1] for t in ticks if t[0] == 0.5] == ["0"]          # zero in the middle of a symmetric bar
    assert picture["hover"].endswith("(+ supports normal)")
    assert len(json.dumps(picture)) < 200_000                     # random pixels: WebP's worst case


def test_compact_pictures_have_a_short_bar_below_and_a_coarser_grid():
    values = np.linspace(-1, 1, 299 * 299, dtype=np.float32).reshape(299, 299)
    picture = _picture(values, compact=True, max_side=160, height=270, title="")
    assert picture["bar"]["compact"] and [t[1] for t in picture["bar"]["ticks"]] == ["opposes", "0", "supports"]
    assert np.asarray(picture["grid"]).shape == (25, 25)
    assert picture["box"] == 270 - 34 and picture["bar"]["title"] == ""


def test_marks_are_placed_on_the_bar_at_their_value():
    values = np.linspace(0, 1, 100, dtype=np.float32).reshape(10, 10)
    picture = _picture(values, sign="score", marks={"baseline 0.5": 0.5})
    mark = [t for t in picture["bar"]["ticks"] if t[1].startswith("baseline")]
    assert mark and abs(mark[0][0] - 0.5) < 1e-6
    assert [t[1] for t in picture["bar"]["ticks"] if abs(t[0] - 0.5) < 0.05] == [mark[0][1]]   # not printed over
    assert len(picture["bar"]["ticks"]) == 5                       # four plain ticks and the mark


def test_units_dataclass_is_hashable_for_caches():
    assert hash(Units("a", "b")) == hash(Units("a", "b"))


def test_score_weighted_and_gradient_weighted_cams_never_share_a_scale():
    from core.explain.base import Explanation, Params
    from ui.compare_view import shared_limits
    from ui.explain_view import map_view

    def cam(method, peak, **extras):
        maps = np.zeros((1, 4, 4), np.float32)
        maps[0, 0, 0] = peak
        return Explanation(method, "normal", maps, np.array([0.7]), Params({"evidence": "positive"}), extras=extras)

    from core.explain import method_names

    cams = method_names(family="cam")
    score_weighted = cam(cams[0], 7.0, score_space="logit", baseline_score=np.array([0.8], np.float32))
    gradient_weighted = [cam(m, 0.01 * (i + 1)) for i, m in enumerate(cams[1:3])]
    views = {f"v{i}": map_view(e, DisplayOptions()) for i, e in enumerate([score_weighted, *gradient_weighted])}
    limits = shared_limits(views, DisplayOptions())
    assert sorted(limits.values()) == [pytest.approx(0.02), pytest.approx(7.0)]
    assert shared_limits(views, DisplayOptions(normalisation="minmax")) == {}


def _occlusion(drop, *, space, probability, saturated):
    from core.explain.base import Explanation, Params

    extras = {"score_space": space, "baseline_score": np.array([probability if space == "probability" else 18.0],
                                                                np.float32),
              "saturated": np.array([saturated]), "window_scores": np.zeros((1, 2, 2), np.float32)}
    return Explanation("occlusion", "normal", drop[None], np.array([probability]),
                       Params({"patch": 20, "score": space}), extras=extras)


def test_saturated_probability_map_is_flat_and_says_so_while_the_logit_map_is_drawn():
    from ui.explain_view import map_view

    ulp = float(np.spacing(np.float32(1.0)))
    steps = np.zeros((8, 8), np.float32)
    steps[2:4, 2:4] = ulp
    flat = _occlusion(steps, space="probability", probability=1.0, saturated=True)
    view = map_view(flat, DisplayOptions())
    assert view.assessment.state == "flat" and cd.is_saturated(flat)
    assert view.units.quantity == "P(normal)" and view.units.region == "patch"
    logit = np.zeros((8, 8), np.float32)
    logit[2:4, 2:4] = 2.1
    moved = _occlusion(logit, space="logit", probability=1.0, saturated=False)
    drawn = map_view(moved, DisplayOptions())
    assert drawn.assessment.state == "ok" and drawn.scale.high == pytest.approx(2.1) and not cd.is_saturated(moved)


def test_raw_score_view_uses_its_own_range_and_score_units():
    from ui.explain_view import map_view

    exp = _occlusion(np.zeros((4, 4), np.float32), space="logit", probability=0.9, saturated=False)
    scores = np.array([[2.0, 1.5], [2.2, 2.2]], np.float32)
    view = map_view(exp, DisplayOptions(), values=scores, sign="score")
    assert (view.scale.low, view.scale.high, view.scale.diverging) == (1.5, pytest.approx(2.2), False)
    assert view.units.title == "logit of normal with the patch hidden"


def test_signed_activations_are_not_labelled_as_evidence():
    values = np.array([[-1.0, 2.0], [0.5, 0.0]], np.float32)
    scale = scale_for(values, "magnitude", DisplayOptions())
    assert scale.diverging, "negative activations are drawn on a diverging scale"
    picture = _picture(values, sign="magnitude", units=units_for("magnitude", "activation", "normal"),
                       rgb=np.zeros((4, 4, 3), np.uint8), title="", height=300)
    text = " ".join(t[1] for t in picture["bar"]["ticks"])
    assert "negative" in text and "positive" in text and "supports" not in text
