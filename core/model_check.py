"""Checks a model file must pass BEFORE anything is built or allocated.

A 358-byte JSON can declare a 5-million-unit Dense layer, a 1 MB ``.keras`` archive can
inflate to gigabytes, and a deeply nested JSON makes Python's parser raise RecursionError.
Building such a model first and refusing it afterwards leaves the server gigabytes larger.
So every model file is checked here, from its bytes and its declared configuration only,
against the limits in the settings (``[models]``):

- archive members' declared uncompressed sizes (zip bomb) and the config size,
- JSON nesting depth (counted without recursion, before parsing),
- the input: rank 3, RGB, fixed positive height and width, at most ``max_input_pixels``,
- every layer's output shape and parameter count, inferred from the config alone with
  Python integers (no arrays), against ``max_params``; a layer whose ``build_config``
  declares a bigger input than the graph gives is counted at the bigger size, because
  Keras builds it from that declaration,
- HDF5 weight datasets' declared element counts (a gzip-compressed dataset can inflate).

Every problem is a one-line :class:`core.errors.DisplasiaError`.

>>> json_depth(b'{"a": [1, [2, {"b": "[[["}]]}')
4
>>> cfg = {"class_name": "Sequential", "config": {"layers": [
...     {"class_name": "Flatten", "config": {"batch_input_shape": [None, 299, 299, 3]}},
...     {"class_name": "Dense", "config": {"units": 5000000}}]}}
>>> check_config(cfg, Limits())
Traceback (most recent call last):
...
core.errors.DisplasiaError: The model declares 1,341,020,000,000 parameters, more than the limit of 50,000,000 (setting models.max_params).
"""
from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import dataclass

from core.errors import DisplasiaError

#: Most members a .keras archive may have.
MAX_ARCHIVE_MEMBERS = 1000


@dataclass(frozen=True)
class Limits:
    """The ``[models]`` limits (defaults as in ``core.settings.ModelSettings``)."""
    max_params: int = 50_000_000
    max_config_bytes: int = 4 * 2**20
    max_json_depth: int = 64
    max_archive_bytes: int = 1024 * 2**20
    max_input_pixels: int = 4_194_304
    #: Largest output of one layer for one image (elements); bounds inference memory.
    max_layer_output: int = 64 * 2**20

    @classmethod
    def from_settings(cls) -> Limits:
        from core.settings import load_settings

        m = load_settings().models
        return cls(max_params=m.max_params, max_config_bytes=m.max_config_bytes, max_json_depth=m.max_json_depth,
                   max_archive_bytes=int(m.max_archive_uncompressed_mb * 2**20), max_input_pixels=m.max_input_pixels)


# ------------------------------------------------------------------------------------ JSON

def json_depth(data: bytes) -> int:
    """Deepest nesting of ``[``/``{`` in JSON text, outside strings, without recursion."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _fast_depth(data: bytes, limit: int) -> int:
    """``json_depth`` quickly: a cheap upper bound first (bracket count), exact only if needed."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return 0
    return json_depth(data)


