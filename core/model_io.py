"""Load DisplasiaNet-like Keras models in every format users bring, safely.

Formats: a Keras 2 JSON architecture + HDF5 weights (how DisplasiaNet is distributed), a
full legacy ``.h5`` model, and a Keras 3 ``.keras`` archive. Keras 3 cannot deserialise the
Keras 2 JSON (its 'Sequential' class lookup fails), so the layers are rebuilt here from the
config, using an allow-list of built-in layer types. Nothing from the file is ever
executed: Lambda layers, custom classes and custom activations are refused. The result is
always a Keras 3 *functional* model, because tf-keras-vis fails on a Keras 3 Sequential.

Before anything is built, every file passes ``core.model_check`` against the ``[models]``
settings: archive sizes, config size and JSON depth, the input size and the parameter count
declared by the configuration, and the weight arrays' declared sizes. A hostile file costs
a one-line DisplasiaError, not gigabytes of memory.
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from core.errors import DisplasiaError
from core.model_check import (
    Limits,
    check_archive,
    check_config,
    check_h5_attr,
    check_h5_weights,
    load_json,
    read_member,
)
from core.runtime import import_tensorflow

#: Built-in layers a model file may use. Anything else (Lambda, custom) is refused.
ALLOWED_LAYERS = frozenset({
    "InputLayer", "Conv2D", "SeparableConv2D", "DepthwiseConv2D", "Dense", "Activation",
    "ReLU", "LeakyReLU", "ELU", "Softmax", "MaxPooling2D", "AveragePooling2D",
    "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Flatten", "Reshape", "Dropout",
    "SpatialDropout2D", "BatchNormalization", "ZeroPadding2D", "Cropping2D", "Add",
    "Concatenate", "Multiply", "Average", "Maximum", "Minimum", "Subtract", "Rescaling",
})
ALLOWED_ACTIVATIONS = frozenset({
    "linear", "relu", "sigmoid", "softmax", "tanh", "elu", "selu", "softplus", "softsign",
    "swish", "silu", "gelu", "hard_sigmoid", "exponential", "leaky_relu", "relu6",
})
CONV_LAYERS = frozenset({"Conv2D", "SeparableConv2D", "DepthwiseConv2D"})
# Layers that keep a conv block's post-ReLU output at the same resolution.
_POST_CONV_LAYERS = frozenset({"Activation", "ReLU", "LeakyReLU", "ELU", "BatchNormalization"})
# Keras 2 config keys that only matter for training or that Keras 3 no longer accepts.
_DROPPED_KEYS = ("batch_input_shape", "input_shape", "batch_size", "dtype", "trainable")


@dataclass(frozen=True)
class LayerInfo:
    name: str
    kind: str
    output_shape: tuple


@dataclass(frozen=True)
class ModelDescription:
    """What the dashboard needs to know about a model, independent of its file format."""

    input_shape: tuple
    output_kind: str  # "sigmoid" (one unit = P(normal)) or "softmax2"
    normal_unit: int
    layers: tuple
    feature_map_layers: tuple
    last_conv: str
    cam_layer: str
    features_layer: str
    params: int
    flops: int
    content_hash: str

    @property
    def image_size(self) -> tuple:
        """``(H, W)`` the images are resized to."""
        return tuple(self.input_shape[:2])


@dataclass
class LoadedModel:
    """A functional Keras model, its description, and derived heads built once."""

    model: object
    description: ModelDescription
    source: str

    @cached_property
    def score_model(self):
        return score_model(self)

    @cached_property
    def logit_model(self):
        return logit_model(self)

    @cached_property
    def score_fn(self):
        """Compiled images -> P(normal); one trace serves every batch size."""
        return compiled(self.score_model)


def compiled(keras_model):
    """Wrap a Keras model in a ``tf.function`` traced once for ``(None, H, W, C)`` float32.

    Calling a Keras model eagerly runs op by op, and ``model.predict`` rebuilds a data
    pipeline per call; a traced function avoids both for the small batches of the UI.
    """
    import tensorflow as tf

    spec = tf.TensorSpec((None, *keras_model.input_shape[1:]), tf.float32)
    return tf.function(lambda x: keras_model(x, training=False), input_signature=[spec])


def load_model(path, weights=None, *, normal_unit: int | None = None) -> LoadedModel:
    """Load a model file (``.json`` + ``weights``, ``.h5`` or ``.keras``).

    Parameters
    ----------
    path : str or Path
        Architecture file. ``.json``: Keras 2 (or Keras 3) JSON, ``weights`` required.
        ``.h5``/``.hdf5``: a full legacy model. ``.keras``: a Keras 3 archive.
    weights : str or Path, optional
        HDF5 weights for a JSON architecture.
    normal_unit : int, optional
        For a 2-unit softmax head, which unit means "normal" (default 1: class 1 = normal).

    Raises
    ------
    DisplasiaError
        Unreadable or unsupported file, refused layer, or weights that do not fit.
    """
    path = Path(path)
    if not path.is_file():
        raise DisplasiaError(f"Model file not found: {path}")
    if normal_unit is not None and normal_unit not in (0, 1):
        raise DisplasiaError("normal_unit must be 0 or 1.")
    limits = Limits.from_settings()
    suffix = path.suffix.lower()
    if suffix not in (".json", ".h5", ".hdf5", ".keras"):
        raise DisplasiaError(f"Unsupported model file '{path.name}': use .json + .h5 weights, .h5 or .keras.")
    if suffix == ".json" and weights is None:
        raise DisplasiaError(f"{path.name} holds only the architecture; give its weights file (.h5) too.")
    if suffix in (".h5", ".hdf5") and weights is not None:
        raise DisplasiaError("A full .h5 model carries its own weights; do not pass a weights file.")
    import_tensorflow()
    if suffix == ".json":
        model = _model_from_json_file(path, limits)
        _load_h5_weights(model, Path(weights), limits)
    elif suffix in (".h5", ".hdf5"):
        model = _model_from_full_h5(path, limits)
    else:
        model = _model_from_keras_archive(path, limits)
        if weights is not None:
            _load_h5_weights(model, Path(weights), limits)
    try:
        description = describe(model, normal_unit=normal_unit)
    except DisplasiaError:
        raise
    except (TypeError, ValueError, AttributeError, IndexError, KeyError) as exc:
        raise DisplasiaError(f"{path.name} cannot be described: {_first_line(exc)}") from None
    source = str(path) if weights is None else f"{path} + {Path(weights).name}"
    return LoadedModel(model=model, description=description, source=source)


def from_keras(model, *, source: str = "in-memory", normal_unit: int | None = None) -> LoadedModel:
    """Wrap an in-memory Keras model (tests, training) the same way files are loaded."""
    _check_layers_of(model)
    model = _as_functional(model)
    return LoadedModel(model=model, description=describe(model, normal_unit=normal_unit), source=source)


# ---------------------------------------------------------------------------- JSON / H5 configs

def _first_line(exc) -> str:
    text = " ".join(str(exc).split())[:200]
    return text or exc.__class__.__name__


def _read_bounded(path: Path, limits: Limits) -> bytes:
    try:
        size = path.stat().st_size
        if size > limits.max_config_bytes:
            raise DisplasiaError(f"{path.name} is {size:,} bytes, more than the limit of {limits.max_config_bytes:,} "
                                 "(setting models.max_config_bytes).")
        return path.read_bytes()
    except OSError as exc:
        raise DisplasiaError(f"Cannot read {path.name}: {exc.strerror or exc}.") from None


def _model_from_json_file(path: Path, limits: Limits | None = None):
    limits = limits or Limits.from_settings()
    config = load_json(_read_bounded(path, limits), path.name, limits)
    return model_from_config(config, limits)


def model_from_config(config: dict, limits: Limits | None = None):
    """Rebuild a functional model from a Keras 2 or Keras 3 model config (JSON dict).

    The config is checked first (``core.model_check.check_config``): malformed structure,
    input size and declared parameters are refused before any layer is built.
    """
    check_config(config, limits or Limits.from_settings())
    kind = config["class_name"]
    body = config.get("config", {})
    try:
        if kind == "Sequential":
            layers = body if isinstance(body, list) else body.get("layers", [])
            return _build_sequential(layers)
        return _build_functional(body)
    except DisplasiaError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, NotImplementedError) as exc:
        raise DisplasiaError(f"The architecture cannot be built: {_first_line(exc)}") from None


def _layer_spec(entry: dict) -> tuple[str, dict]:
    if not isinstance(entry, dict) or "class_name" not in entry:
        raise DisplasiaError("The architecture file has a malformed layer entry.")
    cls = entry["class_name"]
    cfg = dict(entry.get("config") or {})
    name = cfg.get("name", cls)
    if cls not in ALLOWED_LAYERS:
        why = "it would run code stored in the file" if cls == "Lambda" else "it is not a built-in Keras layer"
        raise DisplasiaError(f"Layer '{name}' of type {cls} is refused: {why}.")
    act = cfg.get("activation")
    if act is not None and (not isinstance(act, str) or act not in ALLOWED_ACTIVATIONS):
        raise DisplasiaError(f"Layer '{name}' uses a custom activation, which is refused.")
    return cls, cfg


def _make_layer(cls: str, cfg: dict):
    import keras

    cfg = {k: v for k, v in cfg.items()
           if k not in _DROPPED_KEYS and not k.endswith(("_initializer", "_regularizer", "_constraint"))}
    try:
        # Direct lookup on keras.layers: the class name is already on the allow-list.
        return getattr(keras.layers, cls).from_config(cfg)
    except (TypeError, ValueError) as exc:
        raise DisplasiaError(f"Layer '{cfg.get('name', cls)}' ({cls}) cannot be rebuilt: {str(exc).splitlines()[0]}") from None


def _input_shape_of(cfg: dict) -> tuple:
    if "batch_input_shape" in cfg:
        return tuple(cfg["batch_input_shape"][1:])
    if "batch_shape" in cfg:
        return tuple(cfg["batch_shape"][1:])
    if "input_shape" in cfg:
        return tuple(cfg["input_shape"])
    raise DisplasiaError("The architecture file does not say the model's input size.")


def _build_sequential(layer_entries: list):
    import keras

    specs = [_layer_spec(e) for e in layer_entries]
    if not specs:
        raise DisplasiaError("The architecture file has no layers.")
    first_cls, first_cfg = specs[0]
    inputs = keras.Input(shape=_input_shape_of(first_cfg), name=first_cfg.get("name", "input") if first_cls == "InputLayer" else "input")
    x = inputs
    for cls, cfg in specs:
        if cls == "InputLayer":
            continue
        x = _make_layer(cls, cfg)(x)
    return keras.Model(inputs, x, name="model")


def _build_functional(body: dict):
    """Rebuild a Keras 2 functional graph (``inbound_nodes`` as nested lists)."""
    import keras

    tensors = {}
    for entry in body.get("layers", []):
        cls, cfg = _layer_spec(entry)
        name = entry.get("name", cfg.get("name"))
        if cls == "InputLayer":
            tensors[name] = keras.Input(shape=_input_shape_of(cfg), name=name)
            continue
        inbound = entry.get("inbound_nodes") or []
        if len(inbound) != 1:
            raise DisplasiaError(f"Layer '{name}' is shared or unconnected; only simple graphs are supported.")
        sources = [_inbound_name(node) for node in _inbound_list(inbound[0])]
        try:
            args = [tensors[s] for s in sources]
        except KeyError as exc:
            raise DisplasiaError(f"Layer '{name}' reads from unknown layer {exc}.") from None
        tensors[name] = _make_layer(cls, cfg)(args[0] if len(args) == 1 else args)
    inputs = [tensors[_inbound_name(n)] for n in _io_list(body.get("input_layers"))]
    outputs = [tensors[_inbound_name(n)] for n in _io_list(body.get("output_layers"))]
    if len(inputs) != 1 or len(outputs) != 1:
        raise DisplasiaError("Only models with one image input and one output are supported.")
    return keras.Model(inputs[0], outputs[0], name=body.get("name", "model"))


def _inbound_list(node):
    # Keras 2: [["conv2d", 0, 0, {}], ...]; Keras 3: {"args": [{"config": {"keras_history": [...]}}]}
    if isinstance(node, dict):
        args = node.get("args", [])
        flat = args[0] if len(args) == 1 and isinstance(args[0], list) else args
        return [a["config"]["keras_history"] for a in flat]
    return node


def _inbound_name(node) -> str:
    return node[0] if isinstance(node, (list, tuple)) else node


def _io_list(value):
    if not value:
        return []
    return [value] if isinstance(value[0], str) else value


def _model_from_full_h5(path: Path, limits: Limits | None = None):
    import h5py

    limits = limits or Limits.from_settings()
    try:
        with h5py.File(path, "r") as f:
            config = check_h5_attr(f, "model_config", path.name, limits)
            if config is not None:
                check_h5_weights(f, path.name, limits, group="model_weights" if "model_weights" in f else None)
    except OSError:
        raise DisplasiaError(f"{path.name} is not a readable HDF5 file.") from None
    if config is None:
        raise DisplasiaError(f"{path.name} holds only weights; give the architecture file (.json) too.")
    model = model_from_config(config, limits)
    _load_h5_weights(model, path, limits, checked=True)
    return model


def _load_h5_weights(model, weights: Path, limits: Limits | None = None, *, checked: bool = False):
    import h5py

    if not weights.is_file():
        raise DisplasiaError(f"Weights file not found: {weights}")
    if weights.suffix.lower() not in (".h5", ".hdf5"):
        raise DisplasiaError(f"Weights file '{weights.name}' must be an HDF5 file (.h5).")
    if not checked:
        try:
            with h5py.File(weights, "r") as f:
                check_h5_weights(f, weights.name, limits or Limits.from_settings())
        except OSError:
            raise DisplasiaError(f"{weights.name} is not a readable HDF5 weights file.") from None
    try:
        model.load_weights(str(weights))
    except OSError:
        raise DisplasiaError(f"{weights.name} is not a readable HDF5 weights file.") from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError) as exc:
        raise DisplasiaError(f"The weights in {weights.name} do not fit this architecture: {_first_line(exc)}") from None


# ----------------------------------------------------------------------------- .keras archives

def _model_from_keras_archive(path: Path, limits: Limits | None = None):
    import keras

    from core.model_check import open_h5_bytes

    limits = limits or Limits.from_settings()
    try:
        with zipfile.ZipFile(path) as archive:
            check_archive(archive, path.name, limits)
            config = load_json(read_member(archive, "config.json", path.name), f"The configuration in {path.name}", limits)
            names = archive.namelist()
            _check_keras3_config(config)
            check_config(config, limits)
            if "model.weights.h5" in names:
                data = read_member(archive, "model.weights.h5", path.name)
                try:
                    with open_h5_bytes(data) as f:
                        check_h5_weights(f, path.name, limits)
                except OSError:
                    raise DisplasiaError(f"The weights in {path.name} are not a readable HDF5 file.") from None
                del data
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError):
        raise DisplasiaError(f"{path.name} is not a valid .keras model archive.") from None
    try:
        model = keras.saving.load_model(str(path), compile=False, safe_mode=True)
    except DisplasiaError:
        raise
    except Exception as exc:  # noqa: BLE001 - a hostile archive can fail anywhere in Keras; one line, never a traceback
        raise DisplasiaError(f"{path.name} cannot be loaded: {_first_line(exc)}") from None
    return _as_functional(model)


def _check_keras3_config(node):
    """Refuse any object in a .keras config that is not a built-in Keras class."""
    if isinstance(node, dict):
        module = node.get("module")
        if module is not None and not str(module).startswith("keras"):
            raise DisplasiaError(f"The model refers to code outside Keras ('{module}'), which is refused.")
        if node.get("registered_name") not in (None, node.get("class_name")) and "class_name" in node:
            raise DisplasiaError(f"The model uses a custom object '{node['registered_name']}', which is refused.")
        if node.get("class_name") == "Lambda":
            raise DisplasiaError("A Lambda layer is refused: it would run code stored in the file.")
        for value in node.values():
            _check_keras3_config(value)
    elif isinstance(node, list):
        for value in node:
            _check_keras3_config(value)


def _check_layers_of(model):
    for layer in model.layers:
        cls = type(layer).__name__
        if cls in ("Sequential", "Functional"):
            raise DisplasiaError(f"Nested model '{layer.name}' is not supported; flatten it first.")
        if cls not in ALLOWED_LAYERS:
            raise DisplasiaError(f"Layer '{layer.name}' of type {cls} is refused.")


def _as_functional(model):
    import keras

    _check_layers_of(model)
    if type(model).__name__ != "Sequential":
        return model
    # Fresh copies of the layers, so each has one node in the new graph (explanations read
    # ``layer.input``/``layer.output``, which would otherwise point into the Sequential).
    inputs = keras.Input(shape=model.input_shape[1:], name="input")
    x = inputs
    for layer in model.layers:
        copy = type(layer).from_config(layer.get_config())
        x = copy(x)
        copy.set_weights(layer.get_weights())
    return keras.Model(inputs, x, name=model.name)


# ---------------------------------------------------------------------------------- description

def describe(model, *, normal_unit: int | None = None) -> ModelDescription:
    """Describe a functional model: input, output kind, layers, CAM layer, size, hash."""
    input_shape = tuple(int(d) for d in model.input_shape[1:])
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise DisplasiaError(f"The model expects input {input_shape}; an RGB image input (H, W, 3) is required.")
    units = model.output_shape[-1]
    last = model.layers[-1]
    final_activation = getattr(last, "activation", None)
    final_name = getattr(final_activation, "__name__", "")
    if units == 1:
        if final_name != "sigmoid":
            raise DisplasiaError("A one-output model must end with a sigmoid giving P(normal).")
        output_kind, unit = "sigmoid", 0
    elif units == 2:
        if final_name != "softmax" and type(last).__name__ != "Softmax":
            raise DisplasiaError("A two-output model must end with a softmax.")
        output_kind, unit = "softmax2", 1 if normal_unit is None else int(normal_unit)
        if unit not in (0, 1):
            raise DisplasiaError("normal_unit must be 0 or 1.")
    else:
        raise DisplasiaError(f"The model has {units} outputs; one sigmoid or a 2-unit softmax is required.")

    layers = tuple(LayerInfo(l.name, type(l).__name__, tuple(l.output.shape[1:])) for l in model.layers)
    spatial = []
    for info in layers:
        if info.kind == "InputLayer":
            continue
        if len(info.output_shape) != 3:
            break
        spatial.append(info)
    convs = [i for i, info in enumerate(spatial) if info.kind in CONV_LAYERS]
    if not convs:
        raise DisplasiaError("The model has no convolution layer to explain.")
    last_conv_index = convs[-1]
    cam_index = last_conv_index
    conv_act = getattr(model.get_layer(spatial[last_conv_index].name), "activation", None)
    if getattr(conv_act, "__name__", "linear") == "linear":
        # Aim at the post-ReLU output: searching for "the last Conv2D" lands on the linear conv.
        for j in range(last_conv_index + 1, len(spatial)):
            if spatial[j].kind not in _POST_CONV_LAYERS:
                break
            cam_index = j
    return ModelDescription(
        input_shape=input_shape,
        output_kind=output_kind,
        normal_unit=unit,
        layers=layers,
        feature_map_layers=tuple(info.name for info in spatial),
        last_conv=spatial[last_conv_index].name,
        cam_layer=spatial[cam_index].name,
        features_layer=spatial[-1].name,
        params=int(model.count_params()),
        flops=_flops(model),
        content_hash=_content_hash(model),
    )


def _flops(model) -> int:
    """Multiply-adds x 2 of the convolution and dense layers for one image."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in CONV_LAYERS:
            out_h, out_w, out_c = layer.output.shape[1:]
            kernel = layer.kernel if kind != "SeparableConv2D" else layer.depthwise_kernel
            kh, kw, cin = kernel.shape[:3]
            total += 2 * out_h * out_w * kh * kw * cin * (out_c if kind == "Conv2D" else 1)
            if kind == "SeparableConv2D":
                total += 2 * out_h * out_w * layer.pointwise_kernel.shape[2] * out_c
        elif kind == "Dense":
            total += 2 * int(layer.kernel.shape[0]) * int(layer.kernel.shape[1])
    return int(total)


