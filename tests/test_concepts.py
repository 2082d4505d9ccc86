"""TCAV on tiny models with known answers, the paper's formulas by hand, and concept sets."""
from __future__ import annotations

import numpy as np
import pytest

from core.concepts.sets import ConceptSet, ImageSet
from core.concepts.tcav import (
    TcavParams,
    correct,
    directional_derivatives,
    fit_cav,
    layer_features,
    reduce_features,
    run_tcav,
    sentence,
    t_test,
    tcav_score,
)
from core.errors import DisplasiaError

SIZE = 8


def red_model():
    """logit(normal) = 4 * mean(red) - 2: the model depends on the red channel only."""
    import keras

    from core.model_io import from_keras

    inputs = keras.Input((SIZE, SIZE, 3))
    conv = keras.layers.Conv2D(2, 1, use_bias=False, name="conv2d")
    x = keras.layers.Activation("relu", name="activation")(conv(inputs))
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    dense = keras.layers.Dense(1, name="dense")
    out = keras.layers.Activation("sigmoid", name="activation_1")(dense(x))
    model = keras.Model(inputs, out)
    conv.set_weights([np.array([[1, 0], [0, 1], [0, 0]], np.float32).reshape(1, 1, 3, 2)])
    dense.set_weights([np.array([[4.0], [0.0]], np.float32), np.array([-2.0], np.float32)])
    return from_keras(model)


def images(rng, n, red=(0.1, 0.9), green=(0.1, 0.9)):
    x = rng.uniform(0.0, 1.0, (n, SIZE, SIZE, 3)).astype(np.float32) * 0.2
    x[..., 0] += rng.uniform(*red, (n, 1, 1)).astype(np.float32) * 0.8
    x[..., 1] += rng.uniform(*green, (n, 1, 1)).astype(np.float32) * 0.8
    return x


def fixed(name, array):
    return ImageSet(name, f"test:{name}:{array.shape}:{float(array.sum()):.6f}", len(array), lambda: array)


@pytest.fixture(scope="module")
def red_result():
    rng = np.random.default_rng(0)
    concepts = [
        ConceptSet("bright red", "colour", "red channel bright", "dim red", "test",
                   fixed("red+", images(rng, 30, red=(0.7, 0.9))), fixed("red-", images(rng, 30, red=(0.1, 0.3)))),
        ConceptSet("bright green", "colour", "green channel bright", "dim green", "test",
                   fixed("green+", images(rng, 30, green=(0.7, 0.9))),
                   fixed("green-", images(rng, 30, green=(0.1, 0.3)))),
        ConceptSet("random control", "control", "random", "random", "test", fixed("ctl", images(rng, 30))),
        ConceptSet("tiny", "colour", "too few", "other", "test", fixed("t+", images(rng, 4)), fixed("t-", images(rng, 4))),
    ]
    pool = fixed("pool", images(rng, 60))
    inputs = {"dysplastic": fixed("d", images(rng, 20)), "normal": fixed("n", images(rng, 20))}
    params = TcavParams(layers=("activation",), runs=20, seed=0)
    return run_tcav(red_model(), concepts, pool, inputs, params)


def _row(result, concept, target):
    t = result.table
    return t[(t["concept"] == concept) & (t["target"] == target)].iloc[0]


def test_concept_the_model_uses_is_significant_in_the_right_direction(red_result):
    normal = _row(red_result, "bright red", "normal")
    dysplastic = _row(red_result, "bright red", "dysplastic")
    assert normal["status"] == "scored" and normal["accuracy"] > 0.9
    assert normal["score"] == 1.0 and dysplastic["score"] == 0.0
    assert normal["significant"] and dysplastic["significant"]
    assert normal["p_corrected"] < 0.01
    assert "raises the normal logit for 100%" in sentence(normal)


def test_concept_the_model_ignores_is_not_significant(red_result):
    for target in ("normal", "dysplastic"):
        row = _row(red_result, "bright green", target)
        assert row["accuracy"] > 0.9  # the layer sees green perfectly well...
        assert not row["significant"]  # ...but the logit does not use it
        assert row["p"] > 0.05


def test_random_control_is_not_significant_and_small_sets_are_not_scored(red_result):
    for target in ("normal", "dysplastic"):
        assert not _row(red_result, "random control", target)["significant"]
        tiny = _row(red_result, "tiny", target)
        assert tiny["status"] == "too small" and np.isnan(tiny["score"])
        assert "too few cells" in sentence(tiny)
    assert red_result.run_scores.shape == (len(red_result.table), 20)
    assert red_result.ranking("activation", "normal").iloc[0]["concept"] == "bright red"


