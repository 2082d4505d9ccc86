"""Method panels: parameter widgets from the registry, cached computation with progress and a
stop button, the map on the cell, numbers and downloads."""
from __future__ import annotations

import json
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import streamlit as st

import core.display as cd
from core.display import DisplayOptions, png_bytes
from core.errors import DisplasiaError
from core.explain import cache_key, compute, get_method, method_names
from core.explain.base import Cancelled
from ui import auth, map_image, resources
from ui.display import digest, digest_of, map_picture
from ui.widgets import deferred_download, persistent, plain

#: session key holding, per method, the last request: cache key and whether it was a hit.
LOG = "explain_log"


def param_widgets(method: str, loaded, *, skip=(), columns: int = 3) -> dict:
    """One widget per registry parameter (URL key ``method.param``); returns the values."""
    spec = get_method(method)
    params = [p for p in spec.params if p.name not in skip]
    values = {}
    cols = st.columns(min(columns, max(len(params), 1)))
    for i, p in enumerate(params):
        key = f"{method}.{p.name}"
        with cols[i % len(cols)]:
            if p.kind == "layer":
                layers = list(loaded.description.feature_map_layers)
                default = loaded.description.cam_layer
                values[p.name] = persistent(st.selectbox, p.name, key, default, options=layers, help=p.help)
            elif p.kind == "choice":
                values[p.name] = persistent(st.selectbox, p.name, key, p.default, options=list(p.choices), help=p.help)
            elif p.kind == "int":
                default = p.default if p.default is not None else None
                values[p.name] = persistent(st.number_input, p.name, key, default, min_value=int(p.low), max_value=int(p.high),
                                            step=1, help=p.help, placeholder="default")
            else:
                values[p.name] = persistent(st.number_input, p.name, key, float(p.default), min_value=float(p.low),
                                            max_value=float(p.high), step=_step(p), format="%.3g", help=p.help)
    return values


def _step(p) -> float:
    span = float(p.high) - float(p.low)
    return 0.01 if span <= 1 else 0.1 if span <= 20 else 1.0


_REQUEST_KEYS: OrderedDict = OrderedDict()   # (model, pixels digest, request) -> cache key
_REQUEST_KEYS_LOCK = threading.Lock()


def request_key(loaded, images: np.ndarray, method: str, target: str, params: dict, *, cell_mask=None) -> str:
    """:func:`core.explain.cache_key`, remembered per model, pixels and request: a rerun of a
    page does not hash its images again (a dataset's are tens of MB; read-only arrays are
    digested once, see :func:`ui.display.digest_of`)."""
    memo = (id(loaded), getattr(loaded, "content_hash", None), digest_of(images), method, target,
            json.dumps(params, sort_keys=True, default=str), None if cell_mask is None else digest_of(cell_mask))
    with _REQUEST_KEYS_LOCK:
        if memo in _REQUEST_KEYS:
            _REQUEST_KEYS.move_to_end(memo)
            return _REQUEST_KEYS[memo]
    key = cache_key(loaded, images, method, target, params, cell_mask=cell_mask)
    with _REQUEST_KEYS_LOCK:
        _REQUEST_KEYS[memo] = key
        while len(_REQUEST_KEYS) > 2048:
            _REQUEST_KEYS.popitem(last=False)
    return key


