"""Cached calls into core/: models in ``st.cache_resource``, arrays in ``st.cache_data``."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from core.datasets import scan_dataset
from core.preprocess import load_rgb
from ui import server_tuning

_warmup_started = False
WARMUP_DELAY_S = 20.0
SCORING_DELAY_S = 3.0
_page_drawn = threading.Event()


def page_drawn() -> None:
    """Called by the gallery once its thumbnails are sent: TensorFlow may load now (warm-up,
    scoring job, prefetch all wait for this, each with its own time limit)."""
    _page_drawn.set()
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
        import time

        from core.runtime import import_tensorflow

        # Let the first page render first (the import holds the GIL for seconds): wait until a
        # page that needs no model has drawn, or WARMUP_DELAY_S at most.
        _page_drawn.wait(timeout=WARMUP_DELAY_S)
        time.sleep(0.5)
        import_tensorflow()
        server_tuning.freeze_long_lived()

    threading.Thread(target=_import, name="tensorflow-warmup", daemon=True).start()


@dataclass(frozen=True)
class ModelChoice:
    """A model file (and its weights) the user picked; hashable, so it can key caches.

    ``kind`` says where it comes from: "bundled" (the demo), "configured" (the server's
    ``models.path`` / ``DISPLASIA_MODEL``), "found" (below a data root) or "uploaded".
    """

    label: str
    path: str
    weights: str | None = None
    kind: str = "found"

    def stamp(self) -> tuple:
        """Modification times: a replaced file gets a new cache entry."""
        files = [self.path] + ([self.weights] if self.weights else [])
        return tuple(Path(f).stat().st_mtime_ns if Path(f).exists() else 0 for f in files)

    def same_files(self, other) -> bool:
        return other is not None and (self.path, self.weights) == (other.path, other.weights)


# ------------------------------------------------------------------ score store and model keys

_store_lock = threading.Lock()
_stores: dict = {}


def score_store():
    """The persistent score store (``core.scores``) in the configured cache folder."""
    from core.config import cache_dir
    from core.scores import ScoreStore

    folder = str(cache_dir())
    with _store_lock:
        if folder not in _stores:
            _stores[folder] = ScoreStore(Path(folder) / "scores.sqlite")
        return _stores[folder]


def model_key(choice: ModelChoice) -> str:
    """The model's identity from its files (no TensorFlow); DisplasiaError if unreadable."""
    from core.errors import DisplasiaError

    try:
        return score_store().model_key(choice.path, choice.weights)
    except OSError as exc:
        raise DisplasiaError(f"Model file not readable: {Path(exc.filename or choice.path).name}.") from None


# ------------------------------------------------------------------ models (shared by pages and background jobs)

_models: dict = {}                 # (path, weights, stamp) -> LoadedModel, most recent last
_model_locks: dict = {}
_MAX_MODELS = 4


def is_loaded(choice: ModelChoice) -> bool:
    return (choice.path, choice.weights, choice.stamp()) in _models


def loaded_model(choice: ModelChoice):
    """Load ``choice`` once per process (thread-safe; page threads and background jobs share it)."""
    from core.model_io import load_model as core_load

    key = (choice.path, choice.weights, choice.stamp())
    with _warmup_lock:
        if key in _models:
            return _models[key]
        lock = _model_locks.setdefault(key, threading.Lock())
    with lock:
        if key in _models:
            return _models[key]
        loaded = core_load(choice.path, choice.weights)
        with _warmup_lock:
            _models[key] = loaded
            dropped = len(_models) > _MAX_MODELS
            while len(_models) > _MAX_MODELS:
                _models.pop(next(iter(_models)))
        server_tuning.freeze_long_lived(collect_first=dropped)   # see there: no 0.3 s full collections
    try:
        score_store().remember_model(model_key(choice), loaded.description.content_hash)
    except Exception:  # noqa: BLE001 - remembering the content hash is a convenience only
        pass
    return loaded


