"""Which models a session may pick, each named truthfully and listed once.

A model is identified by its file key (``core.scores.ScoreStore.model_key``: the hash of its
files, no TensorFlow). That key travels in the URL (``?model=`` first 16 hex digits), so a
shared link opens the same model, or says that this server does not have it.
"""
from __future__ import annotations

import threading
from pathlib import Path

import streamlit as st

from core.config import DEMO_MODEL_JSON, data_roots
from core.datasets import confinement_problem
from core.errors import DisplasiaError
from ui import resources
from ui.resources import ModelChoice

UPLOADED = "uploaded_models"
URL_KEY_LENGTH = 16

_shared_lock = threading.Lock()
_shared_uploads: dict = {}          # model key -> ModelChoice uploaded in any session of this server


def default_model() -> ModelChoice:
    """The bundled demo, or the model the server is configured with (``models.path``)."""
    from core.config import demo_model_path

    path, weights = demo_model_path()
    if Path(path).resolve() == DEMO_MODEL_JSON.resolve():
        return ModelChoice("Demo DisplasiaNet (bundled)", str(path), str(weights) if weights else None, "bundled")
    label = f"Configured: {Path(path).name}" + (f" + {Path(weights).name}" if weights else "")
    return ModelChoice(label, str(path), str(weights) if weights else None, "configured")


@st.cache_data(ttl=60, show_spinner=False)
def _found(roots: tuple) -> list:
    found = []
    for root in map(Path, roots):
        if not root.is_dir():
            continue
        inside = [Path(r).resolve() for r in roots]  # a link whose real path leaves the roots is not offered
        for path in sorted(root.rglob("*.keras")):
            if confinement_problem(path, inside) is None:
                found.append(ModelChoice(f"{path.relative_to(root)}", str(path)))
        for path in sorted(root.rglob("*.json")):
            weights = next((w for w in (path.with_name(path.stem + "_weights.h5"), path.with_suffix(".h5"))
                            if w.is_file()), None)
            if weights and confinement_problem(path, inside) is None and confinement_problem(weights, inside) is None:
                found.append(ModelChoice(f"{path.relative_to(root)} + {weights.name}", str(path), str(weights)))
    return found


def key_of(choice: ModelChoice) -> str | None:
    try:
        return resources.model_key(choice)
    except DisplasiaError:
        return None


def available() -> dict:
    """``{model key: ModelChoice}`` in picker order: default, models below the data roots,
    this session's uploads. The same files, or (once loaded) the same network in other
    files, are listed once, under the first (most specific) name."""
    candidates = [default_model()] + _found(tuple(str(r) for r in data_roots())) + list(st.session_state.get(UPLOADED, []))
    store = resources.score_store()
    out, networks, unknown = {}, set(), []
    for choice in candidates:
        key = key_of(choice)
        if key is None or key in out:
            continue
        network = store.content_hash(key)
        if network is None:
            unknown.append(choice)
        if network is not None and network in networks and choice.kind not in ("bundled", "configured", "uploaded"):
            continue
        if network is not None:
            networks.add(network)
        out[key] = choice
    if unknown:
        resources.identify_later(unknown)
    return out


def remember_upload(choice: ModelChoice) -> str:
    """Add an uploaded model to this session's list (once) and to the server's shared
    table, so a link naming it works in another browser while the file exists."""
    key = resources.model_key(choice)
    mine = st.session_state.setdefault(UPLOADED, [])
    if not any(key_of(c) == key for c in mine):
        mine.append(choice)
    with _shared_lock:
        _shared_uploads[key] = choice
    return key


def find(prefix: str) -> ModelChoice | None:
    """The model whose key starts with ``prefix`` (from a URL), or None."""
    if not prefix or len(prefix) < 8 or any(c not in "0123456789abcdef" for c in prefix):
        return None
    for key, choice in available().items():
        if key.startswith(prefix):
            return choice
    with _shared_lock:
        shared = dict(_shared_uploads)
    for key, choice in shared.items():
        if key.startswith(prefix) and Path(choice.path).is_file():
            remember_upload(choice)
            return choice
    return None


def url_key(choice: ModelChoice) -> str | None:
    key = key_of(choice)
    return key[:URL_KEY_LENGTH] if key else None


def metrics_generator(path) -> str:
    """The generator version the demo model was trained on (metrics.json), or "?"."""
    import json

    try:
        return str(json.loads(Path(path).read_text()).get("generator_version", "?"))
    except (OSError, ValueError, AttributeError):
        return "?"


def metrics_table(path):
    """The demo model's metrics (metrics.json) as one row per operating point."""
    import json

    import pandas as pd

    metrics = json.loads(Path(path).read_text())
    rows = []
    for key, title in (("at_default_threshold", "study threshold"), ("at_youden", "ROC optimum (Youden)"),
                       ("at_0.5", "0.5")):
        point = metrics.get(key)
        if isinstance(point, dict):
            rows.append({"operating point": title, "threshold": round(float(point.get("threshold", float("nan"))), 3),
                         **{m: f"{float(point[m]):.1%}" for m in ("accuracy", "sensitivity", "specificity") if m in point},
                         **{m.upper(): point[m] for m in ("tp", "tn", "fp", "fn") if m in point}})
    table = pd.DataFrame(rows)
    if "roc_auc" in metrics:
        table["ROC AUC"] = f"{float(metrics['roc_auc']):.3f}"
    return table
