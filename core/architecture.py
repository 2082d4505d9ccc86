"""The DisplasiaNet architecture, exactly as distributed (layer types, sizes and names)."""
from __future__ import annotations

DISPLASIANET_INPUT_SHAPE = (299, 299, 3)


def displasianet(input_shape=DISPLASIANET_INPUT_SHAPE, *, seed=None):
    """Build DisplasiaNet as a Keras 3 functional model.

    Four blocks of 3x3 'valid' Conv2D (16 filters) -> ReLU -> 2x2 max pooling, then
    Flatten -> Dense 16 -> ReLU -> Dropout 0.5 -> Dense 1 -> sigmoid. The output is the
    probability that the cell is *normal*. Layer names follow the distributed file
    (``conv2d``, ``activation``, ``max_pooling2d``, ``conv2d_1``, ... ``activation_5``),
    because explanation settings refer to them (e.g. CAMs on ``activation_3``).

    Parameters
    ----------
    input_shape : tuple of int
        ``(H, W, 3)``; 299x299 for the published model.
    seed : int, optional
        Seed of the weight initialisers and of the dropout layer, for reproducible training.

    Returns
    -------
    keras.Model
        72,977 trainable parameters at 299x299.
    """
    from core.runtime import import_tensorflow

    import_tensorflow()
    import keras

    def init(offset: int):
        return keras.initializers.GlorotUniform(seed=None if seed is None else seed + offset)

    inputs = keras.Input(shape=tuple(input_shape), name="input")
    x = inputs
    for block in range(4):
        suffix = "" if block == 0 else f"_{block}"
        x = keras.layers.Conv2D(16, (3, 3), padding="valid", kernel_initializer=init(block),
                                name=f"conv2d{suffix}")(x)
        x = keras.layers.Activation("relu", name=f"activation{suffix}")(x)
        x = keras.layers.MaxPooling2D((2, 2), name=f"max_pooling2d{suffix}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(16, kernel_initializer=init(10), name="dense")(x)
    x = keras.layers.Activation("relu", name="activation_4")(x)
    x = keras.layers.Dropout(0.5, seed=seed, name="dropout")(x)
    x = keras.layers.Dense(1, kernel_initializer=init(11), name="dense_1")(x)
    outputs = keras.layers.Activation("sigmoid", name="activation_5")(x)
    return keras.Model(inputs, outputs, name="displasianet")
