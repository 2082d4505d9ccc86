"""Prediction equals a plain Keras call with nearest resizing, whatever the batch size."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.datasets import scan_dataset
from core.errors import DisplasiaError
from core.model_io import from_keras
from core.predict import label_of, predict_cells, predict_files, predict_scores


@pytest.fixture(scope="module")
def loaded(tiny_model):
    return from_keras(tiny_model)


@pytest.fixture
def cell_files(tmp_path):
    rng = np.random.default_rng(3)
    paths = []
    for i, prefix in enumerate(["TN", "TD", "WN", "ZD", "XX", "TN", "TD"]):
        path = tmp_path / f"{prefix}_SNE_{i}.jpg"
        Image.fromarray(rng.integers(0, 256, (36, 40, 3), dtype=np.uint8)).save(path, quality=85)
        paths.append(path)
    return paths


def test_matches_plain_keras_to_1e5(loaded, tiny_model, cell_files):
    import keras

    x = np.stack([keras.utils.img_to_array(keras.utils.load_img(p, target_size=(16, 16), interpolation="nearest")) / 255.0
                  for p in cell_files])
    reference = tiny_model.predict(x, verbose=0)[:, 0]
    np.testing.assert_allclose(predict_files(loaded, cell_files), reference, atol=1e-5)
    for batch_size in (1, 3, 64):
        np.testing.assert_allclose(predict_files(loaded, cell_files, batch_size=batch_size), reference, atol=1e-5)
        np.testing.assert_allclose(predict_scores(loaded, x.astype(np.float32), batch_size=batch_size), reference, atol=1e-5)


def test_threshold_and_agreement(loaded, cell_files, tmp_path):
    assert label_of(0.978, 0.979) == "dysplastic" and label_of(0.979, 0.979) == "normal"
    cells = scan_dataset(tmp_path).cells
    progress = []
    for threshold in (0.01, 0.99):
        preds = predict_cells(loaded, cells, threshold=threshold, batch_size=2, progress=lambda d, t: progress.append((d, t)))
        for p in preds:
            assert p.prediction == ("dysplastic" if p.score < threshold else "normal")
            assert p.agrees == (None if p.label is None else p.prediction == p.label)
    assert progress[-1] == (7, 7)
    with pytest.raises(DisplasiaError, match="outside"):
        predict_cells(loaded, cells, threshold=1.5)


def test_wrong_input_shape_is_a_clear_error(loaded):
    with pytest.raises(DisplasiaError, match="do not fit the model input"):
        predict_scores(loaded, np.zeros((1, 8, 8, 3), np.float32))
