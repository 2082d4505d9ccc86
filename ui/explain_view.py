"""Method panels: parameter widgets from the registry, cached computation with progress and a
stop button, the map on the cell, numbers and downloads."""
from __future__ import annotations

import json
import time

import numpy as np
import streamlit as st

from core.display import DisplayOptions, overlay, png_bytes
from core.explain import cache_key, compute, get_method, method_names
from core.explain.base import Cancelled
from ui import resources
from ui.display import map_figure
from ui.widgets import persistent

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


def explanation(method: str, loaded, images: np.ndarray, target: str, params: dict, *, cell_mask=None,
                label: str | None = None):
    """Compute through the shared disk cache; show progress; a Stop button interrupts.

    Returns the Explanation, or None when the user stopped the run.
    """
    spec = get_method(method)
    cache = resources.explanation_cache()
    images = images if images.ndim == 4 else images[None]
    key = cache_key(loaded, images, method, target, params, cell_mask=cell_mask)
    start = time.perf_counter()
    hit = cache.get(key)
    log = st.session_state.setdefault(LOG, {})
    if hit is not None:
        log[method] = {"key": key, "from_cache": True, "seconds": time.perf_counter() - start}
        return hit
    stop_key = f"stop:{method}:{key[:12]}"
    if st.session_state.get(stop_key):
        st.warning(f"{spec.title} stopped. Change a parameter, or press Run to compute it.")
        if not st.button(f"Run {spec.title}", key=f"run:{method}"):
            return None
    with st.status(f"Computing {label or spec.title}…", expanded=True) as status:
        st.button("Stop", key=stop_key, help="Interrupts the computation after the current batch.")
        bar = st.progress(0.0)

        def progress(done, total):
            bar.progress(min(done / max(total, 1), 1.0), text=f"{done}/{total}")

        try:
            exp = compute(method, loaded, images, target, params=params, cache=cache, progress=progress, cell_mask=cell_mask)
        except Cancelled:
            status.update(label=f"{spec.title} stopped", state="error")
            return None
        seconds = time.perf_counter() - start
        status.update(label=f"{label or spec.title}: computed in {seconds:.1f} s", state="complete", expanded=False)
    log[method] = {"key": key, "from_cache": False, "seconds": seconds}
    return exp


def empty_map_note(exp, target: str) -> None:
    """Say why a positive-only map is empty where that is a real answer (CAMs)."""
    spec = get_method(exp.method)
    if spec.empty_positive_ok and exp.params.get("evidence", "positive") == "positive" and not exp.maps[0].any():
        st.info(f"Nothing in this cell supports '{target}' at this layer: the {spec.title} map is empty. "
                "Choose 'signed' evidence to see the evidence against it.")


def cache_note(method: str) -> None:
    entry = st.session_state.get(LOG, {}).get(method)
    if entry:
        how = "from cache" if entry["from_cache"] else "computed"
        st.caption(f"{how} in {entry['seconds'] * 1000:.0f} ms · key {entry['key'][:10]}")


def show_map(exp, rgb: np.ndarray, options: DisplayOptions, *, index: int = 0, values=None, title: str = "",
             colorbar_title: str = "", marks=None, height: int = 430, max_side: int = 299, key: str | None = None) -> None:
    values = exp.maps[index] if values is None else values
    fig = map_figure(rgb, values, options, title=title, colorbar_title=colorbar_title, marks=marks,
                     height=height, max_side=max_side)
    st.plotly_chart(fig, key=key or f"fig:{exp.method}:{title}", config={"displaylogo": False})


def downloads(exp, rgb: np.ndarray, options: DisplayOptions, stem: str, *, index: int = 0, values=None) -> None:
    """Overlay PNG, raw map .npy and parameters JSON of one map."""
    import io

    values = exp.maps[index] if values is None else values
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(values, dtype=np.float32), allow_pickle=False)
    meta = {"method": exp.method, "target": exp.target, "params": dict(exp.params), "version": exp.version,
            "baseline": float(exp.baseline[index]), "display": options.__dict__, "image": stem,
            "timings": {k: float(v) for k, v in exp.timings.items()}}
    cols = st.columns(3)
    name = f"{stem}_{exp.method}_{exp.target}"
    cols[0].download_button("Overlay PNG", png_bytes(overlay(rgb, values, options)), f"{name}.png", "image/png",
                            key=f"dl_png:{name}:{id(values)}")
    cols[1].download_button("Raw map .npy", buffer.getvalue(), f"{name}.npy", "application/octet-stream",
                            key=f"dl_npy:{name}:{id(values)}")
    cols[2].download_button("Parameters JSON", json.dumps(meta, indent=1), f"{name}.json", "application/json",
                            key=f"dl_json:{name}:{id(values)}")


#: Image methods shown on the Compare page (registry flag ``compare``), with the page that explores each.
COMPARE = tuple((name, get_method(name).page) for name in method_names(compare=True))


def current_params(method: str) -> dict:
    """The parameters a method's own page last used in this session (defaults otherwise)."""
    spec = get_method(method)
    return {p.name: st.session_state[f"{method}.{p.name}"] for p in spec.params if f"{method}.{p.name}" in st.session_state}
