"""Deletion / insertion and the model-randomisation check on tiny models (16x16 inputs)."""
from __future__ import annotations

import numpy as np
import pytest

from core.datasets import Cell
from core.summary.faithfulness import (
    area_under,
    blurred_copy,
    curves_for,
    perturbed_batch,
    pixel_ranks,
    randomisation_summary,
    randomisation_table,
    randomised_model,
)
from core.summary.study import Study


def test_area_and_ranks():
    assert area_under([1.0, 0.0]) == pytest.approx(0.5)
    assert area_under([0.0, 1.0, 1.0]) == pytest.approx(0.75)
    ranks = pixel_ranks(np.array([[0.1, 0.9], [0.5, 0.0]]))
    assert ranks.tolist() == [[2, 0], [1, 3]]
    flat = pixel_ranks(np.zeros((4, 4)), seed=3)
    assert sorted(flat.ravel().tolist()) == list(range(16))  # ties broken, every rank once


def test_perturbed_batch_removes_and_adds_in_order():
    image = np.ones((2, 2, 3), np.float32)
    fill = np.zeros((2, 2, 3), np.float32)
    ranks = np.array([[0, 1], [2, 3]])
    deletion = perturbed_batch(image, fill, ranks, 4, "deletion")
    insertion = perturbed_batch(image, fill, ranks, 4, "insertion")
    assert deletion.shape == (5, 2, 2, 3)
    assert [float(d.mean()) for d in deletion] == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert [float(d.mean()) for d in insertion] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert deletion[1, 0, 0, 0] == 0.0 and deletion[1, 1, 1, 0] == 1.0  # rank 0 goes first


@pytest.mark.parametrize("tile", [1, 3])
def test_perturbed_batch_equals_the_select_definition(tile):
    """Step k shows ``fill`` (deletion) or the image (insertion) exactly where rank < count_k."""
    rng = np.random.default_rng(5)
    image, fill = rng.random((13, 11, 3), dtype=np.float32), rng.random((13, 11, 3), dtype=np.float32)
    ranks = pixel_ranks(np.round(rng.random((13, 11)), 1), seed=2, tile=tile)  # ties, squares at the edges
    counts = np.round(np.linspace(0, ranks.max() + 1, 8)).astype(int)
    chosen = (ranks[None] < counts[:, None, None])[..., None]
    np.testing.assert_array_equal(perturbed_batch(image, fill, ranks, 7, "deletion"), np.where(chosen, fill, image))
    np.testing.assert_array_equal(perturbed_batch(image, fill, ranks, 7, "insertion"), np.where(chosen, image, fill))
    with pytest.raises(ValueError):
        perturbed_batch(image, fill, ranks, 7, "sideways")


@pytest.fixture(scope="module")
def linear():
    from core.explain.testing import linear_model
    from core.model_io import from_keras

    weights = np.random.default_rng(0).normal(0, 0.15, (16, 16, 3)).astype(np.float32)
    return from_keras(linear_model(weights)), weights


def test_deletion_auc_of_a_perfect_map_beats_a_random_map(linear):
    from core.explain.testing import random_cells

    loaded, weights = linear
    wins = 0
    for image in random_cells(4, 16, seed=5):
        fill = blurred_copy(image, 3.0)
        # For a linear logit, removing pixel p changes it by exactly w_p . (fill_p - x_p):
        # ordering by w . (x - fill) is the best possible deletion order for "normal".
        perfect = (weights * (image - fill)).sum(axis=-1)
        random_map = np.random.default_rng(1).random(perfect.shape)
        good = curves_for(loaded, image, perfect, "normal", steps=16, fill=fill)
        bad = curves_for(loaded, image, random_map, "normal", steps=16, fill=fill)
        assert good["deletion"][0] == pytest.approx(good["insertion"][-1], abs=1e-5)  # both = the intact image
        assert area_under(good["deletion"]) < area_under(bad["deletion"])
        assert area_under(good["insertion"]) > area_under(bad["insertion"])
        # and for the other class the same map is the worst order
        worst = curves_for(loaded, image, perfect, "dysplastic", steps=16, fill=fill)
        assert area_under(worst["deletion"]) > area_under(curves_for(loaded, image, random_map, "dysplastic",
                                                                     steps=16, fill=fill)["deletion"])
        wins += 1
    assert wins == 4


@pytest.fixture(scope="module")
def tiny_study():
    from core.explain.testing import random_cells, tiny_cnn
    from core.model_io import from_keras

    loaded = from_keras(tiny_cnn(16, seed=3))
    images = random_cells(6, 16, seed=2)
    cells = tuple(Cell(path=None, name=f"c{i}.png", label=("normal", "dysplastic")[i % 2], label_source="csv",
                       study_group=None) for i in range(6))
    scores = np.asarray(loaded.score_fn(images)).reshape(-1)
    return Study(root=None, cells=cells, loaded=loaded, images=images, rgbs=[None] * 6, scores=scores,
                 annotations=(None,) * 6, regions=(None,) * 6, truth=(None,) * 6)


def test_randomised_model_changes_only_the_top_layers(tiny_study):
    loaded = tiny_study.loaded
    shuffled = randomised_model(loaded, seed=0)
    assert shuffled.description.content_hash != loaded.description.content_hash
    assert [l.name for l in shuffled.model.layers] == [l.name for l in loaded.model.layers]
    same = lambda name: all(np.array_equal(a, b) for a, b in zip(  # noqa: E731
        loaded.model.get_layer(name).get_weights(), shuffled.model.get_layer(name).get_weights()))
    assert same("conv2d")
    assert not same("conv2d_1") and not same("dense") and not same("dense_1")
    again = randomised_model(loaded, seed=0)
    assert again.description.content_hash == shuffled.description.content_hash  # seeded


