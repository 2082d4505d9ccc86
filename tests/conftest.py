"""Shared fixtures: tiny Keras models in every file format, written to a temp folder."""
from __future__ import annotations

import numpy as np
import pytest

TINY = (16, 16, 3)


def tiny_cnn(seed: int = 0, head: str = "sigmoid"):
    """A DisplasiaNet-shaped functional model on 16x16 inputs (conv, ReLU, pool, dense)."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=TINY, name="input")
    x = keras.layers.Conv2D(4, 3, name="conv2d")(inputs)
    x = keras.layers.Activation("relu", name="activation")(x)
    x = keras.layers.MaxPooling2D(2, name="max_pooling2d")(x)
    x = keras.layers.Conv2D(4, 3, name="conv2d_1")(x)
    x = keras.layers.Activation("relu", name="activation_1")(x)
    x = keras.layers.MaxPooling2D(2, name="max_pooling2d_1")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(8, name="dense")(x)
    x = keras.layers.Activation("relu", name="activation_2")(x)
    x = keras.layers.Dropout(0.5, name="dropout")(x)
    if head == "sigmoid":
        x = keras.layers.Dense(1, name="dense_1")(x)
        outputs = keras.layers.Activation("sigmoid", name="activation_3")(x)
    else:
        outputs = keras.layers.Dense(2, activation="softmax", name="dense_1")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="session")
def tiny_model():
    return tiny_cnn(seed=0)


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory, tiny_model):
    """``tiny_model`` saved once as .keras. AppTest sessions run in this process, and the app
    keeps a loaded model per (path, modification time): one file for every test means one
    Keras load and one set of traced TensorFlow functions, not one per test. Nothing writes to it."""
    path = tmp_path_factory.mktemp("tiny-model") / "tiny.keras"
    tiny_model.save(path)
    return path


@pytest.fixture(scope="module")
def demo_cache(tmp_path_factory):
    """One cache folder for a module's AppTest tests on the demo (``demo_env``): the demo's 59
    scores (and its maps) are the same for every page, and those tests check what the pages draw,
    not the computing (the tiny-model tests do that, each with its own cache)."""
    return tmp_path_factory.mktemp("demo-cache")


@pytest.fixture(scope="session")
def tiny_images():
    return np.random.default_rng(0).random((5, *TINY), dtype=np.float32)