def test_not_separable_concept_is_reported_not_scored():
    rng = np.random.default_rng(3)
    same = [ConceptSet("noise", "colour", "nothing", "nothing", "test", fixed("a", images(rng, 30)),
                       fixed("b", images(rng, 30)))]
    result = run_tcav(red_model(), same, fixed("pool", images(rng, 40)),
                      {"dysplastic": fixed("d", images(rng, 10)), "normal": fixed("n", images(rng, 10))},
                      TcavParams(layers=("activation",), runs=5, min_accuracy=0.8))
    row = result.table.iloc[0]
    assert row["status"] == "not separable" and np.isnan(row["p"])
    assert "cannot tell noise from nothing" in sentence(row)


def test_gradients_of_the_layer_match_the_hand_derivation():
    # logit = 4 * mean over 64 pixels of relu(red): d logit / d activation = 4/64 on channel 0, 0 on channel 1
    x = images(np.random.default_rng(1), 3)
    g = layer_features(red_model(), x, ("activation",), max_features=1000, gradients=True)["activation"]
    g = g.reshape(3, SIZE, SIZE, 2)
    np.testing.assert_allclose(g[..., 0], 4.0 / 64.0, rtol=1e-6)
    np.testing.assert_allclose(g[..., 1], 0.0, atol=1e-9)


def test_paper_formulas_on_a_hand_worked_example():
    # Two inputs, 2-D layer. CAV v = (0.6, 0.8). S = grad . v: (1*0.6 + 2*0.8, -3*0.6 + 0.5*0.8) = (2.2, -1.4)
    s = directional_derivatives(np.array([[1.0, 2.0], [-3.0, 0.5]]), np.array([0.6, 0.8]))
    np.testing.assert_allclose(s, [2.2, -1.4])
    assert tcav_score(s) == 0.5  # one of two inputs has S > 0
    assert tcav_score(-s) == 0.5  # the dysplastic target negates the logit
    # Holm: sorted p (0.005, 0.01, 0.03, 0.04) x (4, 3, 2, 1) = (0.02, 0.03, 0.06, 0.04) -> monotone (.., 0.06, 0.06)
    np.testing.assert_allclose(correct([0.01, 0.04, 0.03, 0.005], "holm"), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(correct([0.01, 0.5], "bonferroni"), [0.02, 1.0])
    # Welch t by hand: means 0.9 and 0.5, variances 0.01 and 0.01, n = 3 each -> t = 0.4 / sqrt(0.02/3) = 4.899
    t, p = t_test([0.8, 0.9, 1.0], [0.4, 0.5, 0.6])
    assert t == pytest.approx(0.4 / np.sqrt(0.02 / 3))
    assert 0.005 < p < 0.02  # df = 4: two-sided p = 0.008


def test_cav_points_from_contrast_to_concept():
    rng = np.random.default_rng(0)
    pos = rng.normal([3.0, 0.0], 0.3, (20, 2))
    neg = rng.normal([0.0, 0.0], 0.3, (20, 2))
    for classifier in ("logistic", "svm"):
        cav, accuracy = fit_cav(pos, neg, classifier=classifier, seed=1)
        assert accuracy == 1.0 and cav[0] > 0.95 and np.linalg.norm(cav) == pytest.approx(1.0)


def test_pooling_of_large_layers_is_linear_so_derivatives_agree():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(3, 9, 9, 2))
    g = rng.normal(size=(1, 9, 9, 2))
    pooled_a, pooled_g = reduce_features(a, 40), reduce_features(g, 40)
    assert pooled_a.shape == (3, 32)  # 9x9x2 = 162 > 40 -> k = 2 -> 4x4x2
    # moving the pooled features along v = moving the full activations along the up-sampled v / k^2
    v = rng.normal(size=32)
    full_v = np.repeat(np.repeat(v.reshape(4, 4, 2), 2, 0), 2, 1) / 4.0
    full = np.zeros((9, 9, 2))
    full[:8, :8] = full_v
    assert float((pooled_g @ v)[0]) == pytest.approx(float(g.reshape(-1) @ full.reshape(-1)))


def test_bad_settings_are_user_errors():
    with pytest.raises(DisplasiaError, match="at least 2 runs"):
        TcavParams(runs=1).check()
    with pytest.raises(DisplasiaError, match="not a convolution-block layer"):
        run_tcav(red_model(), [], fixed("p", np.zeros((1, SIZE, SIZE, 3), np.float32)), {},
                 TcavParams(layers=("dense",)))


def test_result_round_trips_through_the_cache(tmp_path, red_result):
    from core.cache import ExplanationCache
    from core.concepts.tcav import _from_explanation, _to_explanation

    back = _from_explanation(_to_explanation(red_result), red_result.params)
    assert list(back.table["concept"]) == list(red_result.table["concept"])
    np.testing.assert_allclose(back.table["p"].to_numpy(float), red_result.table["p"].to_numpy(float))
    np.testing.assert_array_equal(back.table["significant"], red_result.table["significant"])
    cache = ExplanationCache(tmp_path)
    cache.put("k" * 64, _to_explanation(red_result))
    assert cache.get("k" * 64) is not None