def explanation(method: str, loaded, images: np.ndarray, target: str, params: dict, *, cell_mask=None,
                label: str | None = None, slot=None):
    """Compute through the shared disk cache; show progress; a Stop button interrupts.

    ``slot`` (an ``st.empty()``) holds the progress box while computing and one short line
    afterwards ("computed in 0.6 s"), so tiles in a grid keep their alignment.
    Returns the Explanation, or None when the user stopped the run or the input cannot be
    explained (the reason is shown as one line).
    """
    spec = get_method(method)
    cache = resources.explanation_cache()
    images = images if images.ndim == 4 else images[None]
    start = time.perf_counter()
    key = request_key(loaded, images, method, target, params, cell_mask=cell_mask)
    hit = _remembered(key)
    if hit is None:
        hit = cache.get(key)
        if hit is not None:
            _remember(key, hit)
    auth.audit_explain(method, target, params, key, from_cache=hit is not None)
    log = st.session_state.setdefault(LOG, {})
    if hit is not None:
        log[method] = {"key": key, "from_cache": True, "seconds": time.perf_counter() - start}
        if slot is not None:
            slot.caption(f"from cache in {log[method]['seconds'] * 1000:.0f} ms")
        return hit
    if len(images) > 1:  # dataset-wide work counts against the session's budget (quotas.dataset_work_cells)
        from ui.quota import charge

        charge(len(images), label or spec.title)
    box = slot.container() if slot is not None else st.container()
    stop_key = f"stop:{method}:{key[:12]}"
    if st.session_state.get(stop_key):
        box.warning(f"{spec.title} stopped.")
        if not box.button(f"Run {spec.title}", key=f"run:{method}"):
            return None
    with box.status(f"Computing {label or spec.title}…", expanded=True) as status:
        st.button("Stop", key=stop_key, help="Interrupts the computation after the current batch.")
        bar = st.progress(0.0)

        def progress(done, total):
            bar.progress(min(done / max(total, 1), 1.0), text=f"{done}/{total}")

        try:
            exp = compute(method, loaded, images, target, params=params, cache=cache, progress=progress, cell_mask=cell_mask)
        except Cancelled:
            status.update(label=f"{spec.title} stopped", state="error")
            return None
        except DisplasiaError as exc:  # e.g. an empty outline: one line on this tile, the page goes on
            status.update(label=f"{spec.title}: not computed", state="error")
            box.error(plain(str(exc)))
            return None
        seconds = time.perf_counter() - start
        status.update(label=f"{label or spec.title}: computed in {seconds:.1f} s", state="complete", expanded=False)
    if slot is not None:
        slot.caption(f"computed in {seconds:.1f} s")
    log[method] = {"key": key, "from_cache": False, "seconds": seconds}
    _remember(key, exp)
    return exp


#: The most recent explanations read or computed in this process, by cache key: a page
#: switch redraws them without reading the disk cache again (results are immutable).
_MEMO: OrderedDict = OrderedDict()
_MEMO_SIZE = 96
_MEMO_LOCK = threading.Lock()
_KEYS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _remembered(key: str):
    with _MEMO_LOCK:
        exp = _MEMO.get(key)
        if exp is not None:
            _MEMO.move_to_end(key)
        return exp


def _remember(key: str, exp) -> None:
    with _MEMO_LOCK:
        _MEMO[key] = exp
        _MEMO.move_to_end(key)
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
        _KEYS[exp] = key


def key_of(exp) -> str | None:
    """The cache key an explanation was read or computed under (None if unknown)."""
    with _MEMO_LOCK:
        return _KEYS.get(exp)


def empty_positive(exp, index: int = 0) -> bool:
    """A positive-only map that is all zero where that is a real answer (CAMs)."""
    spec = get_method(exp.method)
    return bool(spec.empty_positive_ok and exp.params.get("evidence", "positive") == "positive"
                and not np.asarray(exp.maps[index]).any())


def empty_map_note(exp, target: str, *, compact: bool = False) -> None:
    """Say why a positive-only map is empty where that is a real answer (CAMs)."""
    if not empty_positive(exp):
        return
    title = get_method(exp.method).title
    if compact:
        st.caption(f"Empty: nothing supports '{target}' at this layer (a real answer, not a failure).")
    else:
        st.info(f"Nothing in this cell supports '{target}' at this layer: the {title} map is empty. "
                "Choose 'signed' evidence to see the evidence against it.")


