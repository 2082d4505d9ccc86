"""Whole archives on a Dask cluster: explanations for tens of thousands of cells, resumably.

A run cuts the cells of a folder into chunks; each chunk is one Dask task that decodes its
cells, loads the model once per worker process (:func:`worker_model`, an LRU keyed by
the model files' SHA-256) and computes every requested map through the shared
:class:`core.cache.ExplanationCache` folder, so the dashboard, the report and other runs
find the results under their usual keys. What is already cached is skipped twice:

1. before submitting, a journal (``<cache>/journal/precompute.jsonl``, one line per cell:
   file identity -> cache keys) tells which cells are complete without reading an image;
2. on the worker, every map is looked up in the cache before it is computed, so even a
   run killed before it wrote its journal recomputes nothing.

A cell that cannot be read or explained is reported with one line and the run goes on.
Without a scheduler address a :class:`distributed.LocalCluster` of worker *processes*
(one thread each, TensorFlow limited to that thread) is started on this machine and closed
at the end; with ``scheduler="tcp://host:port"`` the run uses that cluster, whose workers
must see the same files (dataset, model, cache folder) at the same paths and be able to
import this project.

The whole-dataset projection (registry kind "dataset") streams: workers return the
float32 features of their chunks, the client projects them
(:func:`core.explain.features.projection_explanation`) and caches the result under
:func:`core.explain.features.folder_key`.

Nothing here imports TensorFlow in the client; Dask is imported when a run starts.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.config import DEFAULT_INTERPOLATION, DEFAULT_THRESHOLD
from core.errors import DisplasiaError

#: Local worker processes when no number is given.
DEFAULT_WORKERS = 2
#: Cells per task: enough to amortise scheduling, few enough for a smooth progress line.
DEFAULT_CHUNK = 8
#: Cells per feature-extraction task of the projection (one batched forward pass each).
FEATURE_CHUNK = 256
#: Up to this many cells, precompute also caches the in-memory projection the Projection
#: page asks for (``compute(<projection>, images)``, ~1 MB of pixels per cell in memory).
IN_MEMORY_PROJECTION = 512
#: Models kept loaded per worker process.
MODELS_PER_WORKER = 2
#: The module whose whole-dataset method streams image files (registry kind "dataset").
STREAMED_MODULE = "core.explain.features"
#: Targets a job may name besides the two classes: resolved per cell on the worker.
CELL_TARGETS = ("label", "prediction")


# ------------------------------------------------------------------------- worker side

@dataclass(frozen=True)
class ModelRef:
    """Where a worker finds the model, and the files' SHA-256 (its worker-cache key)."""

    model: str
    weights: str | None
    fingerprint: str


def model_ref(model=None, weights=None) -> ModelRef:
    """A :class:`ModelRef` for model files (default: the bundled demo model)."""
    from core.config import demo_model_path

    if model is None:
        json_path, demo_weights = demo_model_path()
        if not json_path.is_file():
            raise DisplasiaError("No model given and the bundled demo model is missing (see README: train-demo).")
        model, weights = json_path, demo_weights
    paths = [Path(model)] + ([Path(weights)] if weights else [])
    digest = hashlib.sha256()
    for path in paths:
        if not path.is_file():
            raise DisplasiaError(f"Model file not found: {path}")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return ModelRef(str(paths[0].resolve()), str(paths[1].resolve()) if weights else None, digest.hexdigest())


_MODELS: OrderedDict = OrderedDict()
_MODELS_LOCK = threading.Lock()
#: How many times this process loaded a model (tests check: once per worker).
MODEL_LOADS = 0