def load_model(choice: ModelChoice, stamp: tuple = ()):
    """The loaded model, with a spinner the first time (TensorFlow may still be importing)."""
    if is_loaded(choice):
        return loaded_model(choice)
    with st.spinner(f"Loading the model {choice.label}…"):
        return loaded_model(choice)


#: A dataset with more images than this never decoded is shown at once, listed but unchecked;
#: its scoring job decodes each image once (remembered in the score store), then the listing is
#: redone without the unreadable ones. Smaller ones are checked before they are shown.
SYNC_CHECKS = 1000
_checked_folders: set = set()               # (root, stamp, store) whose images have all been checked


def dataset(root: str, stamp: float):
    """The dataset; each image's decode check is remembered in the score store, so reopening
    20,000 cells stats them instead of decoding them, and a large folder never opened before
    shows its first page at once (``Dataset.unchecked``; see SYNC_CHECKS)."""
    store = score_store()
    known = (root, stamp, str(store.path))
    if known not in _checked_folders:       # counting 20,000 paths on every rerun cost ~30 ms
        listed = _listed_dataset(root, stamp)
        if store.unchecked([c.path for c in listed.cells]) > SYNC_CHECKS:
            return listed
        if len(_checked_folders) > 64:
            _checked_folders.clear()
        _checked_folders.add(known)
    return _checked_dataset(root, stamp)


@st.cache_resource(show_spinner=False, max_entries=16)
def _listed_dataset(root: str, stamp: float):
    import dataclasses

    return dataclasses.replace(scan_dataset(root, check_images=False), unchecked=True)


@st.cache_resource(show_spinner=False, max_entries=16)
def _checked_dataset(root: str, stamp: float):
    import dataclasses

    from core.datasets import image_problem

    ds = dataclasses.replace(_listed_dataset(root, stamp), unchecked=False)   # the folder is read once
    problems = score_store().checked([c.path for c in ds.cells], image_problem)
    if not any(problems):
        return ds
    bad = [(c.name, p) for c, p in zip(ds.cells, problems) if p]
    cells = tuple(c for c, p in zip(ds.cells, problems) if not p)
    if not cells:
        from core.errors import DisplasiaError

        raise DisplasiaError(f"No readable images in {root}: {len(bad)} skipped (first: {bad[0][0]}: {bad[0][1]}).")
    return dataclasses.replace(ds, cells=cells, skipped=tuple(sorted(tuple(ds.skipped) + tuple(bad))))


def dataset_stamp(root: str) -> float:
    path = Path(root)
    return path.stat().st_mtime if path.exists() else 0.0


_hash_memo: dict = {}              # (paths tuple id, first, last, count) -> (time, hashes)
HASH_MEMO_S = 30.0


def image_hashes(paths) -> list[str]:
    """File hashes of the cells (read once, then known by path, size and time; the list of a
    dataset is kept in memory for 30 s, so reruns of a 20,000-cell gallery do not stat every file)."""
    import time

    paths = list(paths)
    key = (len(paths), paths[0] if paths else "", paths[-1] if paths else "", hash(tuple(paths)))
    memo = _hash_memo.get(key)
    if memo is not None and time.monotonic() - memo[0] < HASH_MEMO_S:
        return memo[1]
    # An unreadable file (in a listing not checked yet) gets a stand-in that matches no score;
    # the scoring job's check then drops it from the dataset.
    hashes = score_store().file_hashes(paths, on_error=lambda path, exc: f"unreadable:{path}")
    if len(_hash_memo) > 16:
        _hash_memo.clear()
    _hash_memo[key] = (time.monotonic(), hashes)
    return hashes


# ------------------------------------------------------------------ background scoring

@dataclass
class ScoringJob:
    """Scores of one dataset being computed in the background (see :func:`start_scoring`)."""

    label: str
    total: int
    done: int = 0
    error: str | None = None
    finished: bool = False
    started: float = 0.0
    ended: float = 0.0


