"""Hostile corpus, models: every crafted model file is refused with one line, before building.

Each case writes a file a hostile user could upload (JSON architecture, full .h5, .keras
archive, HDF5 weights) and asserts that ``load_model`` raises DisplasiaError with a one-line
message naming the problem. The messages that come from ``core.model_check`` prove that the
file was refused from its declared configuration, before Keras built (allocated) anything.
"""
from __future__ import annotations

import copy
import json
import zipfile

import h5py
import numpy as np
import pytest

from core import model_io
from core.errors import DisplasiaError
from core.settings import reload_settings


def layer(cls, name, **config):
    return {"class_name": cls, "config": {"name": name, **config}}


def base_layers(shape=(16, 16, 3)):
    return [
        layer("Conv2D", "conv2d", filters=4, kernel_size=[3, 3], batch_input_shape=[None, *shape]),
        layer("Activation", "activation", activation="relu"),
        layer("MaxPooling2D", "max_pooling2d", pool_size=[2, 2]),
        layer("Flatten", "flatten"),
        layer("Dense", "dense", units=1),
        layer("Activation", "activation_1", activation="sigmoid"),
    ]


def sequential(layers):
    return {"class_name": "Sequential", "config": {"name": "s", "layers": layers}}


def mutate(index, **changes):
    layers = base_layers()
    layers[index]["config"].update(changes)
    return sequential(layers)


def functional(layers, *, inputs=("input", 0, 0), outputs=("dense", 0, 0)):
    return {"class_name": "Functional", "config": {"name": "f", "layers": layers,
                                                   "input_layers": [list(inputs)], "output_layers": [list(outputs)]}}


def fnode(*sources):
    return [[[s, 0, 0, {}] for s in sources]]


INPUT = {"class_name": "InputLayer", "name": "input", "config": {"name": "input", "batch_input_shape": [None, 16, 16, 3]},
         "inbound_nodes": []}


def flayer(cls, name, sources, **config):
    return {"class_name": cls, "name": name, "config": {"name": name, **config}, "inbound_nodes": fnode(*sources)}


FLATTEN = flayer("Flatten", "flatten", ["input"])
DENSE = flayer("Dense", "dense", ["flatten"], units=1, activation="sigmoid")

