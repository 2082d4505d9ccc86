"""Tiny models and images for tests of the explanation engine (16x16 inputs, seconds to run)."""
from __future__ import annotations

import numpy as np


def tiny_cnn(size: int = 16, *, seed: int = 0, softmax: bool = False):
    """A miniature DisplasiaNet: 2 x [Conv 3x3 -> ReLU -> MaxPool] -> Dense 8 -> ReLU -> Dense -> sigmoid."""
    import keras

    init = lambda k: keras.initializers.GlorotUniform(seed=seed + k)  # noqa: E731
    inputs = keras.Input((size, size, 3), name="input")
    x = inputs
    for block in range(2):
        suffix = "" if block == 0 else f"_{block}"
        x = keras.layers.Conv2D(4, 3, kernel_initializer=init(block), bias_initializer="zeros", name=f"conv2d{suffix}")(x)
        x = keras.layers.Activation("relu", name=f"activation{suffix}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"max_pooling2d{suffix}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(8, kernel_initializer=init(10), name="dense")(x)
    x = keras.layers.Activation("relu", name="activation_4")(x)
    if softmax:
        x = keras.layers.Dense(2, kernel_initializer=init(11), name="dense_1")(x)
        outputs = keras.layers.Activation("softmax", name="activation_5")(x)
    else:
        x = keras.layers.Dense(1, kernel_initializer=init(11), name="dense_1")(x)
        outputs = keras.layers.Activation("sigmoid", name="activation_5")(x)
    return keras.Model(inputs, outputs, name="tiny")


def linear_model(weights: np.ndarray, bias: float = 0.0):
    """logit = sum(weights * x) + bias, as a full-size 'valid' convolution then a sigmoid."""
    import keras

    size = weights.shape[0]
    inputs = keras.Input((size, size, 3), name="input")
    conv = keras.layers.Conv2D(1, size, name="conv2d")
    x = keras.layers.Flatten(name="flatten")(conv(inputs))
    outputs = keras.layers.Activation("sigmoid", name="activation")(x)
    model = keras.Model(inputs, outputs, name="linear")
    conv.set_weights([weights.reshape(size, size, 3, 1).astype(np.float32), np.array([bias], np.float32)])
    return model


def random_cells(n: int = 2, size: int = 16, *, seed: int = 0) -> np.ndarray:
    """Smooth random RGB images ``(n, size, size, 3)`` in [0, 1]: blobs, not white noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    images = np.empty((n, size, size, 3), np.float32)
    for i in range(n):
        acc = np.zeros((size, size, 3))
        for _ in range(4):
            cy, cx, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.3)
            acc += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / r ** 2)[..., None] * rng.uniform(0, 1, 3)
        images[i] = acc / acc.max()
    return images


def one_conv_net():
    """A hand-set net with known CAM answers (returns a Keras model on (4, 4, 3) inputs).

    A 1x1 conv copies R and G into two ReLU channels A0, A1 (B is not seen); the logit is
    ``sum(0.5 * A0) - sum(0.25 * A1)``, so dlogit/dA is 0.5 on channel 0 and -0.25 on
    channel 1 everywhere.
    """
    import keras

    inputs = keras.Input((4, 4, 3))
    conv = keras.layers.Conv2D(2, 1, name="conv2d")
    x = keras.layers.Activation("relu", name="activation")(conv(inputs))
    dense = keras.layers.Dense(1, name="dense")
    x = dense(keras.layers.Flatten(name="flatten")(x))
    model = keras.Model(inputs, keras.layers.Activation("sigmoid", name="activation_1")(x))
    conv.set_weights([np.array([[1, 0], [0, 1], [0, 0]], np.float32).reshape(1, 1, 3, 2), np.zeros(2, np.float32)])
    dense.set_weights([np.tile(np.array([0.5, -0.25], np.float32), 16).reshape(32, 1), np.zeros(1, np.float32)])
    return model