#: A failed scoring job is shown (not retried) for this long; a finished one whose cells are
#: still missing (the store was emptied, another folder) is started again after RESCORE_S.
RETRY_FAILED_S = 30.0
RESCORE_S = 5.0


_jobs: dict = {}
_score_pool = None


def start_scoring(choice: ModelChoice, key: str, paths: list, hashes: list, interpolation: str) -> ScoringJob:
    """Score the cells of a dataset that have no stored score, in one background thread
    (the model is loaded there, so nothing waits for TensorFlow); one job per
    (model key, dataset, interpolation) at a time. Readers see scores fill in as each
    batch of 32 is stored."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    global _score_pool
    job_key = (key, interpolation, hash(tuple(hashes)), str(score_store().path))
    with _warmup_lock:
        job = _jobs.get(job_key)
        now = time.monotonic()
        if job is not None and (not job.finished or now - job.ended < (RETRY_FAILED_S if job.error else RESCORE_S)):
            return job              # running; or failed (its error stays on screen); or just done
        if _score_pool is None:
            _score_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="score-cells")
        job = _jobs[job_key] = ScoringJob(choice.label, len(hashes), started=time.monotonic())

    def run():
        from core.errors import DisplasiaError
        from core.scores import score_missing

        try:
            # Loading TensorFlow holds the GIL for seconds: let the page that asked for the
            # scores draw its thumbnails first (the gallery says when), SCORING_DELAY_S at most.
            _page_drawn.wait(timeout=SCORING_DELAY_S)
            from core.datasets import image_problem

            # Decode each image once first (remembered): a large folder is shown before this,
            # and only readable images are scored (the gallery then lists the others as skipped).
            problems = score_store().checked(paths, image_problem)
            good = [(p, h) for p, h, problem in zip(paths, hashes, problems) if not problem]
            if not good:
                raise DisplasiaError("No readable images in this folder.")
            loaded = loaded_model(choice)

            def progress(done, total):
                job.total, job.done = total, done

            score_missing(score_store(), loaded, key, [p for p, _ in good], [h for _, h in good], interpolation,
                          progress=progress)
        except DisplasiaError as exc:
            job.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - shown to the user as one line; the log has the rest
            import logging
            import sys

            shutting_down = sys.is_finalizing() or "interpreter shutdown" in str(exc)   # the server is stopping
            if not shutting_down:
                logging.getLogger(__name__).exception("scoring failed")
            job.error = f"Scoring failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        finally:
            job.ended = time.monotonic()
            job.finished = True

    _score_pool.submit(run)
    return job


_identified: set = set()


def identify_later(choices) -> None:
    """Load, in the background scoring thread, models whose content hash is not known yet
    (small files only), so the picker can list a network saved in two formats once."""
    from concurrent.futures import ThreadPoolExecutor

    global _score_pool
    todo = []
    with _warmup_lock:
        for choice in choices:
            files = [choice.path] + ([choice.weights] if choice.weights else [])
            size = sum(Path(f).stat().st_size for f in files if Path(f).exists())
            if (choice.path, choice.weights) not in _identified and size < 50 * 2**20:
                _identified.add((choice.path, choice.weights))
                todo.append(choice)
        if not todo:
            return
        if _score_pool is None:
            _score_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="score-cells")

    def run():
        from core.model_io import load_model as core_load

        if any(not job.finished for job in list(_jobs.values())):
            _score_pool.submit(run)                  # scoring first: requeue behind it
            return
        for choice in todo:
            try:
                if is_loaded(choice):
                    loaded = loaded_model(choice)
                else:
                    loaded = core_load(choice.path, choice.weights)
                score_store().remember_model(model_key(choice), loaded.description.content_hash)
            except Exception:  # noqa: BLE001 - an unreadable model simply stays unidentified
                continue

    def queue():
        try:
            _score_pool.submit(run)
        except RuntimeError:            # the interpreter is shutting down: nothing to identify any more
            pass

    timer = threading.Timer(3.0, queue)   # after this run's scoring job is queued
    timer.daemon = True
    timer.start()


# ------------------------------------------------------------------ thumbnails

THUMBNAIL_SIZE = 160
#: WebP quality of thumbnails: a page of 48 is ~40 % fewer bytes than JPEG at 85, same look.
THUMBNAIL_QUALITY = 80


@st.cache_data(show_spinner=False, max_entries=4096)
def thumbnail(path: str, size: int = THUMBNAIL_SIZE, stamp: int = 0) -> bytes:
    """A small WebP of the cell, kept on disk under the cache folder (keyed by path, size
    and modification time), so a page of 48 cells never decodes a full image twice."""
    import hashlib

    from PIL import Image

    from core.config import cache_dir
    from core.display import webp_bytes

    info = Path(path).stat()
    name = hashlib.sha256(f"{Path(path).resolve()}|{info.st_size}|{info.st_mtime_ns}|{size}|webp".encode()).hexdigest()
    disk = cache_dir() / "thumbs" / name[:2] / f"{name}.webp"
    try:
        return disk.read_bytes()
    except OSError:
        pass
    try:
        with Image.open(path) as opened:
            opened.draft("RGB", (size, size))   # JPEG: decoded at 1/2 to 1/8 scale, never below ``size``
            image = opened.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        image = Image.fromarray(load_rgb(path))   # says in one line what is wrong with the file
    image.thumbnail((size, size))
    data = webp_bytes(np.asarray(image), quality=THUMBNAIL_QUALITY)
    try:
        disk.parent.mkdir(parents=True, exist_ok=True)
        tmp = disk.with_suffix(f".{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(disk)
    except OSError:
        pass                                     # a read-only cache folder only costs speed
    return data


@st.cache_data(show_spinner=False, max_entries=256)
def original(path: str) -> np.ndarray:
    return load_rgb(path)


def cell_score(choice: ModelChoice, path: str, interpolation: str) -> float:
    """P(normal) of one cell: from the score store, else computed now and stored."""
    from core.predict import predict_files
    from core.scores import preprocessing_key

    store, key = score_store(), model_key(choice)
    image = store.file_hashes([path])[0]
    stored = store.get(key, [image], preprocessing_key(interpolation))[0]
    if stored == stored:                         # not NaN
        return float(stored)
    score = float(predict_files(load_model(choice), [path], interpolation=interpolation)[0])
    store.put(key, [image], preprocessing_key(interpolation), [score])
    return score


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


@st.cache_resource(show_spinner=False, max_entries=4)
def dataset_images(paths: tuple, size: tuple, interpolation: str) -> np.ndarray:
    """Every cell of a dataset preprocessed for the model, ``(N, H, W, 3)`` float32, read-only
    and shared (one array, not a copy per rerun: its cache key is then hashed once)."""
    from core.preprocess import load_batch

    bar = st.progress(0.0, text="Loading cells…")
    out = np.empty((len(paths), *size, 3), np.float32)
    for start in range(0, len(paths), 16):
        out[start:start + 16] = load_batch(paths[start:start + 16], size, interpolation)
        bar.progress(min(start + 16, len(paths)) / len(paths), text=f"Loading cells… {min(start + 16, len(paths))}/{len(paths)}")
    bar.empty()
    out.flags.writeable = False
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


def latest_readings(paths) -> list[dict]:
    """``{annotator: latest Annotation}`` of each image, from one query for the whole list."""
    by_image: dict = {}
    for reading in annotation_store().all_latest():
        by_image.setdefault(reading.image_sha256, {})[reading.annotator] = reading
    return [by_image.get(sha, {}) for sha in image_hashes(paths)]


def pathologist_totals(paths) -> list:
    """Signed total score of the latest annotation of each image (None when unannotated)."""
    from core.annotations.schema import latest_reading

    totals = []
    for readings in latest_readings(paths):
        latest = latest_reading(readings)
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