# (case id, architecture: dict/list/str/bytes, words expected in the message)
JSON_CASES = [
    ("dense-5-million-units", sequential([layer("Flatten", "f", batch_input_shape=[None, 299, 299, 3]),
                                          layer("Dense", "d", units=5_000_000)]), "parameters, more than the limit"),
    ("dense-5-million-on-pixels", sequential([layer("Dense", "d", units=5_000_000, batch_input_shape=[None, 299, 299, 3])]),
     "values per image"),
    ("conv-1e9-filters", mutate(0, filters=10**9), "parameters, more than the limit"),
    ("conv-filters-1e300", mutate(0, filters=10**300), "parameters, more than the limit"),
    ("conv-negative-filters", mutate(0, filters=-4), "filters must be at least 1"),
    ("conv-zero-filters", mutate(0, filters=0), "filters must be at least 1"),
    ("conv-float-filters", mutate(0, filters=4.5), "whole number"),
    ("conv-string-filters", mutate(0, filters="four"), "whole number"),
    ("conv-bool-filters", mutate(0, filters=True), "whole number"),
    ("conv-kernel-negative", mutate(0, kernel_size=[-3, 3]), "kernel_size must be at least 1"),
    ("conv-kernel-three-values", mutate(0, kernel_size=[3, 3, 3]), "two values"),
    ("conv-kernel-larger-than-input", mutate(0, kernel_size=[64, 64]), "larger than its input"),
    ("conv-stride-zero", mutate(0, strides=[0, 0]), "strides must be at least 1"),
    ("conv-padding-unknown", mutate(0, padding="reflect"), "padding must be"),
    ("conv-channels-first", mutate(0, data_format="channels_first"), "channels_last"),
    ("conv-groups-not-dividing", mutate(0, groups=2, filters=5), "groups"),
    ("pool-size-zero", mutate(2, pool_size=[0, 2]), "pool_size must be at least 1"),
    ("dense-units-none", mutate(4, units=None), "whole number"),
    ("dense-units-nan-string", mutate(4, units="NaN"), "whole number"),
    ("input-negative", sequential(base_layers((-16, 16, 3))), "at least 1"),
    ("input-zero", sequential(base_layers((0, 16, 3))), "at least 1"),
    ("input-rank-2", sequential([layer("Dense", "d", units=1, activation="sigmoid", batch_input_shape=[None, 16])]),
     "rank 2"),
    ("input-rank-5", sequential([layer("Conv2D", "c", filters=1, kernel_size=3, batch_input_shape=[None, 8, 8, 8, 3])]),
     "rank 5"),
    ("input-grey", sequential(base_layers((16, 16, 1))), "1 channels"),
    ("input-unknown-size", sequential(base_layers((None, None, 3))), "must be fixed"),
    ("input-huge", sequential(base_layers((100_000, 100_000, 3))), "more than the limit"),
    ("input-string-dims", sequential(base_layers(("a", 16, 3))), "whole number"),
    ("input-shape-not-list", sequential([layer("Conv2D", "c", filters=1, kernel_size=3, batch_input_shape=7)]),
     "must be a list"),
    ("input-missing", sequential([layer("Conv2D", "c", filters=1, kernel_size=3)]), "input size is not given"),
    ("no-layers", sequential([]), "no layers"),
    ("layers-is-a-dict", {"class_name": "Sequential", "config": {"layers": {"a": 1}}}, "no layers"),
    ("layer-is-a-number", sequential([base_layers()[0], 7]), "malformed layer entry"),
    ("lambda-layer", sequential(base_layers()[:1] + [layer("Lambda", "l", function="os.system")]), "not supported"),
    ("custom-layer", sequential(base_layers()[:1] + [layer("MyLayer", "m")]), "not supported"),
    ("custom-activation", mutate(1, activation="evil"), "custom activation"),
    ("reshape-mismatch", sequential(base_layers()[:3] + [layer("Reshape", "r", target_shape=[5, 5])]),
     "does not fit"),
    ("reshape-two-free", sequential(base_layers()[:3] + [layer("Reshape", "r", target_shape=[-1, -1])]), "one -1"),
    ("cropping-everything", sequential(base_layers()[:1] + [layer("Cropping2D", "c", cropping=[[50, 50], [0, 0]])]),
     "cropping leaves nothing"),
    ("unknown-model-type", {"class_name": "os.system", "config": {}}, "Unsupported model type"),
    ("class-name-number", {"class_name": 5, "config": {}}, "does not describe a Keras model"),
    ("json-array", [1, 2, 3], "does not describe a Keras model"),
    ("json-string", "Sequential", "does not describe a Keras model"),
    ("json-null", None, "does not describe a Keras model"),
    ("not-json", b"\x89PNG\r\n\x1a\n not json", "not a valid JSON"),
    ("json-nan", b'{"class_name": NaN}', "does not describe"),
    ("json-truncated", b'{"class_name": "Sequential", "config": {"layers": [', "not a valid JSON"),
    ("json-deep-100000", b"[" * 100_000 + b"]" * 100_000, "nested 100000 levels"),
    ("json-deep-in-string-ok-but-deep-outside", b'{"a": "[[[[", "b": ' + b"[" * 70 + b"]" * 70 + b"}", "nested 71 levels"),
    ("functional-unknown-source", functional([INPUT, flayer("Flatten", "flatten", ["ghost"]), DENSE]), "unknown layer"),
    ("functional-inbound-not-list", functional([INPUT, {**FLATTEN, "inbound_nodes": "input"}, DENSE]), "shared or unconnected"),
    ("functional-inbound-ints", functional([INPUT, {**FLATTEN, "inbound_nodes": [[[1, 2, 3]]]}, DENSE]), "malformed inbound"),
    ("functional-inbound-dict-no-args", functional([INPUT, {**FLATTEN, "inbound_nodes": [{"kwargs": {}}]}, DENSE]),
     "malformed inbound"),
    ("functional-keras3-bad-history", functional([INPUT, {**FLATTEN, "inbound_nodes": [{"args": [{"config": {}}]}]}, DENSE]),
     "malformed inbound"),
    ("functional-shared-layer", functional([INPUT, {**FLATTEN, "inbound_nodes": fnode("input") * 2}, DENSE]),
     "shared or unconnected"),
    ("functional-duplicate-name", functional([INPUT, FLATTEN, flayer("Flatten", "flatten", ["input"]), DENSE]),
     "Two layers are named"),
    ("functional-no-name", functional([INPUT, {**FLATTEN, "name": None, "config": {}}, DENSE]), "has no name"),
    ("functional-bad-output", functional([INPUT, FLATTEN, DENSE], outputs=("nowhere", 0, 0)), "one image input and one output"),
    ("functional-output-garbage", {"class_name": "Functional", "config": {"layers": [INPUT, FLATTEN, DENSE],
                                                                          "input_layers": [["input", 0, 0]], "output_layers": [[5]]}},
     "malformed input_layers"),
    ("functional-no-input-layer", functional([flayer("Flatten", "flatten", ["x"])]), "unknown layer"),
    ("functional-add-one-input", functional([INPUT, FLATTEN, flayer("Add", "add", ["flatten"]), DENSE]),
     "two or more inputs"),
    ("functional-concat-mismatch", functional([INPUT, FLATTEN, flayer("Dense", "d2", ["flatten"], units=3),
                                               flayer("Concatenate", "cat", ["input", "d2"]), DENSE]),
     "differ only in their last axis"),
]


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "weights.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"none"])
    return path