def _content_hash(model) -> str:
    digest = hashlib.sha256()
    architecture = [(type(l).__name__, l.name, str(l.output.shape[1:]), _plain_config(l)) for l in model.layers]
    digest.update(json.dumps(architecture, sort_keys=True, default=str).encode())
    for weight in model.weights:
        array = weight.numpy()
        digest.update(str(array.shape).encode())
        digest.update(array.astype("<f4").tobytes())
    return digest.hexdigest()


def _plain_config(layer) -> dict:
    cfg = layer.get_config()
    return {k: v for k, v in cfg.items() if k not in ("name", "dtype", "trainable", "batch_shape")
            and not k.endswith(("_initializer", "_regularizer", "_constraint"))}


# ------------------------------------------------------------------------------------ heads

def score_model(loaded: LoadedModel):
    """A model mapping images to P(normal), shape ``(N,)``."""
    import keras

    model, desc = loaded.model, loaded.description
    score = keras.ops.take(model.output, desc.normal_unit, axis=-1)
    return keras.Model(model.input, score, name="score")


def logit_model(loaded: LoadedModel):
    """A model mapping images to the log-odds of *normal*, shape ``(N,)``.

    Gradient methods use the pre-sigmoid logit to avoid saturation: the final sigmoid or
    softmax is removed (a separate Activation layer is skipped; a fused activation is
    rebuilt as linear with the same weights). For a 2-unit softmax the log-odds is
    ``z_normal - z_dysplastic``. Explaining "dysplastic" uses the negated logit.
    """
    import keras

    model, desc = loaded.model, loaded.description
    last = model.layers[-1]
    if type(last).__name__ in ("Activation", "Softmax"):
        pre = last.input
    else:
        config = last.get_config() | {"activation": "linear", "name": f"{last.name}_logit"}
        linear = type(last).from_config(config)
        pre = linear(last.input)
        linear.set_weights(last.get_weights())
    if desc.output_kind == "sigmoid":
        logit = keras.ops.take(pre, 0, axis=-1)
    else:
        u = desc.normal_unit
        logit = keras.ops.take(pre, u, axis=-1) - keras.ops.take(pre, 1 - u, axis=-1)
    return keras.Model(model.input, logit, name="logit")