def load_json(data, what: str, limits: Limits):
    """Parse JSON bytes/str after checking size and depth; DisplasiaError on anything wrong."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if len(data) > limits.max_config_bytes:
        raise DisplasiaError(f"{what} is {len(data):,} bytes, more than the limit of {limits.max_config_bytes:,} "
                             "(setting models.max_config_bytes).")
    depth = _fast_depth(data, limits.max_json_depth)
    if depth > limits.max_json_depth:
        raise DisplasiaError(f"{what} is nested {depth} levels deep, more than the limit of {limits.max_json_depth} "
                             "(setting models.max_json_depth).")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DisplasiaError(f"{what} is not a valid JSON model architecture ({exc.__class__.__name__}).") from None


# ------------------------------------------------------------------------------ archives

def check_archive(archive: zipfile.ZipFile, name: str, limits: Limits) -> None:
    """Refuse a .keras archive whose members would inflate past the limit."""
    members = archive.infolist()
    if len(members) > MAX_ARCHIVE_MEMBERS:
        raise DisplasiaError(f"{name} has {len(members):,} members; a .keras model has a handful.")
    total = sum(max(0, m.file_size) for m in members)
    if total > limits.max_archive_bytes:
        raise DisplasiaError(f"{name} would unpack to {total / 2**20:,.0f} MiB, more than the limit of "
                             f"{limits.max_archive_bytes / 2**20:,.0f} MiB (setting models.max_archive_uncompressed_mb).")
    for m in members:
        if m.filename == "config.json" and m.file_size > limits.max_config_bytes:
            raise DisplasiaError(f"The configuration in {name} is {m.file_size:,} bytes, more than the limit of "
                                 f"{limits.max_config_bytes:,} (setting models.max_config_bytes).")


def read_member(archive: zipfile.ZipFile, member: str, name: str) -> bytes:
    """One member's bytes (its declared size was checked by ``check_archive``)."""
    try:
        info = archive.getinfo(member)
        with archive.open(info) as handle:
            data = handle.read(info.file_size + 1)
    except KeyError:
        raise DisplasiaError(f"{name} is not a valid .keras model archive (no {member}).") from None
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError, ValueError) as exc:
        raise DisplasiaError(f"{name} is not a valid .keras model archive ({exc.__class__.__name__}).") from None
    if len(data) > info.file_size:
        raise DisplasiaError(f"{name} is not a valid .keras model archive (a member is larger than it says).")
    return data


# --------------------------------------------------------------------------------- HDF5

def check_h5_weights(h5file, name: str, limits: Limits, *, group: str | None = None) -> int:
    """Total declared elements of the weight datasets; refuse external links and oversize data.

    ``h5file`` is an open ``h5py.File``. Optimiser state may sit beside the weights, so the
    total may be up to four times ``max_params``; one dataset may not exceed ``max_params``.
    """
    import h5py

    root = h5file if group is None else h5file.get(group)
    if root is None:
        return 0
    total = 0
    problems = []

    def visit(path, link):
        nonlocal total
        if isinstance(link, h5py.ExternalLink):
            problems.append(f"{name} links to another file ({link.filename}), which is refused.")
            return None
        if not isinstance(link, h5py.HardLink):
            return None
        obj = root.get(path)
        if isinstance(obj, h5py.Dataset):
            if obj.is_virtual:
                problems.append(f"{name} has a virtual dataset, which is refused.")
                return None
            size = math.prod(int(d) for d in obj.shape) if obj.shape else 1
            if size > limits.max_params:
                problems.append(f"{name} holds a weight array of {size:,} values, more than the limit of "
                                f"{limits.max_params:,} parameters (setting models.max_params).")
            total += size
        return None

    try:
        root.visititems_links(visit)
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise DisplasiaError(f"{name} is not a readable HDF5 file ({exc.__class__.__name__}).") from None
    if problems:
        raise DisplasiaError(problems[0])
    if total > 4 * limits.max_params:
        raise DisplasiaError(f"{name} holds {total:,} values, more than 4 x the limit of {limits.max_params:,} "
                             "parameters (setting models.max_params).")
    return total


def check_h5_attr(h5file, attr: str, name: str, limits: Limits):
    """Read a (possibly huge) HDF5 text attribute only after checking its stored size."""
    if attr not in h5file.attrs:
        return None
    try:
        size = h5file.attrs.get_id(attr).get_storage_size()
    except (OSError, KeyError, ValueError, RuntimeError):
        size = 0
    if size > limits.max_config_bytes:
        raise DisplasiaError(f"The configuration in {name} is {size:,} bytes, more than the limit of "
                             f"{limits.max_config_bytes:,} (setting models.max_config_bytes).")
    try:
        raw = h5file.attrs[attr]
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise DisplasiaError(f"{name} has an unreadable model configuration ({exc.__class__.__name__}).") from None
    if hasattr(raw, "tobytes") and not isinstance(raw, bytes | str):
        raw = raw.tobytes() if getattr(raw, "dtype", None) is not None and raw.dtype.kind in "SU" else str(raw)
    return load_json(raw if isinstance(raw, bytes | str) else str(raw), f"The configuration in {name}", limits)