def assert_one_line(info, words):
    message = str(info.value)
    assert "\n" not in message and len(message) < 400, message
    assert words.lower() in message.lower(), message


@pytest.mark.parametrize("case, arch, words", JSON_CASES, ids=[c[0] for c in JSON_CASES])
def test_hostile_json_architectures_are_refused(tmp_path, weights_file, case, arch, words):
    path = tmp_path / "arch.json"
    path.write_bytes(arch if isinstance(arch, bytes) else json.dumps(copy.deepcopy(arch)).encode())
    with pytest.raises(DisplasiaError) as info:
        model_io.load_model(path, weights_file)
    assert_one_line(info, words)


def test_the_358_byte_json_with_5_million_units_is_refused_before_building(tmp_path, weights_file):
    arch = sequential([layer("Flatten", "f", batch_input_shape=[None, 299, 299, 3]), layer("Dense", "d", units=5_000_000)])
    text = json.dumps(arch)
    assert len(text) < 400
    (tmp_path / "a.json").write_text(text)
    with pytest.raises(DisplasiaError, match="declares 1,341,020,000,000 parameters"):
        model_io.load_model(tmp_path / "a.json", weights_file)


def test_config_size_limit_comes_from_settings(tmp_path, weights_file, monkeypatch):
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(sequential(base_layers())) + " " * 5000)
    monkeypatch.setenv("DISPLASIA_MODELS_MAX_CONFIG_BYTES", "2048")
    try:
        with pytest.raises(DisplasiaError) as info:
            model_io.load_model(path, weights_file)
        assert_one_line(info, "models.max_config_bytes")
    finally:
        monkeypatch.undo()
        reload_settings()


# ----------------------------------------------------------------------------- HDF5 weights

def _h5_bomb(path, shape=(200_000_000,)):
    """A few KB on disk that declares a huge gzip-compressed weight array."""
    with h5py.File(path, "w") as f:
        f.create_dataset("dense/kernel:0", shape=shape, dtype="f4", chunks=(1_000_000,), compression="gzip")


def _good_arch(tmp_path):
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(sequential(base_layers())))
    return path


def test_weights_file_declaring_a_huge_array_is_refused(tmp_path):
    _h5_bomb(tmp_path / "w.h5")
    assert (tmp_path / "w.h5").stat().st_size < 200_000
    with pytest.raises(DisplasiaError) as info:
        model_io.load_model(_good_arch(tmp_path), tmp_path / "w.h5")
    assert_one_line(info, "weight array of 200,000,000 values")