def _limit_threads() -> None:
    """Give TensorFlow as many threads as the Dask worker has (processes do the scaling)."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return
    threads = int(getattr(getattr(worker, "state", None), "nthreads", 0) or getattr(worker, "nthreads", 1) or 1)
    from core.runtime import import_tensorflow

    tf = import_tensorflow()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already started in this process
        pass


def worker_model(ref: ModelRef):
    """The loaded model for ``ref``, loaded at most once per process (LRU of a few models)."""
    global MODEL_LOADS
    with _MODELS_LOCK:
        loaded = _MODELS.get(ref.fingerprint)
        if loaded is not None:
            _MODELS.move_to_end(ref.fingerprint)
            return loaded
        _limit_threads()
        from core.model_io import load_model

        loaded = load_model(ref.model, ref.weights)
        MODEL_LOADS += 1
        _MODELS[ref.fingerprint] = loaded
        while len(_MODELS) > MODELS_PER_WORKER:
            _MODELS.popitem(last=False)
        return loaded


@dataclass(frozen=True)
class Job:
    """One map per cell: method, target (a class, or "label"/"prediction" per cell), parameters."""

    method: str
    target: str
    params: str  # validated parameters as JSON (hashable, picklable, the cache key's form)
    version: int

    @property
    def ident(self) -> str:
        return f"{self.method}|v{self.version}|{self.target}|{self.params}"


def make_jobs(methods, targets, params=None) -> list:
    """Jobs for every per-cell method and target; DisplasiaError for a method precompute cannot run."""
    from core.explain.base import TARGETS
    from core.explain.registry import get_method

    jobs = []
    for name in methods:
        spec = get_method(name)
        if spec.needs_mask:
            raise DisplasiaError(f"{spec.title} needs cell outlines; run it from the dashboard.")
        if spec.kind != "image":
            continue
        values = spec.validate((params or {}).get(spec.name))
        for target in targets:
            if target not in TARGETS + CELL_TARGETS:
                raise DisplasiaError(f"Unknown target '{target}': choose {', '.join(TARGETS + CELL_TARGETS)}.")
            jobs.append(Job(spec.name, target, values.to_json(), spec.version))
    return jobs


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def explain_chunk(ref: ModelRef, cells, jobs, cache_folder: str, max_bytes: int, interpolation: str,
                  threshold: float, want_features: bool = False) -> dict:
    """Dask task: every job on every cell of a chunk, through the cache; never raises for a cell.

    ``cells`` is a list of ``(name, path, label)``. Returns ``{"records": [...], "pid",
    "model_loads", "content_hash"}`` with per cell: name, path, ``keys`` (job ident ->
    cache key), ``computed`` and ``cached`` counts, ``errors`` (one line each); with
    ``want_features`` also ``features`` ``(n, F)`` float32 and ``scores`` in cell order
    (NaN scores for unreadable cells).
    """
    from core.cache import ExplanationCache
    from core.explain import cache_key, compute
    from core.explain.base import Params
    from core.predict import label_of
    from core.preprocess import load_input

    loaded = worker_model(ref)
    # A write adds to the worker's running size of the folder; the folder is listed (and
    # evicted) only past the limit or every ExplanationCache.REFRESH_S seconds.
    cache = ExplanationCache(cache_folder, max_bytes=max_bytes)
    size = loaded.description.image_size
    records, images, ok = [], [], []
    for name, path, label in cells:
        rec = {"name": name, "path": path, "keys": {}, "computed": 0, "cached": 0, "errors": []}
        records.append(rec)
        try:
            image = load_input(path, size, interpolation)[None]
        except (DisplasiaError, OSError, ValueError) as exc:
            rec["errors"].append(f"unreadable image: {_one_line(exc)}")
            ok.append(False)
            continue
        ok.append(True)
        if want_features:
            images.append(image[0])
        score = None
        for job in jobs:
            try:
                target = job.target
                if target in CELL_TARGETS:
                    if score is None:
                        score = float(loaded.score_fn(image).numpy().reshape(-1)[0])
                    predicted = label_of(score, threshold)
                    target = (label or predicted) if target == "label" else predicted
                params = Params(json.loads(job.params))
                key = cache_key(loaded, image, job.method, target, params)
                if cache.get(key) is None:
                    cache.put(key, compute(job.method, loaded, image, target, params=params))
                    rec["computed"] += 1
                else:
                    rec["cached"] += 1
                rec["keys"][job.ident] = key
            except Exception as exc:  # one cell's failure must not stop the archive  # noqa: BLE001
                rec["errors"].append(f"{job.method} ({job.target}): {_one_line(exc)}")
    out = {"records": records, "pid": os.getpid(), "model_loads": MODEL_LOADS,
           "content_hash": loaded.description.content_hash}
    if want_features:
        from core.explain.features import features_and_scores

        n = len(cells)
        feats, scores = None, np.full(n, np.nan, np.float32)
        if images:
            f, p = features_and_scores(loaded, np.stack(images))
            feats = np.zeros((n, f.shape[1]), np.float32)
            feats[np.array(ok)] = f
            scores[np.array(ok)] = p
        out["features"], out["scores"] = feats, scores
    return out


def in_memory_projection(ref: ModelRef, method: str, paths, targets, params_json: str, cache_folder: str, max_bytes: int,
                         interpolation: str) -> int:
    """Dask task: the entries of ``compute(method, all images, target)`` (small sets only).

    The projection does not depend on the target, so it runs once; the other target's entry
    is the same result with its baseline turned into that class's probability. Returns the
    number of entries written.
    """
    from dataclasses import replace

    from core.cache import ExplanationCache
    from core.explain import cache_key, compute
    from core.explain.base import Params, target_probability
    from core.preprocess import load_batch

    loaded = worker_model(ref)
    images = load_batch(paths, loaded.description.image_size, interpolation)
    cache = ExplanationCache(cache_folder, max_bytes=max_bytes)
    params = Params(json.loads(params_json))
    keys = {t: cache_key(loaded, images, method, t, params) for t in targets}
    missing = [t for t in targets if cache.get(keys[t]) is None]
    if not missing:
        return 0
    exp = compute(method, loaded, images, "normal", params=params)
    p_normal = np.asarray(exp.baseline, np.float32)
    for target in missing:
        cache.put(keys[target], replace(exp, target=target, baseline=target_probability(p_normal, target)))
    return len(missing)


# ------------------------------------------------------------------------- client side

@dataclass
class Progress:
    """Where a run stands. ``done`` counts cells finished (computed, found cached or failed)."""

    done: int = 0
    total: int = 0
    skipped: int = 0
    computed: int = 0
    cached: int = 0
    failed: int = 0
    started: float = field(default_factory=time.perf_counter)
    stage: str = "starting"

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def rate(self) -> float:
        """Cells per second over the cells this run actually handled (skipped ones excluded)."""
        worked = self.done - self.skipped
        return worked / self.elapsed if worked > 0 and self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate, None before the first chunk."""
        left = self.total - self.done
        return left / self.rate if self.rate > 0 else (0.0 if left == 0 else None)

    def line(self) -> str:
        eta = "?" if self.eta is None else _duration(self.eta)
        return (f"{self.stage}: {self.done}/{self.total} cells ({self.skipped} already cached, {self.failed} failed) "
                f"{self.rate:.2f} cells/s, ETA {eta}")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Journal:
    """Append-only record of the cache keys each cell's maps were stored under.

    One JSON line per finished cell: ``{"cell": <file identity hash>, "keys": {<job hash>:
    key}}``. Lines from killed runs may be cut short: unreadable lines are ignored.
    """

    def __init__(self, cache_folder):
        self.path = Path(cache_folder) / "journal" / "precompute.jsonl"
        self.keys: dict = {}
        if self.path.is_file():
            with open(self.path, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    try:
                        entry = json.loads(line)
                        self.keys.setdefault(entry["cell"], {}).update(entry["keys"])
                    except (ValueError, KeyError, TypeError, AttributeError):
                        continue

    @staticmethod
    def cell_id(path: Path, ref: ModelRef, interpolation: str) -> str:
        stat = path.stat()
        text = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{interpolation}|{ref.fingerprint}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    @staticmethod
    def job_id(job: Job, threshold: float) -> str:
        extra = f"|{threshold!r}" if job.target in CELL_TARGETS else ""
        return hashlib.sha256((job.ident + extra).encode()).hexdigest()[:16]

    def complete(self, cell: str, jobs: list, cache) -> bool:
        known = self.keys.get(cell)
        if not known:
            return False
        return all(j in known and cache.path_of(known[j]).is_file() for j in jobs)

    def append(self, lines: list) -> None:
        if not lines:
            return
        text = "".join(json.dumps(line) + "\n" for line in lines)  # built first: the file is open for one write
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(text)
        for line in lines:
            self.keys.setdefault(line["cell"], {}).update(line["keys"])


class PrecomputeRun:
    """A precompute run in a background thread: progress, failures, the Dask dashboard link.

    Attributes
    ----------
    progress : Progress
        Live counters (read them any time).
    failures : list of (str, str)
        Cell name and one-line reason for every cell that failed (the others went on).
    dashboard_link : str or None
        The Dask dashboard of the cluster doing the work (set once it is up).
    worker_model_loads : dict
        Worker process id -> models it loaded so far (once per worker when all goes well).
    error : BaseException or None
        What stopped the run as a whole (an unreachable scheduler, say).
    """

    def __init__(self):
        self.progress = Progress()
        self.failures: list = []
        self.dashboard_link: str | None = None
        self.worker_model_loads: dict = {}
        self.error: BaseException | None = None
        self.projection_key: str | None = None
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    def cancel(self) -> None:
        """Stop submitting and drop pending tasks; finished cells stay cached."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> PrecomputeRun:
        """Block until the run ends; re-raise what stopped it, if anything."""
        if self._thread is not None:
            self._thread.join(timeout)
        if self.error is not None:
            raise self.error
        return self


def run_precompute(folder, methods=None, *, targets=None, params=None, model=None, weights=None, cache=None,
                   interpolation: str = DEFAULT_INTERPOLATION, threshold: float = DEFAULT_THRESHOLD,
                   scheduler: str | None = None, workers: int = DEFAULT_WORKERS, chunk_size: int = DEFAULT_CHUNK,
                   client=None, progress=None, background: bool = True, names=None, extra_jobs=()) -> PrecomputeRun:
    """Fill the explanation cache for a folder of cells on a Dask cluster.

    Parameters
    ----------
    folder : str or Path
        Dataset folder (see ``core.datasets.scan_dataset``).
    methods : sequence of str, optional
        Registry names (default: the registry's ``precompute`` methods).
    targets : sequence of str, optional
        "dysplastic", "normal" (default both), or "label"/"prediction" (per cell).
    params : mapping of method -> parameters, optional
    model, weights : str or Path, optional
        Model files (default: the bundled demo model). Workers load them by path.
    cache : str, Path or ExplanationCache, optional
        The shared cache folder (default ``DISPLASIA_CACHE_DIR``).
    scheduler : str, optional
        Address of an existing Dask scheduler; default: a LocalCluster of ``workers``
        processes with one thread each.
    client : distributed.Client, optional
        Use this client (and its cluster) instead; it is left open.
    progress : callable(Progress), optional
        Called after every finished chunk (from the run's thread).
    background : bool
        Return at once with the run going on in a thread (dashboard); False waits (CLI).
    names : sequence of str, optional
        Only these cells of the folder.
    extra_jobs : sequence of Job, optional
        More maps per cell (e.g. one method at several settings, see :func:`make_jobs`).

    Returns
    -------
    PrecomputeRun
    """
    from core.cache import ExplanationCache
    from core.datasets import scan_dataset
    from core.explain.base import TARGETS
    from core.explain.registry import get_method, method_names

    methods = list(methods or method_names(precompute=True))
    targets = list(targets or TARGETS)
    jobs = make_jobs(methods, targets, params) + [j for j in extra_jobs]
    jobs = list(dict.fromkeys(jobs))
    dataset_methods = [m for m in methods if get_method(m).kind == "dataset"]
    for name in dataset_methods:
        if get_method(name).module != STREAMED_MODULE:
            raise DisplasiaError(f"{get_method(name).title} cannot run on a cluster yet.")
    if workers < 1 or chunk_size < 1:
        raise DisplasiaError("--workers and the chunk size must be at least 1.")
    if not isinstance(cache, ExplanationCache):
        cache = ExplanationCache(cache)
    # Images are decoded on the workers, which report the broken ones: no decoding pass here.
    dataset = scan_dataset(folder, check_images=False)
    cells = list(dataset.cells)
    if names:
        wanted = set(names)
        cells = [c for c in cells if c.name in wanted or c.path.name in wanted]
    ref = model_ref(model, weights)
    run = PrecomputeRun()
    run.failures.extend(dataset.skipped)
    run.progress.total = len(cells)
    projection = dataset_methods[0] if dataset_methods else None
    feature_params = get_method(projection).validate((params or {}).get(projection)) if projection else None
    plan = dict(cells=cells, jobs=jobs, features=feature_params, projection=projection, targets=targets, ref=ref, cache=cache,
                interpolation=interpolation, threshold=float(threshold), chunk_size=int(chunk_size))

    def body():
        try:
            with _cluster(scheduler, workers, client) as dask_client:
                run.dashboard_link = _link(dask_client)
                _execute(run, dask_client, plan, progress)
        except BaseException as exc:  # reported through run.error / wait()
            run.error = exc if isinstance(exc, DisplasiaError) else DisplasiaError(
                f"The precompute run stopped: {_one_line(exc)}")
        finally:
            run.progress.stage = "cancelled" if run.cancelled else ("failed" if run.error else "done")
            if progress is not None:
                progress(run.progress)

    if background:
        run._thread = threading.Thread(target=body, name="displasia-precompute", daemon=True)
        run._thread.start()
    else:
        body()
    return run


def _link(client) -> str | None:
    try:
        return client.dashboard_link
    except (AttributeError, KeyError, ValueError):
        return None


class _cluster:
    """Context: the given client, a client of ``scheduler``, or a fresh LocalCluster."""

    def __init__(self, scheduler, workers, client):
        self.scheduler, self.workers, self.given = scheduler, workers, client
        self.client = self.cluster = None

    def __enter__(self):
        if self.given is not None:
            return self.given
        from distributed import Client, LocalCluster

        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout="20s")
            except OSError as exc:
                raise DisplasiaError(f"Cannot reach the Dask scheduler at {self.scheduler}: {_one_line(exc)}") from None
            return self.client
        env = {"OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
               "TF_CPP_MIN_LOG_LEVEL": "2"}
        self.cluster = LocalCluster(n_workers=int(self.workers), threads_per_worker=1, processes=True,
                                    dashboard_address=":0", env=env, silence_logs=40)
        self.client = Client(self.cluster)
        return self.client

    def __exit__(self, *exc):
        for thing in (self.client, self.cluster):
            if thing is not None:
                try:
                    thing.close()
                except (OSError, RuntimeError, TimeoutError):
                    pass
        return False


def _execute(run: PrecomputeRun, client, plan: dict, progress) -> None:
    from distributed import as_completed

    cells, jobs, ref, cache = plan["cells"], plan["jobs"], plan["ref"], plan["cache"]
    interp, threshold, params = plan["interpolation"], plan["threshold"], plan["features"]
    journal = Journal(cache.folder)
    job_ids = {job.ident: Journal.job_id(job, threshold) for job in jobs}
    p = run.progress
    p.stage = "checking the cache"
    want_features = False
    # One small task first: a model the workers cannot load stops the run here, once,
    # instead of failing every chunk.
    try:
        content_hash, size = client.submit(_model_facts, ref, pure=False).result()
    except DisplasiaError:
        raise
    except Exception as exc:  # whatever the worker raised, as one line  # noqa: BLE001
        raise DisplasiaError(f"The workers could not load the model {Path(ref.model).name}: {_one_line(exc)}") from None
    if params is not None:
        from core.explain.features import folder_key

        try:
            run.projection_key = folder_key(content_hash, [c.path for c in cells], size, interp, params)
        except OSError as exc:
            raise DisplasiaError(f"A cell file vanished while the run started: {_one_line(exc)}") from None
        want_features = cache.get(run.projection_key) is None
    todo, ids = [], {}
    for cell in cells:
        try:
            ids[cell.name] = Journal.cell_id(cell.path, ref, interp)
        except OSError as exc:
            run.failures.append((cell.name, f"unreadable file: {_one_line(exc)}"))
            p.done += 1
            p.failed += 1
            continue
        if not want_features and journal.complete(ids[cell.name], list(job_ids.values()), cache):
            p.done += 1
            p.skipped += 1
        else:
            todo.append(cell)
    p.stage = "precompute"
    if progress is not None:
        progress(p)
    per_task = plan["chunk_size"]
    chunks = [todo[i:i + per_task] for i in range(0, len(todo), per_task)]
    feature_parts: dict = {}  # chunk index -> (features, scores): the projection needs them all
    index_of: dict = {}
    pending = as_completed()
    queue = list(enumerate(chunks))
    outstanding = [0]
    window = 4 * max(1, len(client.scheduler_info().get("workers", {})))
    tag = f"{os.getpid()}-{id(run)}"

    def submit_more():
        while queue and outstanding[0] < window and not run.cancelled:
            index, chunk = queue.pop(0)
            payload = [(c.name, str(c.path), c.label) for c in chunk]
            future = client.submit(explain_chunk, ref, payload, jobs, str(cache.folder), cache.max_bytes, interp,
                                   threshold, want_features, key=f"displasia-chunk-{tag}-{index}", pure=False)
            index_of[future.key] = index
            outstanding[0] += 1
            pending.add(future)

    submit_more()
    for future in pending:
        outstanding[0] -= 1
        if run.cancelled:
            for other in list(pending.futures):
                other.cancel()
            break
        number = index_of.pop(future.key)
        chunk = chunks[number]
        try:
            result = future.result()
        except Exception as exc:  # a worker died or the task itself broke  # noqa: BLE001
            for c in chunk:
                run.failures.append((c.name, f"task failed: {_one_line(exc)}"))
            p.done += len(chunk)
            p.failed += len(chunk)
            submit_more()
            continue
        run.worker_model_loads[result["pid"]] = result["model_loads"]
        lines = []
        for rec in result["records"]:
            p.done += 1
            p.computed += rec["computed"]
            p.cached += rec["cached"]
            if rec["errors"]:
                p.failed += 1
                run.failures.append((rec["name"], "; ".join(rec["errors"])))
            elif rec["name"] in ids:
                lines.append({"cell": ids[rec["name"]], "keys": {job_ids[k]: v for k, v in rec["keys"].items()}})
        journal.append(lines)
        if want_features:
            feature_parts[number] = (result["features"], result["scores"])
        future.release()
        submit_more()
        if progress is not None:
            progress(p)
    if run.cancelled or params is None:
        return
    # ------------------------------------------------------------ whole-dataset projection
    if want_features:
        p.stage = "projection"
        if progress is not None:
            progress(p)
        _project_and_store(run, cells, chunks, feature_parts, params, run.projection_key, cache)
    if len(cells) <= IN_MEMORY_PROJECTION:
        failed = {name for name, _ in run.failures}
        paths = [str(c.path) for c in cells if c.name not in failed]
        classes = [t for t in plan["targets"] if t not in CELL_TARGETS] or ["dysplastic", "normal"]
        if paths:
            client.submit(in_memory_projection, ref, plan["projection"], paths, classes, params.to_json(),
                          str(cache.folder), cache.max_bytes, interp, pure=False).result()


def _model_facts(ref: ModelRef) -> tuple:
    """Dask task: ``(content hash, image size)`` of the model (loads it on that worker)."""
    loaded = worker_model(ref)
    return loaded.description.content_hash, tuple(loaded.description.image_size)


def _project_and_store(run, cells, chunks, feature_parts, params, key, cache) -> None:
    from core.explain.features import projection_explanation

    n = len(cells)
    order = {cell.name: i for i, cell in enumerate(cells)}
    features = None
    scores = np.full(n, np.nan, np.float32)
    for index, (feats, part_scores) in feature_parts.items():
        rows = [order[c.name] for c in chunks[index]]
        scores[rows] = part_scores
        if feats is not None:
            if features is None:
                features = np.zeros((n, feats.shape[1]), np.float32)
            features[rows] = feats
    failed = [(i, "unreadable or failed") for i in range(n) if not np.isfinite(scores[i])]
    if features is None:
        run.failures.append(("(projection)", "no cell could be read, so nothing was projected"))
        return
    values = dict(params)
    exp = projection_explanation(features, np.nan_to_num(scores), failed, perplexity=values["perplexity"],
                                 seed=values["seed"])
    cache.put(key, exp)


def print_progress(stream=None, every: float = 2.0):
    """A ``progress`` callback printing :meth:`Progress.line` on stderr (in place on a terminal)."""
    stream = stream or sys.stderr
    tty = hasattr(stream, "isatty") and stream.isatty()
    state = {"last": 0.0}

    def report(p: Progress) -> None:
        now = time.perf_counter()
        final = p.stage in ("done", "failed", "cancelled")
        if not final and now - state["last"] < every and p.done < p.total:
            return
        state["last"] = now
        stream.write(("\r" if tty else "") + p.line() + ("\n" if final or not tty else ""))
        stream.flush()

    return report
