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
        from core.runtime import import_tensorflow

        import_tensorflow()

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


@st.cache_data(show_spinner=False, max_entries=1024)
def cell_score(model_hash: str, path: str, interpolation: str, _loaded) -> float:
    from core.predict import predict_files

    return float(predict_files(_loaded, [path], interpolation=interpolation)[0])


def explanation_cache():
    """The on-disk explanation cache of the configured folder, shared by every session."""
    from core.config import cache_dir

    return _explanation_cache(str(cache_dir()))


@st.cache_resource
def _explanation_cache(folder: str):
    from core.cache import ExplanationCache

    return ExplanationCache(folder)


@st.cache_data(show_spinner="Segmenting into superpixels…", max_entries=64)
def superpixels(image_key: str, ratio: float, kernel_size: float, max_dist: float, sigma: float, seed: int,
                _image: np.ndarray) -> np.ndarray:
    from core.explain.lime import superpixels as quickshift

    return quickshift(_image, ratio=ratio, kernel_size=kernel_size, max_dist=max_dist, sigma=sigma, seed=seed)


@st.cache_data(show_spinner=False, max_entries=8)
def dataset_images(paths: tuple, size: tuple, interpolation: str) -> np.ndarray:
    """Every cell of a dataset preprocessed for the model, ``(N, H, W, 3)`` float32."""
    from core.preprocess import load_batch

    bar = st.progress(0.0, text="Loading cells…")
    out = np.empty((len(paths), *size, 3), np.float32)
    for start in range(0, len(paths), 16):
        out[start:start + 16] = load_batch(paths[start:start + 16], size, interpolation)
        bar.progress(min(start + 16, len(paths)) / len(paths), text=f"Loading cells… {min(start + 16, len(paths))}/{len(paths)}")
    bar.empty()
    return out


@st.cache_data(show_spinner=False, max_entries=8)
def channel_means(model_hash: str, paths: tuple, interpolation: str, _loaded) -> dict:
    from core.feature_stats import channel_means as core_means

    images = dataset_images(paths, _loaded.description.image_size, interpolation)
    bar = st.progress(0.0, text="Feature statistics…")
    out = core_means(_loaded, images, progress=lambda d, t: bar.progress(d / t, text=f"Feature statistics… {d}/{t}"))
    bar.empty()
    return out


def annotation_store():
    """The annotation database of the configured URL (``DISPLASIA_DB``)."""
    from core.config import database_url

    return _annotation_store(database_url())


@st.cache_resource
def _annotation_store(url: str):
    """One store per database URL, seeded once with the bundled demo annotations."""
    from core.annotations.store import AnnotationStore
    from core.config import DEMO_ANNOTATIONS_DIR

    store = AnnotationStore(url)
    if DEMO_ANNOTATIONS_DIR.is_dir():
        store.seed_from_dir(DEMO_ANNOTATIONS_DIR)
    return store


def regions(path: str, rgb: np.ndarray):
    """Cell / nucleus / cytoplasm masks of one image and where they come from."""
    from core.cell_regions import cell_regions
    from core.preprocess import image_hash

    annotations = annotation_store().latest_for_image(image_hash(Path(path)))
    return cell_regions(path, rgb, annotations)


def pathologist_totals(paths) -> list:
    """Signed total score of the latest annotation of each image (None when unannotated)."""
    from core.annotations.schema import latest_reading
    from core.preprocess import image_hash

    store = annotation_store()
    totals = []
    for path in paths:
        latest = latest_reading(store.latest_for_image(image_hash(Path(path))))
        totals.append(None if latest is None else latest.total)
    return totals


_warm_pool = None
_warm_jobs: dict = {}


def warm(key: tuple, jobs: list) -> None:
    """Compute ``jobs`` (callables) one after another in a background thread, once per ``key``.

    Used by "warm all methods": results land in the disk cache, so the pages open instantly.
    """
    global _warm_pool
    from concurrent.futures import ThreadPoolExecutor

    with _warmup_lock:
        if _warm_pool is None:
            _warm_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warm-methods")
        if key in _warm_jobs and not _warm_jobs[key].done():
            return

        def run_all():
            for job in jobs:
                job()

        _warm_jobs[key] = _warm_pool.submit(run_all)


def warm_status(key: tuple) -> str | None:
    job = _warm_jobs.get(key)
    if job is None:
        return None
    if not job.done():
        return "running"
    return "failed" if job.exception() else "done"