# ------------------------------------------------------------------------ shape inference

def _count(n: int) -> str:
    """``1,234`` for sane numbers, ``2.8e+301`` for astronomic ones (messages stay one short line)."""
    if n < 0:
        return "-" + _count(-n)
    return f"{n:,}" if n < 10**15 else f"{float(n):.3g}" if n < 10**300 else "more than 1e300"


class _Bad(Exception):
    """Internal: malformed config; turned into a DisplasiaError naming the layer."""


def _int(value, what, *, low=1):
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer() and math.isfinite(value):
            value = int(value)
        else:
            raise _Bad(f"{what} must be a whole number (got {value!r:.40})")
    if value < low:
        raise _Bad(f"{what} must be at least {low} (got {_count(value)})")
    return value


def _pair(value, what, *, low=1):
    if isinstance(value, list | tuple):
        if len(value) != 2:
            raise _Bad(f"{what} must have two values")
        return _int(value[0], what, low=low), _int(value[1], what, low=low)
    v = _int(value, what, low=low)
    return v, v


def _dims(shape, what) -> tuple:
    if not isinstance(shape, list | tuple):
        raise _Bad(f"{what} must be a list")
    return tuple(_int(d, what) if d is not None else None for d in shape)


def _spatial(size, kernel, stride, dilation, padding):
    if size is None:
        return None
    if padding == "same":
        return -(-size // stride)
    if padding == "valid":
        out = (size - dilation * (kernel - 1) - 1) // stride + 1
        if out < 1:
            raise _Bad(f"the kernel ({kernel}) is larger than its input ({size})")
        return out
    raise _Bad(f"padding must be 'valid' or 'same' (got {padding!r:.20})")


def _need_rank(shape, rank, cls):
    if len(shape) != rank:
        raise _Bad(f"{cls} needs an input of rank {rank + 1} (with the batch), got {len(shape) + 1}")


def _known(d, what):
    if d is None:
        raise _Bad(f"{what} must be known")
    return d


def _layer_output(cls: str, cfg: dict, inputs: list) -> tuple[tuple, int]:
    """(output shape without batch, parameter count) of one allowed layer type."""
    shape = inputs[0]
    if cls in ("Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "Dropout", "SpatialDropout2D", "Rescaling"):
        return shape, 0
    if cfg.get("data_format", "channels_last") not in ("channels_last", None):
        raise _Bad("only channels_last models are supported")
    if cls in ("Conv2D", "SeparableConv2D", "DepthwiseConv2D"):
        _need_rank(shape, 3, cls)
        h, w, c = shape
        c = _known(c, "the number of input channels")
        kh, kw = _pair(cfg.get("kernel_size"), "kernel_size")
        sh, sw = _pair(cfg.get("strides", 1), "strides")
        dh, dw = _pair(cfg.get("dilation_rate", 1), "dilation_rate")
        padding = cfg.get("padding", "valid")
        oh, ow = _spatial(h, kh, sh, dh, padding), _spatial(w, kw, sw, dw, padding)
        bias = bool(cfg.get("use_bias", True))
        if cls == "Conv2D":
            f = _int(cfg.get("filters"), "filters")
            groups = _int(cfg.get("groups", 1), "groups")
            if c % groups or f % groups:
                raise _Bad("groups must divide the channels and filters")
            return (oh, ow, f), kh * kw * (c // groups) * f + (f if bias else 0)
        m = _int(cfg.get("depth_multiplier", 1), "depth_multiplier")
        if cls == "DepthwiseConv2D":
            return (oh, ow, c * m), kh * kw * c * m + (c * m if bias else 0)
        f = _int(cfg.get("filters"), "filters")
        return (oh, ow, f), kh * kw * c * m + c * m * f + (f if bias else 0)
    if cls == "Dense":
        if not shape:
            raise _Bad("Dense needs an input with features")
        units = _int(cfg.get("units"), "units")
        d = _known(shape[-1], "the Dense input size")
        return (*shape[:-1], units), d * units + (units if cfg.get("use_bias", True) else 0)
    if cls == "BatchNormalization":
        return shape, 4 * _known(shape[-1] if shape else None, "the normalised axis")
    if cls in ("MaxPooling2D", "AveragePooling2D"):
        _need_rank(shape, 3, cls)
        ph, pw = _pair(cfg.get("pool_size", 2), "pool_size")
        strides = cfg.get("strides")
        sh, sw = _pair(strides, "strides") if strides is not None else (ph, pw)
        padding = cfg.get("padding", "valid")
        return (_spatial(shape[0], ph, sh, 1, padding), _spatial(shape[1], pw, sw, 1, padding), shape[2]), 0
    if cls in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        _need_rank(shape, 3, cls)
        return ((1, 1, shape[2]) if cfg.get("keepdims") else (shape[2],)), 0
    if cls == "Flatten":
        if any(d is None for d in shape):
            raise _Bad("Flatten needs a fixed input size")
        return (math.prod(shape) if shape else 1,), 0
    if cls == "Reshape":
        target = cfg.get("target_shape")
        if not isinstance(target, list | tuple) or not target:
            raise _Bad("target_shape must be a list")
        if any(d is None for d in shape):
            raise _Bad("Reshape needs a fixed input size")
        total = math.prod(shape) if shape else 1
        free = [i for i, d in enumerate(target) if d == -1]
        fixed = [_int(d, "target_shape") for d in target if d != -1]
        if len(free) > 1:
            raise _Bad("target_shape may have one -1")
        known = math.prod(fixed) if fixed else 1
        if free:
            if total % known:
                raise _Bad("target_shape does not fit the input")
            out = list(target)
            out[free[0]] = total // known
            return tuple(out), 0
        if known != total:
            raise _Bad("target_shape does not fit the input")
        return tuple(fixed), 0
    if cls in ("ZeroPadding2D", "Cropping2D"):
        _need_rank(shape, 3, cls)
        raw = cfg.get("padding" if cls == "ZeroPadding2D" else "cropping", 1)
        if isinstance(raw, list | tuple) and raw and isinstance(raw[0], list | tuple):
            if len(raw) != 2:
                raise _Bad("padding must be two pairs")
            (t, b), (left, r) = _pair(raw[0], "padding", low=0), _pair(raw[1], "padding", low=0)
        else:
            (t, left) = _pair(raw, "padding", low=0)
            b, r = t, left
        sign = 1 if cls == "ZeroPadding2D" else -1
        out = []
        for d, extra in ((shape[0], t + b), (shape[1], left + r)):
            if d is None:
                out.append(None)
                continue
            v = d + sign * extra
            if v < 1:
                raise _Bad("cropping leaves nothing")
            out.append(v)
        return (*out, shape[2]), 0
    if cls in ("Add", "Multiply", "Average", "Maximum", "Minimum", "Subtract"):
        if len(inputs) < 2 or any(s != shape for s in inputs):
            raise _Bad(f"{cls} needs two or more inputs of the same shape")
        return shape, 0
    if cls == "Concatenate":
        axis = cfg.get("axis", -1)
        if len(inputs) < 2 or axis not in (-1, len(shape) - 1) or any(len(s) != len(shape) or s[:-1] != shape[:-1] for s in inputs):
            raise _Bad("Concatenate needs inputs that differ only in their last axis")
        return (*shape[:-1], sum(_known(s[-1], "the channels") for s in inputs)), 0
    raise _Bad(f"layer type {cls} is not supported")


def _input_shape(entry_cfg: dict, what: str) -> tuple:
    for key in ("batch_input_shape", "batch_shape"):
        if key in entry_cfg:
            raw = entry_cfg[key]
            if not isinstance(raw, list | tuple) or not raw:
                raise _Bad(f"{key} must be a list")
            return _dims(raw[1:], f"the input shape of {what}")
    if "input_shape" in entry_cfg:
        return _dims(entry_cfg["input_shape"], f"the input shape of {what}")
    raise _Bad("the model's input size is not given")


def _check_input(shape: tuple, limits: Limits) -> None:
    if len(shape) != 3:
        raise DisplasiaError(f"The model input has rank {len(shape) + 1} (with the batch); an image input "
                             "(batch, height, width, 3) is required.")
    h, w, c = shape
    if c != 3:
        raise DisplasiaError(f"The model input has {c} channels; an RGB image input (height, width, 3) is required.")
    if h is None or w is None:
        raise DisplasiaError("The model input size must be fixed (height and width given).")
    if h * w > limits.max_input_pixels:
        raise DisplasiaError(f"The model input is {h} x {w} pixels, more than the limit of {limits.max_input_pixels:,} "
                             "(setting models.max_input_pixels).")


def _build_input(entry: dict) -> tuple | None:
    bc = entry.get("build_config")
    if isinstance(bc, dict) and isinstance(bc.get("input_shape"), list | tuple) and bc["input_shape"]:
        raw = bc["input_shape"]
        if isinstance(raw[0], list | tuple):  # several inputs: count the first
            raw = raw[0]
        return _dims(raw[1:], "build_config input_shape")
    return None


class _Walk:
    def __init__(self, limits: Limits):
        self.limits = limits
        self.params = 0

    def layer(self, entry, inputs: list) -> tuple:
        if not isinstance(entry, dict):
            raise DisplasiaError("The architecture file has a malformed layer entry.")
        cls = entry.get("class_name")
        cfg = entry.get("config")
        if not isinstance(cfg, dict):
            cfg = {}
        name = cfg.get("name", entry.get("name", cls))
        name = str(name)[:60]
        try:
            shape, params = _layer_output(str(cls), cfg, inputs)
            declared = _build_input(entry)
            if declared is not None and declared != inputs[0] and all(d is not None for d in declared):
                # Keras builds the layer from build_config first: count what that allocates.
                _, built = _layer_output(str(cls), cfg, [declared] + inputs[1:])
                params = max(params, built)
        except _Bad as exc:
            raise DisplasiaError(f"Layer '{name}' ({cls}): {exc}.") from None
        except (TypeError, ValueError, OverflowError) as exc:
            raise DisplasiaError(f"Layer '{name}' ({cls}) has a malformed configuration ({exc.__class__.__name__}).") from None
        self.params += params
        if self.params > self.limits.max_params:
            raise DisplasiaError(f"The model declares {_count(self.params)} parameters, more than the limit of "
                                 f"{self.limits.max_params:,} (setting models.max_params).")
        if all(d is not None for d in shape) and math.prod(shape) > self.limits.max_layer_output:
            raise DisplasiaError(f"Layer '{name}' would output {_count(math.prod(shape))} values per image, more than "
                                 f"{self.limits.max_layer_output:,}.")
        return shape


def _keras_history(arg):
    if isinstance(arg, dict):
        hist = (arg.get("config") or {}).get("keras_history")
        if isinstance(hist, list | tuple) and hist and isinstance(hist[0], str):
            return hist[0]
    raise _Bad("a malformed inbound node")


def _sources(node) -> list:
    """Layer names feeding one inbound node (Keras 2 nested lists or Keras 3 dicts)."""
    if isinstance(node, dict):
        args = node.get("args")
        if not isinstance(args, list):
            raise _Bad("a malformed inbound node")
        flat = args[0] if len(args) == 1 and isinstance(args[0], list) else args
        return [_keras_history(a) for a in flat]
    if isinstance(node, list):
        out = []
        for item in node:
            if isinstance(item, list | tuple) and item and isinstance(item[0], str):
                out.append(item[0])
            elif isinstance(item, str):
                out.append(item)
            else:
                raise _Bad("a malformed inbound node")
        return out
    raise _Bad("a malformed inbound node")


def _io_names(value) -> list:
    if not value:
        return []
    if not isinstance(value, list):
        raise _Bad("malformed input_layers/output_layers")
    items = [value] if isinstance(value[0], str) else value
    out = []
    for item in items:
        if isinstance(item, list | tuple) and item and isinstance(item[0], str):
            out.append(item[0])
        else:
            raise _Bad("malformed input_layers/output_layers")
    return out


def check_config(config, limits: Limits | None = None) -> dict:
    """Check a parsed Keras 2 or Keras 3 model config; returns ``{"params", "input_shape"}``.

    Raises DisplasiaError when it is malformed, its input is not a fixed-size RGB image
    within ``max_input_pixels``, or it declares more than ``max_params`` parameters.
    """
    limits = limits or Limits()
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise DisplasiaError("The architecture file does not describe a Keras model.")
    kind = config["class_name"]
    body = config.get("config", {})
    walk = _Walk(limits)
    try:
        if kind == "Sequential":
            entries = body if isinstance(body, list) else (body.get("layers") if isinstance(body, dict) else None)
            if not isinstance(entries, list) or not entries:
                raise DisplasiaError("The architecture file has no layers.")
            first = entries[0] if isinstance(entries[0], dict) else {}
            first_cfg = first.get("config") if isinstance(first.get("config"), dict) else {}
            try:
                shape = _input_shape(first_cfg, "the first layer")
            except _Bad:
                build = _build_input(first)
                if build is None and isinstance(body, dict) and isinstance(body.get("build_input_shape"), list | tuple):
                    build = _dims(body["build_input_shape"][1:], "build_input_shape")
                if build is None:
                    raise
                shape = build
            _check_input(shape, limits)
            input_shape = shape
            for entry in entries:
                if isinstance(entry, dict) and entry.get("class_name") == "InputLayer":
                    continue
                shape = walk.layer(entry, [shape])
        elif kind in ("Model", "Functional"):
            if not isinstance(body, dict) or not isinstance(body.get("layers"), list) or not body["layers"]:
                raise DisplasiaError("The architecture file has no layers.")
            shapes = {}
            input_shape = None
            for entry in body["layers"]:
                if not isinstance(entry, dict):
                    raise DisplasiaError("The architecture file has a malformed layer entry.")
                cfg = entry.get("config") if isinstance(entry.get("config"), dict) else {}
                name = entry.get("name", cfg.get("name"))
                if not isinstance(name, str):
                    raise DisplasiaError("A layer of the architecture file has no name.")
                if name in shapes:
                    raise DisplasiaError(f"Two layers are named '{name[:60]}'.")
                if entry.get("class_name") == "InputLayer":
                    shapes[name] = _input_shape(cfg, f"input '{name[:60]}'")
                    _check_input(shapes[name], limits)
                    input_shape = input_shape or shapes[name]
                    continue
                inbound = entry.get("inbound_nodes")
                if not isinstance(inbound, list) or len(inbound) != 1:
                    raise DisplasiaError(f"Layer '{name[:60]}' is shared or unconnected; only simple graphs are supported.")
                sources = _sources(inbound[0])
                if not sources:
                    raise DisplasiaError(f"Layer '{name[:60]}' has no input.")
                missing = [s for s in sources if s not in shapes]
                if missing:
                    raise DisplasiaError(f"Layer '{name[:60]}' reads from unknown layer '{missing[0][:60]}'.")
                shapes[name] = walk.layer(entry, [shapes[s] for s in sources])
            ins, outs = _io_names(body.get("input_layers")), _io_names(body.get("output_layers"))
            if len(ins) != 1 or len(outs) != 1 or ins[0] not in shapes or outs[0] not in shapes:
                raise DisplasiaError("Only models with one image input and one output are supported.")
            if input_shape is None:
                raise DisplasiaError("The architecture file has no input layer.")
        else:
            raise DisplasiaError(f"Unsupported model type '{kind[:40]}' (expected Sequential or a functional Model).")
    except _Bad as exc:
        raise DisplasiaError(f"The architecture file is malformed: {exc}.") from None
    return {"params": walk.params, "input_shape": input_shape}


def check_keras_bytes(data: bytes, name: str, limits: Limits | None = None) -> dict:
    """Parse + check a JSON architecture given as bytes (the .json path and uploads)."""
    limits = limits or Limits()
    config = load_json(data, name, limits)
    check_config(config, limits)
    return config


def open_h5_bytes(data: bytes):
    """An ``h5py.File`` on bytes in memory (for the weights inside a .keras archive)."""
    import h5py

    return h5py.File(io.BytesIO(data), "r")