def cache_note(method: str) -> None:
    entry = st.session_state.get(LOG, {}).get(method)
    if entry:
        how = "from cache" if entry["from_cache"] else "computed"
        st.caption(f"{how} in {entry['seconds'] * 1000:.0f} ms · key {entry['key'][:10]}")


@dataclass(frozen=True)
class MapView:
    """One map ready to draw: values under the one sign convention, units, scale, verdict."""

    values: np.ndarray
    sign: str
    units: object  # core.display.Units
    scale: object  # core.display.Scale
    assessment: object  # core.display.Assessment
    family: str


def map_view(exp, options: DisplayOptions, *, index: int = 0, values=None, sign: str | None = None,
             limit: float | None = None) -> MapView:
    """Everything the display needs about one map (see :mod:`core.display`).

    ``sign`` overrides the registry's for ``values`` given by the page ("score": a raw score
    map such as occlusion's score with the patch in place, drawn over its own range).
    """
    data, spec_sign = cd.evidence(exp, index, values)
    sign = sign or spec_sign
    units = cd.units_of(exp, sign=sign if sign != "score" else None)
    spec = get_method(exp.method)
    reference = 0.0
    if units.space:
        reference = float(cd.extra(exp, "baseline_score", index, float(exp.baseline[index])))
    shown = cd.shown_values(data, sign, options)
    assessment = cd.assess(shown if sign != "score" else shown - reference, units, reference=reference)
    if sign == "score":  # the raw score map: its own range, the score's units, flat when within float noise
        assessment = cd.Assessment("flat", assessment.peak, assessment.resolution, assessment.message) \
            if assessment.state == "flat" else cd.Assessment("ok", assessment.peak, assessment.resolution)
        quantity = units.quantity or "score"
        units = cd.Units(f"{quantity} with the {units.region} hidden", f"{quantity} with the {units.region} hidden",
                         units.quantity, units.space, None, units.region)
        low, high = float(np.min(data)), float(np.max(data))
        scale = cd.Scale(low, high if high > low else low + max(assessment.resolution, 1e-12),
                         options.cmap if options.cmap != "auto" else "viridis", False)
    else:
        scale = cd.scale_for(data, sign, options, limit=limit)
    return MapView(data, sign, units, scale, assessment, spec.family)


def show_map(exp, rgb: np.ndarray, options: DisplayOptions, *, index: int = 0, values=None, title: str = "",
             colorbar_title: str = "", marks=None, height: int = 430, max_side: int = 299, key: str | None = None,
             sign: str | None = None, limit: float | None = None, compact: bool = False, view: MapView | None = None,
             brief: bool | None = None):
    """The map on the cell in the target's units, with what a reader must know beside it:
    empty (a real answer), flat (never stretched), negligible (drawn faint), saturated
    (with a button that switches the method to the logit). ``compact``: colour bar below the
    map; ``brief`` (default: ``compact``): notes as one-line captions. Returns the :class:`MapView`."""
    view = view or map_view(exp, options, index=index, values=values, sign=sign, limit=limit)
    state = view.assessment.state
    drawn = np.zeros_like(view.values) if state == "flat" and view.sign != "score" else view.values
    known = key_of(exp)
    values_key = f"{known}:{index}:{view.sign}:{state}" if known and values is None else None
    picture = map_picture(rgb, drawn, options, sign=view.sign, units=view.units, scale=view.scale, title=title,
                          colorbar_title=colorbar_title, marks=marks, height=height, max_side=max_side,
                          faint=state == "negligible", target=exp.target if view.sign != "score" else "",
                          compact=compact, values_key=values_key)
    map_image.show(picture, key=key or f"fig:{exp.method}:{title}")
    map_notes(exp, view, index=index, compact=compact if brief is None else brief, key=key or f"{exp.method}:{title}")
    return view


