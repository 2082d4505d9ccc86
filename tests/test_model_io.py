"""Model loading: every format gives the writer's outputs; unsafe files are refused."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from core import model_io
from core.errors import DisplasiaError
from tests.conftest import tiny_cnn


def keras224_layer(cls, name, **config):
    """One layer entry laid out as Keras 2.2.4-tf wrote it (initialisers as dicts)."""
    base = {"name": name, "trainable": True, "dtype": "float32"}
    if cls in ("Conv2D", "Dense"):
        base |= {"kernel_initializer": {"class_name": "VarianceScaling",
                                        "config": {"scale": 1.0, "mode": "fan_avg", "distribution": "uniform", "seed": None, "dtype": "float32"}},
                 "bias_initializer": {"class_name": "Zeros", "config": {"dtype": "float32"}},
                 "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
                 "kernel_constraint": None, "bias_constraint": None, "use_bias": True, "activation": "linear"}
    return {"class_name": cls, "config": base | config}


def keras224_json(input_shape=(16, 16, 3), layers_as_list=False):
    layers = [
        keras224_layer("Conv2D", "conv2d", filters=4, kernel_size=[3, 3], strides=[1, 1], padding="valid",
                       data_format="channels_last", dilation_rate=[1, 1], batch_input_shape=[None, *input_shape]),
        keras224_layer("Activation", "activation", activation="relu"),
        keras224_layer("MaxPooling2D", "max_pooling2d", pool_size=[2, 2], padding="valid", strides=[2, 2], data_format="channels_last"),
        keras224_layer("Conv2D", "conv2d_1", filters=4, kernel_size=[3, 3], strides=[1, 1], padding="valid",
                       data_format="channels_last", dilation_rate=[1, 1]),
        keras224_layer("Activation", "activation_1", activation="relu"),
        keras224_layer("MaxPooling2D", "max_pooling2d_1", pool_size=[2, 2], padding="valid", strides=[2, 2], data_format="channels_last"),
        keras224_layer("Flatten", "flatten", data_format="channels_last"),
        keras224_layer("Dense", "dense", units=8),
        keras224_layer("Activation", "activation_2", activation="relu"),
        keras224_layer("Dropout", "dropout", rate=0.5, noise_shape=None, seed=None),
        keras224_layer("Dense", "dense_1", units=1),
        keras224_layer("Activation", "activation_3", activation="sigmoid"),
    ]
    config = layers if layers_as_list else {"name": "sequential_1", "layers": layers}
    return {"class_name": "Sequential", "config": config, "keras_version": "2.2.4-tf", "backend": "tensorflow"}


def outputs(model, images):
    return np.asarray(model(images, training=False))


@pytest.mark.parametrize("layers_as_list", [False, True])
def test_keras224_json_plus_h5_weights_reproduces_writer(tmp_path, tiny_model, tiny_images, layers_as_list):
    (tmp_path / "arch.json").write_text(json.dumps(keras224_json(layers_as_list=layers_as_list)))
    model_io.save_keras2(tiny_model, tmp_path / "unused.json", tmp_path / "weights.h5")
    loaded = model_io.load_model(tmp_path / "arch.json", tmp_path / "weights.h5")
    assert type(loaded.model).__name__ == "Functional"
    np.testing.assert_allclose(outputs(loaded.model, tiny_images), outputs(tiny_model, tiny_images), atol=1e-6)


def test_save_keras2_round_trip_is_exact(tmp_path, tiny_model, tiny_images):
    model_io.save_keras2(tiny_model, tmp_path / "m.json", tmp_path / "w.h5")
    layout = json.loads((tmp_path / "m.json").read_text())
    assert layout["class_name"] == "Sequential"
    assert layout["config"]["layers"][0]["config"]["batch_input_shape"] == [None, 16, 16, 3]
    loaded = model_io.load_model(tmp_path / "m.json", tmp_path / "w.h5")
    np.testing.assert_array_equal(outputs(loaded.model, tiny_images), outputs(tiny_model, tiny_images))


def test_full_h5_and_keras_archive_reproduce_writer(tmp_path, tiny_model, tiny_images):
    tiny_model.save(tmp_path / "full.h5")
    tiny_model.save(tmp_path / "model.keras")
    expected = outputs(tiny_model, tiny_images)
    for name in ("full.h5", "model.keras"):
        loaded = model_io.load_model(tmp_path / name)
        np.testing.assert_allclose(outputs(loaded.model, tiny_images), expected, atol=1e-6)


def test_keras3_sequential_becomes_functional(tmp_path, tiny_images):
    import keras

    seq = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(2, 3, name="c"),
                            keras.layers.Flatten(name="f"), keras.layers.Dense(1, activation="sigmoid", name="d")])
    seq.save(tmp_path / "seq.keras")
    loaded = model_io.load_model(tmp_path / "seq.keras")
    assert type(loaded.model).__name__ == "Functional"
    np.testing.assert_allclose(outputs(loaded.model, tiny_images), outputs(seq, tiny_images), atol=1e-6)
    # A fused sigmoid still gives a pre-sigmoid logit head.
    logit = np.asarray(loaded.logit_model(tiny_images))
    np.testing.assert_allclose(1 / (1 + np.exp(-logit)), outputs(seq, tiny_images)[:, 0], atol=1e-6)


def test_lambda_layer_refused_in_json_and_keras(tmp_path):
    import keras

    arch = keras224_json()
    arch["config"]["layers"].insert(1, {"class_name": "Lambda", "config": {"name": "evil", "function": "print"}})
    (tmp_path / "evil.json").write_text(json.dumps(arch))
    (tmp_path / "w.h5").write_bytes(b"")
    with pytest.raises(DisplasiaError, match="Lambda"):
        model_io.load_model(tmp_path / "evil.json", tmp_path / "w.h5")

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(inputs)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(DisplasiaError, match="Lambda"):
        model_io.load_model(tmp_path / "lambda.keras")


def test_custom_module_in_keras_archive_refused(tmp_path, tiny_model):
    tiny_model.save(tmp_path / "ok.keras")
    with zipfile.ZipFile(tmp_path / "ok.keras") as src, zipfile.ZipFile(tmp_path / "bad.keras", "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                config["config"]["layers"][1]["module"] = "os"
                data = json.dumps(config).encode()
            dst.writestr(item, data)
    with pytest.raises(DisplasiaError, match="outside Keras"):
        model_io.load_model(tmp_path / "bad.keras")


def test_bad_files_give_one_line_messages(tmp_path, tiny_model):
    (tmp_path / "junk.json").write_text("{not json")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    cases = [((tmp_path / "missing.keras",), "not found"),
             ((tmp_path / "junk.json", tmp_path / "junk.h5"), "not a valid JSON"),
             ((tmp_path / "junk.h5",), "not a readable HDF5"),
             ((tmp_path / "junk.keras",), "not a valid .keras"),
             ((tmp_path / "junk.json",), "weights file")]
    for args, message in cases:
        with pytest.raises(DisplasiaError, match=message) as info:
            model_io.load_model(*args)
        assert "\n" not in str(info.value)


def test_weights_that_do_not_fit_are_refused(tmp_path, tiny_model):
    model_io.save_keras2(tiny_model, tmp_path / "m.json", tmp_path / "w.h5")
    other = tiny_cnn(seed=1, head="softmax")
    model_io.save_keras2(other, tmp_path / "o.json", tmp_path / "o.h5")
    with pytest.raises(DisplasiaError, match="do not fit"):
        model_io.load_model(tmp_path / "m.json", tmp_path / "o.h5")


def test_displasianet_description():
    from core.architecture import displasianet

    desc = model_io.from_keras(displasianet(seed=0)).description
    assert desc.params == 72_977
    assert 0.19e9 < desc.flops < 0.21e9
    assert desc.input_shape == (299, 299, 3) and desc.output_kind == "sigmoid"
    assert len(desc.feature_map_layers) == 12
    assert sum(dict((l.name, l.output_shape[-1]) for l in desc.layers)[n] for n in desc.feature_map_layers) == 192
    assert (desc.last_conv, desc.cam_layer, desc.features_layer) == ("conv2d_3", "activation_3", "max_pooling2d_3")


def test_softmax_head_scores_and_logits(tiny_images):
    model = tiny_cnn(seed=2, head="softmax")
    loaded = model_io.from_keras(model)
    assert loaded.description.output_kind == "softmax2" and loaded.description.normal_unit == 1
    probs = outputs(model, tiny_images)
    np.testing.assert_allclose(np.asarray(loaded.score_model(tiny_images)), probs[:, 1], atol=1e-6)
    logit = np.asarray(loaded.logit_model(tiny_images))
    np.testing.assert_allclose(logit, np.log(probs[:, 1] / probs[:, 0]), atol=1e-4)
    flipped = model_io.from_keras(model, normal_unit=0)
    np.testing.assert_allclose(np.asarray(flipped.score_model(tiny_images)), probs[:, 0], atol=1e-6)


def test_content_hash_tracks_weights(tiny_images):
    a = model_io.from_keras(tiny_cnn(seed=0)).description.content_hash
    b = model_io.from_keras(tiny_cnn(seed=0)).description.content_hash
    c = model_io.from_keras(tiny_cnn(seed=1)).description.content_hash
    assert a == b != c


def test_non_image_model_refused():
    import keras

    inputs = keras.Input((10,))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))
    with pytest.raises(DisplasiaError, match="RGB image input"):
        model_io.from_keras(model)