def test_weights_file_with_an_external_link_is_refused(tmp_path):
    with h5py.File(tmp_path / "w.h5", "w") as f:
        f["dense"] = h5py.ExternalLink("/etc/passwd", "/")
    with pytest.raises(DisplasiaError) as info:
        model_io.load_model(_good_arch(tmp_path), tmp_path / "w.h5")
    assert_one_line(info, "links to another file")


@pytest.mark.parametrize("content", [b"", b"not hdf5 at all", b"\x89HDF\r\n\x1a\n" + b"\0" * 100],
                         ids=["empty", "text", "hdf5-signature-only"])
def test_weights_that_are_not_hdf5(tmp_path, content):
    (tmp_path / "w.h5").write_bytes(content)
    with pytest.raises(DisplasiaError) as info:
        model_io.load_model(_good_arch(tmp_path), tmp_path / "w.h5")
    assert_one_line(info, "not a readable HDF5")


def test_weights_of_the_wrong_shape(tmp_path):
    with h5py.File(tmp_path / "w.h5", "w") as f:
        f.attrs["layer_names"] = np.array([b"conv2d"])
        g = f.create_group("conv2d")
        g.attrs["weight_names"] = np.array([b"conv2d/kernel:0"])
        g.create_dataset("conv2d/kernel:0", data=np.zeros((5, 5, 5, 5), "f4"))
    with pytest.raises(DisplasiaError) as info:
        model_io.load_model(_good_arch(tmp_path), tmp_path / "w.h5")
    assert_one_line(info, "weights")


# ----------------------------------------------------------------------------------- full .h5

def _full_h5(path, config, *, bomb=False):
    with h5py.File(path, "w") as f:
        if config is not None:
            f.attrs["model_config"] = config if isinstance(config, bytes | str) else json.dumps(config)
        g = f.create_group("model_weights")
        if bomb:
            g.create_dataset("dense/kernel:0", shape=(200_000_000,), dtype="f4", chunks=(1_000_000,), compression="gzip")


FULL_H5_CASES = [
    ("no-config", None, False, "holds only weights"),
    ("config-not-json", "garbage{", False, "not a valid JSON"),
    ("config-deep", "[" * 5000 + "]" * 5000, False, "nested 5000 levels"),
    ("config-5-million-units", sequential([layer("Flatten", "f", batch_input_shape=[None, 299, 299, 3]),
                                           layer("Dense", "d", units=5_000_000)]), False, "parameters"),
    ("weights-bomb", sequential(base_layers()), True, "weight array"),
    ("lambda", sequential(base_layers()[:1] + [layer("Lambda", "l")]), False, "not supported"),
]


@pytest.mark.parametrize("case, config, bomb, words", FULL_H5_CASES, ids=[c[0] for c in FULL_H5_CASES])
def test_hostile_full_h5_models(tmp_path, case, config, bomb, words):
    _full_h5(tmp_path / "m.h5", config, bomb=bomb)
    with pytest.raises(DisplasiaError) as info:
        model_io.load_model(tmp_path / "m.h5")
    assert_one_line(info, words)


# ------------------------------------------------------------------------------ .keras archives

KERAS3_INPUT = {"module": "keras.layers", "class_name": "InputLayer", "name": "input", "registered_name": None,
                "config": {"name": "input", "batch_shape": [None, 16, 16, 3]}, "inbound_nodes": []}


def k3_layer(cls, name, source, build=None, **config):
    entry = {"module": "keras.layers", "class_name": cls, "name": name, "registered_name": None,
             "config": {"name": name, **config},
             "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__",
                                          "config": {"keras_history": [source, 0, 0]}}], "kwargs": {}}]}
    if build is not None:
        entry["build_config"] = {"input_shape": build}
    return entry


def k3_model(layers, output="dense"):
    return {"module": "keras.src.models.functional", "class_name": "Functional", "registered_name": "Functional",
            "config": {"name": "m", "layers": layers, "input_layers": ["input", 0, 0], "output_layers": [output, 0, 0]}}


K3_GOOD = [KERAS3_INPUT, k3_layer("Flatten", "flatten", "input"),
           k3_layer("Dense", "dense", "flatten", units=1, activation="sigmoid")]


def _archive(path, members: dict):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data if isinstance(data, bytes | str) else json.dumps(data))