def map_notes(exp, view: MapView, *, index: int = 0, compact: bool = False, key: str = "") -> None:
    """Empty / flat / negligible / saturated notes of one drawn map."""
    if empty_positive(exp, index) and view.sign != "score":
        empty_map_note(exp, exp.target, compact=compact)
    elif view.assessment.state != "ok":
        (st.caption if compact or view.assessment.state == "negligible" else st.warning)(view.assessment.message)
    if cd.is_saturated(exp, index) and view.sign != "score":
        spec = get_method(exp.method)
        probability = float(exp.baseline[index])
        st.warning(f"Saturated: P({exp.target}) = {probability:.7f}, within 1e-6 of {round(probability)}; "
                   "probability changes are invisible here. The logit (log-odds) still moves.")
        if any(p.name == "score" for p in spec.params):
            st.button("Show in logit units", key=f"logit:{key}", on_click=_use_logit, args=(exp.method,),
                      help=f"Sets {spec.title}'s score parameter to logit.")


def _use_logit(method: str) -> None:
    st.session_state[f"{method}.score"] = "logit"
    st.session_state[f"w:{method}.score"] = "logit"


def downloads(exp, rgb: np.ndarray, options: DisplayOptions, stem: str, *, index: int = 0, values=None,
              sign: str | None = None, limit: float | None = None) -> None:
    """Overlay PNG (as drawn), raw map .npy and parameters JSON (with units and scale) of one map.

    The files are made when a button is clicked, not on every rerun (encoding the PNG alone
    cost more than drawing the page)."""
    raw = np.asarray(exp.maps[index] if values is None else values, dtype=np.float32)

    def view():
        return map_view(exp, options, index=index, values=values, sign=sign, limit=limit)

    def npy() -> bytes:
        import io

        buffer = io.BytesIO()
        np.save(buffer, raw, allow_pickle=False)
        return buffer.getvalue()

    def meta() -> str:
        v = view()
        return json.dumps({
            "method": exp.method, "target": exp.target, "params": dict(exp.params), "version": exp.version,
            "baseline": float(exp.baseline[index]), "display": options.__dict__, "image": stem,
            "sign": v.sign, "units": v.units.title, "scale": [v.scale.low, v.scale.high],
            "colour_map": v.scale.cmap, "assessment": v.assessment.state,
            "note": (f"Empty: nothing supports '{exp.target}' here (a real answer)" if empty_positive(exp, index)
                     else v.assessment.message),
            "timings": {k: float(t) for k, t in exp.timings.items()}}, indent=1, default=str)

    def picture() -> bytes:
        v = view()
        drawn = np.zeros_like(v.values) if v.assessment.state == "flat" and v.sign != "score" else v.values
        return png_bytes(cd.overlay(rgb, drawn, options, sign=v.sign, scale=v.scale,
                                    faint=v.assessment.state == "negligible"))

    cols = st.columns(3)
    name = f"{stem}_{exp.method}_{exp.target}"
    known = key_of(exp) if values is None else None
    tag = f"{known[:8]}{index}" if known else digest(raw)[:8]
    # Short labels: three buttons fit a third of the page without being cut; the help says more.
    deferred_download(cols[0], "PNG", picture, f"{name}.png", "image/png", key=f"dl_png:{name}:{tag}",
                      help="The overlay as drawn (same scale and colours).")
    deferred_download(cols[1], "NPY", npy, f"{name}.npy", "application/octet-stream", key=f"dl_npy:{name}:{tag}",
                      help="The raw map, float32, model resolution.")
    deferred_download(cols[2], "JSON", meta, f"{name}.json", "application/json", key=f"dl_json:{name}:{tag}",
                      help="Method, parameters, units, colour scale and timings.")


#: Image methods shown on the Compare page (registry flag ``compare``), with the page that explores each.
COMPARE = tuple((name, get_method(name).page) for name in method_names(compare=True))


def current_params(method: str) -> dict:
    """The parameters a method's own page last used in this session (defaults otherwise)."""
    spec = get_method(method)
    return {p.name: st.session_state[f"{method}.{p.name}"] for p in spec.params if f"{method}.{p.name}" in st.session_state}
