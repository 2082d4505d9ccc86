"""Concept sweeps on a tiny model whose logit is a known function of the pixels; the CLI."""
from __future__ import annotations

import numpy as np
import pytest

from core.concepts import sweeps
from core.errors import DisplasiaError
from core.synth import cell_features

SIZE = 64


def green_model():
    """logit(normal) = 45 - 60 * mean(green): granules and the granular tint absorb green,
    so more granules should raise the logit."""
    import keras

    from core.model_io import from_keras

    inputs = keras.Input((SIZE, SIZE, 3))
    conv = keras.layers.Conv2D(1, 1, name="conv2d")
    x = keras.layers.Activation("relu", name="activation")(conv(inputs))
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    dense = keras.layers.Dense(1, name="dense")
    out = keras.layers.Activation("sigmoid", name="activation_1")(dense(x))
    model = keras.Model(inputs, out)
    conv.set_weights([np.array([0.0, 1.0, 0.0], np.float32).reshape(1, 1, 3, 1), np.zeros(1, np.float32)])
    dense.set_weights([np.array([[-60.0]], np.float32), np.array([45.0], np.float32)])
    return from_keras(model)


@pytest.fixture(scope="module")
def loaded():
    return green_model()


@pytest.fixture(scope="module")
def result(loaded):
    cells = [cell_features(3, i, "normal") for i in range(3)]
    return sweeps.sweep(loaded, cells, "granule_density", values=(0.0, 0.3, 0.6, 0.9, 1.2), thumbnail=32)


def test_sweep_scores_are_the_models_logit_of_the_rendered_steps(loaded, result):
    from core.preprocess import to_model_input
    from core.synth import render_cell

    assert result.logit.shape == (3, 5) and result.thumbnails.shape == (5, 32, 32, 3)
    step = sweeps.vary(cell_features(3, 1, "normal"), "granule_density", 0.6)
    image = to_model_input(render_cell(step).rgb, (SIZE, SIZE), "nearest")
    expected = 45.0 - 60.0 * image[..., 1].mean()
    assert result.logit[1, 2] == pytest.approx(expected, abs=3e-4)
    np.testing.assert_allclose(result.probability, 1 / (1 + np.exp(-result.logit)), rtol=1e-9)


def test_granule_density_raises_a_green_absorbing_logit(result):
    # at 64 x 64 px single granules are sampled or missed by the nearest resize, so each curve is
    # noisy step to step; the mean over cells is not
    mean, low, high = result.band("logit")
    assert mean[-1] > mean[0]
    assert result.monotone(tolerance=1.0).all()
    assert (low <= mean).all() and (mean <= high).all()
    assert "rises" in sweeps.describe_sweep(result)


def test_sweep_goes_through_the_cache(tmp_path, loaded, result):
    from core.cache import ExplanationCache

    cache = ExplanationCache(tmp_path)
    cells = [cell_features(3, i, "normal") for i in range(3)]
    first = sweeps.sweep(loaded, cells, "granule_density", values=(0.0, 0.3, 0.6, 0.9, 1.2), thumbnail=32,
                         cache=cache)
    again = sweeps.sweep(loaded, cells, "granule_density", values=(0.0, 0.3, 0.6, 0.9, 1.2), thumbnail=32,
                         cache=cache)
    assert not first.from_cache and again.from_cache
    np.testing.assert_allclose(again.logit, result.logit)


def test_lobe_sweep_sets_the_nucleus_shape_and_unknown_features_are_refused():
    f = cell_features(1, 0, "normal")
    assert [sweeps.vary(f, "lobe_count", k).nucleus_shape for k in (1, 2, 4, 6)] == [
        "round", "dumbbell", "segmented", "hypersegmented"]
    assert sweeps.vary(f, "drumstick", 1).drumstick is True
    with pytest.raises(DisplasiaError, match="Cannot sweep"):
        sweeps.vary(f, "colour", 1)


def test_twin_of_a_demo_cell_comes_from_its_ground_truth():
    from core.config import DEMO_DIR

    image = sorted(DEMO_DIR.glob("TN_*.jpg"))[0]
    twin = sweeps.twin_features(image)
    assert twin is not None and twin.kind == "normal"
    assert sweeps.twin_features(DEMO_DIR / "missing.jpg") is None


def test_cli_writes_csv_and_png_and_refuses_a_bad_feature(tmp_path, loaded, capsys):
    from core.cli import main

    model_path = tmp_path / "tiny.keras"
    loaded.model.save(model_path)
    out = tmp_path / "out"
    code = main(["concepts", "sweep", "--model", str(model_path), "--cells", "2", "--out", str(out), "--no-cache"])
    assert code == 0
    csv = (out / "sweep_granule_density.csv").read_text()
    assert csv.startswith("cell,feature,value,p_normal,logit_normal") and len(csv.splitlines()) == 1 + 2 * 14
    assert (out / "sweep_granule_density.png").read_bytes()[:4] == b"\x89PNG"
    assert "monotone logit" in capsys.readouterr().out
    assert main(["concepts", "sweep", "--model", str(model_path), "--feature", "colour", "--out", str(out)]) == 2
    assert "error: Cannot sweep 'colour'" in capsys.readouterr().err
