"""Cached calls into core/: models in ``st.cache_resource``, arrays in ``st.cache_data``."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from core.datasets import scan_dataset
from core.preprocess import load_rgb

_warmup_started = False
_warmup_lock = threading.Lock()


def start_tensorflow_warmup() -> None:
    """Import TensorFlow in a background thread, once per server process.

    The first page renders while TensorFlow (several seconds) loads; pages that need the
    model then find it imported already.
    """
    global _warmup_started
    with _warmup_lock:
        if _warmup_started:
            return
        _warmup_started = True

    def _import():
        import keras  # noqa: F401
        import tensorflow  # noqa: F401

    threading.Thread(target=_import, name="tensorflow-warmup", daemon=True).start()


@dataclass(frozen=True)
class ModelChoice:
    """A model file (and its weights) the user picked; hashable, so it can key caches."""

    label: str
    path: str
    weights: str | None = None

    def stamp(self) -> tuple:
        """Modification times: a replaced file gets a new cache entry."""
        files = [self.path] + ([self.weights] if self.weights else [])
        return tuple(Path(f).stat().st_mtime_ns if Path(f).exists() else 0 for f in files)


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def load_model(choice: ModelChoice, stamp: tuple):
    from core.model_io import load_model as core_load

    return core_load(choice.path, choice.weights)


@st.cache_data(show_spinner=False, max_entries=16)
def dataset(root: str, stamp: float):
    return scan_dataset(root)


def dataset_stamp(root: str) -> float:
    path = Path(root)
    return path.stat().st_mtime if path.exists() else 0.0


@st.cache_data(show_spinner=False, max_entries=32)
def scores(model_hash: str, root: str, names: tuple, interpolation: str, _loaded, _paths: tuple) -> np.ndarray:
    """P(normal) for every cell of a dataset; keyed by the model's content hash."""
    from core.predict import predict_files

    bar = st.progress(0.0, text="Scoring cells…")
    out = predict_files(_loaded, list(_paths), interpolation=interpolation,
                        progress=lambda done, total: bar.progress(done / total, text=f"Scoring cells… {done}/{total}"))
    bar.empty()
    return out


@st.cache_data(show_spinner=False, max_entries=2048)
def thumbnail(path: str, size: int = 160) -> np.ndarray:
    from PIL import Image

    image = Image.fromarray(load_rgb(path))
    image.thumbnail((size, size))
    return np.asarray(image)


@st.cache_data(show_spinner=False, max_entries=256)
def original(path: str) -> np.ndarray:
    return load_rgb(path)