def _bomb_h5_bytes(tmp_path):
    _h5_bomb(tmp_path / "bomb.h5")
    return (tmp_path / "bomb.h5").read_bytes()


KERAS_CASES = [
    ("not-a-zip", None, "not a valid .keras"),
    ("no-config", {"metadata.json": "{}"}, "no config.json"),
    ("config-deep", {"config.json": "[" * 50_000 + "]" * 50_000}, "nested 50000 levels"),
    ("config-not-json", {"config.json": "{{{"}, "not a valid JSON"),
    ("module-outside-keras", {"config.json": {**k3_model(K3_GOOD), "module": "os"}}, "outside Keras"),
    ("custom-registered-name", {"config.json": k3_model([KERAS3_INPUT, {**K3_GOOD[1], "registered_name": "Evil>Layer"},
                                                         K3_GOOD[2]])}, "custom object"),
    ("lambda", {"config.json": k3_model([KERAS3_INPUT, k3_layer("Lambda", "dense", "input")])}, "Lambda"),
    ("dense-5-million", {"config.json": k3_model([KERAS3_INPUT, K3_GOOD[1],
                                                  k3_layer("Dense", "dense", "flatten", units=5_000_000)])}, "parameters"),
    ("build-config-lies", {"config.json": k3_model([KERAS3_INPUT, K3_GOOD[1],
                                                    k3_layer("Dense", "dense", "flatten", build=[None, 10**8], units=1)])},
     "parameters"),
    ("input-rank-2", {"config.json": k3_model([{**KERAS3_INPUT, "config": {"name": "input", "batch_shape": [None, 16]}},
                                               k3_layer("Dense", "dense", "input", units=1)])}, "rank 2"),
    ("input-negative", {"config.json": k3_model([{**KERAS3_INPUT, "config": {"name": "input",
                                                                             "batch_shape": [None, -16, 16, 3]}}] + K3_GOOD[1:])},
     "at least 1"),
    ("weights-bomb", "bomb", "weight array"),
    ("weights-not-hdf5", {"config.json": k3_model(K3_GOOD), "model.weights.h5": b"junk"}, "not a readable HDF5"),
]


@pytest.mark.parametrize("case, members, words", KERAS_CASES, ids=[c[0] for c in KERAS_CASES])
def test_hostile_keras_archives(tmp_path, case, members, words):
    path = tmp_path / "m.keras"
    if members is None:
        path.write_bytes(b"PK\x03\x04 not really a zip")
    elif members == "bomb":
        _archive(path, {"config.json": k3_model(K3_GOOD), "model.weights.h5": _bomb_h5_bytes(tmp_path)})
    else:
        _archive(path, members)
    with pytest.raises(DisplasiaError) as info:
        model_io.load_model(path)
    assert_one_line(info, words)


def test_zip_bomb_refused_from_declared_sizes(tmp_path, monkeypatch):
    """A member that inflates past models.max_archive_uncompressed_mb is refused unread."""
    path = tmp_path / "bomb.keras"
    _archive(path, {"config.json": k3_model(K3_GOOD), "assets/zeros.bin": b"\0" * (3 * 2**20)})
    assert path.stat().st_size < 50_000
    monkeypatch.setenv("DISPLASIA_MODELS_MAX_ARCHIVE_UNCOMPRESSED_MB", "2")
    try:
        with pytest.raises(DisplasiaError) as info:
            model_io.load_model(path)
        assert_one_line(info, "would unpack to 3 MiB")
    finally:
        monkeypatch.undo()
        reload_settings()


def test_archive_with_too_many_members(tmp_path):
    path = tmp_path / "many.keras"
    _archive(path, {"config.json": k3_model(K3_GOOD), **{f"a/{i}": b"" for i in range(1001)}})
    with pytest.raises(DisplasiaError) as info:
        model_io.load_model(path)
    assert_one_line(info, "1,002 members")


def test_a_valid_model_still_loads_after_the_checks(tmp_path, tiny_model):
    """The checks refuse only hostile files: the declared count equals Keras's own."""
    tiny_model.save(tmp_path / "ok.keras")
    loaded = model_io.load_model(tmp_path / "ok.keras")
    assert loaded.description.params == tiny_model.count_params()