def test_report_section_has_the_table_sentences_and_figures(red_result):
    from core.concepts.report import concepts_section_html

    text = concepts_section_html(red_result)
    assert text.startswith('<section class="concepts">') and text.endswith("</section>")
    assert "bright red" in text and "raises the normal logit" in text and "too few cells" in text
    assert text.count("data:image/png;base64,") == 2
    assert "No concept analysis" in concepts_section_html(None)


def test_cav_fitted_in_the_span_of_the_cells_equals_the_full_fit():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(5)
    pos, neg = rng.normal(0.3, 1.0, (12, 50)), rng.normal(-0.3, 1.0, (12, 50))
    cav, _ = fit_cav(pos, neg, held_out=0.25, seed=4)  # 18 training rows < 50 features: reduced fit
    # the same split and scaling, fitted directly in all 50 dimensions
    split = np.random.default_rng(4)
    order_p, order_n = split.permutation(12), split.permutation(12)
    x = np.concatenate([pos[order_p[3:]], neg[order_n[3:]]])
    y = np.r_[np.ones(9), np.zeros(9)]
    w = LogisticRegression(C=1.0, max_iter=5000, tol=1e-10).fit(x / np.abs(x).max(), y).coef_[0]
    np.testing.assert_allclose(cav, w / np.linalg.norm(w), atol=2e-3)  # solver tolerance 1e-4


def test_registry_adapter_keeps_the_engine_contract():
    from core.concepts.method import explain

    x = images(np.random.default_rng(9), 4)
    exp = explain(red_model(), x, "normal", layer="activation", cells=10, runs=3)
    assert exp.method == "tcav" and exp.maps.shape == (4, SIZE, SIZE) and not exp.maps.any()
    assert list(exp.extras["concept"])[-1] == "random control" and len(exp.extras["concept"]) == 8
    assert all(exp.extras[k].dtype.kind in "biufU" for k in exp.extras)
    np.testing.assert_allclose(exp.baseline, red_model().score_fn(x).numpy().reshape(-1), rtol=1e-5)


def test_paired_sets_are_split_by_pair():
    # twins: the same cell with and without a concept shift along axis 0; the cells differ a lot
    rng = np.random.default_rng(6)
    base = rng.normal(0.0, 5.0, (30, 200))
    base[:, 0] = 0.0
    shift = np.zeros(200)
    shift[0] = 1.0
    _, apart = fit_cav(base + shift, base - shift, seed=2, paired=True)
    _, leaky = fit_cav(base + shift, base - shift, seed=2, paired=False)
    assert apart == 1.0  # learnt, and it generalises to unseen twins
    assert leaky < 0.5  # held out next to its fitted twin, a cell is judged by the twin's label
    # no concept at all: chance, not below it
    noise = rng.normal(0.0, 0.1, base.shape)
    assert 0.3 <= fit_cav(base + noise, base - noise, seed=2, paired=True)[1] <= 0.7


def test_cli_tcav_writes_table_figures_and_report(tmp_path, tiny_model, capsys):
    from core.cli import main

    tiny_model.save(tmp_path / "tiny.keras")
    out = tmp_path / "out"
    code = main(["concepts", "tcav", "--model", str(tmp_path / "tiny.keras"), "--out", str(out), "--n", "10",
                 "--runs", "3", "--random", "20", "--class-cells", "10", "--concepts", "hypogranular", "drumstick",
                 "--cache", str(tmp_path / "cache")])
    assert code == 0
    import pandas as pd

    table = pd.read_csv(out / "tcav.csv")
    assert set(table["concept"]) == {"hypogranular", "drumstick", "random control"}
    assert table["sentence"].notna().all()
    assert (out / "tcav_dysplastic.png").read_bytes()[:4] == b"\x89PNG"
    assert "<section" in (out / "concepts.html").read_text()
    assert "random control significant in" in capsys.readouterr().out
    assert main(["concepts", "tcav", "--model", str(tmp_path / "tiny.keras"), "--out", str(out),
                 "--concepts", "nonsense"]) == 2
    assert "Unknown concept 'nonsense'" in capsys.readouterr().err


def test_a_dataset_with_one_class_is_scored_for_that_class_only():
    rng = np.random.default_rng(4)
    concepts = [ConceptSet("bright red", "colour", "red", "dim red", "test",
                           fixed("r+", images(rng, 12, red=(0.7, 0.9))), fixed("r-", images(rng, 12, red=(0.1, 0.3))))]
    result = run_tcav(red_model(), concepts, fixed("pool", images(rng, 24)), {"normal": fixed("n", images(rng, 6))},
                      TcavParams(layers=("activation",), runs=3))
    assert set(result.table["target"]) == {"normal"} and result.ranking("activation", "dysplastic").empty
    with pytest.raises(DisplasiaError, match="No labelled cell"):
        run_tcav(red_model(), concepts, fixed("pool", images(rng, 24)), {"normal": fixed("e", images(rng, 0))},
                 TcavParams(layers=("activation",), runs=3))