def _edges(loaded, images, targets):
    """An edge detector: depends on the image only, never on the model."""
    from scipy.ndimage import sobel

    grey = images.mean(axis=-1)
    return np.hypot(sobel(grey, axis=1), sobel(grey, axis=2))


def test_randomisation_check_separates_a_gradient_method_from_an_edge_detector(tiny_study, tmp_path):
    from core.cache import ExplanationCache

    cache = ExplanationCache(tmp_path)
    table = randomisation_table(tiny_study, {"edges": _edges, "saliency": None, "gradcam": None}, cache=cache)
    summary = randomisation_summary(table).set_index("method")
    assert summary.loc["edges", "spearman_mean"] == pytest.approx(1.0)
    assert summary.loc["saliency", "spearman_mean"] < 0.9
    assert summary.loc["gradcam", "spearman_mean"] < 0.9
    assert summary.loc["saliency", "n"] == 6
    # the trained model's maps and the randomised model's maps are cached under different keys
    assert cache.misses == 4 * 6 and len(cache.entries()) == 4 * 6


def test_square_ranks_remove_whole_squares():
    values = np.zeros((6, 6))
    values[3:6, 0:3] = 1.0  # the bottom-left 3x3 square holds all the attribution
    ranks = pixel_ranks(values, tile=3)
    assert (ranks[3:, :3] == 0).all() and ranks.max() == 3
    assert all(len(np.unique(ranks[y:y + 3, x:x + 3])) == 1 for y in (0, 3) for x in (0, 3))
    batch = perturbed_batch(np.ones((6, 6, 3), np.float32), np.zeros((6, 6, 3), np.float32), ranks, 4, "deletion")
    assert batch[1, 3:, :3].max() == 0.0 and batch[1].mean() == pytest.approx(0.75)
    edge = pixel_ranks(np.random.default_rng(0).random((7, 7)), tile=3)  # partial squares at the edges
    assert edge.max() == 8


def test_curves_are_cached_under_their_own_key(linear, tmp_path):
    from core.cache import ExplanationCache
    from core.explain.testing import random_cells

    loaded, weights = linear
    image = random_cells(1, 16, seed=9)[0]
    values = np.random.default_rng(2).random((16, 16))
    cache = ExplanationCache(tmp_path)
    first = curves_for(loaded, image, values, "normal", steps=5, cache=cache)
    again = curves_for(loaded, image, values, "normal", steps=5, cache=cache)
    assert cache.misses == 1 and cache.hits == 1
    assert np.array_equal(first["deletion"], again["deletion"])
    assert np.allclose(first["insertion"], curves_for(loaded, image, values, "normal", steps=5)["insertion"])
    curves_for(loaded, image, values[::-1], "normal", steps=5, cache=cache)   # another map
    curves_for(loaded, image, values, "dysplastic", steps=5, cache=cache)     # another class
    curves_for(loaded, image, values, "normal", steps=5, tile=2, cache=cache)  # other squares
    assert cache.misses == 4


def test_curves_in_both_score_spaces_agree_through_the_sigmoid(linear):
    from core.explain.testing import random_cells

    loaded, weights = linear
    image = random_cells(1, 16, seed=9)[0]
    values = np.random.default_rng(3).random((16, 16))
    logit = curves_for(loaded, image, values, "normal", steps=8, score="logit")
    prob = curves_for(loaded, image, values, "normal", steps=8, score="probability")
    for name in ("deletion", "insertion"):
        np.testing.assert_allclose(1 / (1 + np.exp(-logit[name])), prob[name], atol=1e-5)


def test_gain_over_random_and_bootstrap_intervals_by_hand():
    import pandas as pd

    from core.summary.faithfulness import faithfulness_summary, faithfulness_table

    rows = []
    for cell, (method_del, random_del) in enumerate([(0.2, 0.5), (0.3, 0.4), (0.6, 0.5)]):
        for method, value in (("m", method_del), ("random", random_del)):
            for curve in ("deletion", "insertion"):
                level = value if curve == "deletion" else 1 - value
                rows += [{"name": f"c{cell}", "group": "normal", "label": "normal", "target": "normal",
                          "method": method, "curve": curve, "step": s, "fraction": s / 1, "score": level,
                          "space": "logit"} for s in (0, 1)]
    table = faithfulness_table(pd.DataFrame(rows))
    gains = table[table["method"] == "m"]["deletion_gain"].to_numpy()
    np.testing.assert_allclose(gains, [0.3, 0.1, -0.1], atol=1e-9)  # random's AUC minus the method's
    summary = faithfulness_summary(table)
    row = summary[(summary["method"] == "m") & (summary["label"] == "all")].iloc[0]
    assert row["deletion_gain"] == pytest.approx(0.1)
    assert row["deletion_gain_lo"] <= row["deletion_gain"] <= row["deletion_gain_hi"]
    assert row["deletion_gain_lo"] >= -0.1 - 1e-9 and row["deletion_gain_hi"] <= 0.3 + 1e-9
    assert row["deletion_gain_hi"] - row["deletion_gain_lo"] > 0.05  # three cells that disagree: a wide interval


def test_randomisation_summary_has_an_interval_for_the_signed_correlation():
    import pandas as pd

    table = pd.DataFrame({"name": list("abcd"), "method": ["m"] * 4, "spearman": [0.1, 0.2, 0.3, 0.4],
                          "spearman_abs": [0.5] * 4})
    out = randomisation_summary(table).iloc[0]
    assert out["spearman_mean"] == pytest.approx(0.25)
    assert 0.1 <= out["spearman_lo"] < 0.25 < out["spearman_hi"] <= 0.4