# ----------------------------------------------------------------------------------- saving

def keras2_json(model) -> dict:
    """The Keras 2.2.4-tf JSON of a plain chain of layers (how DisplasiaNet is distributed)."""
    layers = []
    first = True
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        cfg = _plain_config(layer) | {"name": layer.name, "trainable": True, "dtype": "float32"}
        cfg = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}
        if first:
            cfg["batch_input_shape"] = [None, *model.input_shape[1:]]
            first = False
        layers.append({"class_name": kind, "config": cfg})
    return {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers},
            "keras_version": "2.2.4-tf", "backend": "tensorflow"}


def save_keras2(model, json_path, weights_path) -> None:
    """Write a model the way DisplasiaNet is distributed: Keras-2 JSON + legacy H5 weights."""
    import h5py
    import numpy as np

    Path(json_path).write_text(json.dumps(keras2_json(model), indent=1), encoding="utf-8")
    with h5py.File(weights_path, "w") as f:
        weighted = [l for l in model.layers if l.weights]
        f.attrs["layer_names"] = np.array([l.name.encode() for l in weighted])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4-tf"
        for layer in weighted:
            group = f.create_group(layer.name)
            names = [f"{layer.name}/{w.name}:0" for w in layer.weights]
            group.attrs["weight_names"] = np.array([n.encode() for n in names])
            for name, weight in zip(names, layer.weights):
                group.create_dataset(name, data=weight.numpy())
