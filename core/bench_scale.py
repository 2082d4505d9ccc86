"""``python -m core bench scale``: how precompute scales with Dask workers, and a 20,000-cell projection.

Two measurements, printed, never asserted:

1. *Workers*: cells per second of ``core.distributed.run_precompute`` on the same cells
   with a LocalCluster of 1 and then 2 worker processes (one thread each), after a warm-up
   run that loads the model on every worker; the ratio shows the scaling.
2. *Archive*: predict, extract deep features and project ``--cells`` cells
   (``core.explain.features.folder_projection``: files streamed in batches, no image array
   kept), with the peak memory of the whole process tree (the t-SNE child included),
   sampled every 0.1 s, and the kernel's high-water marks.

Cells come from ``--cells-dir`` (default ``/tmp/scale_cells``), generated once and reused:
``ceil(N / 32)`` synthetic cells, each also written in its 7 other orientations (flips and
quarter turns) and 3 shifted copies: distinct pixels for the model at a 32nd of the
generator's cost (the generator makes about 24 cells/s on a quiet 2-core machine).
"""
from __future__ import annotations

import math
import os
import resource
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

#: Methods of the worker-scaling run: a CAM and a perturbation method, the study's settings.
SCALING_METHODS = ("gradcam", "occlusion")
SCALING_PARAMS = {"occlusion": {"patch": 20}}
ORIENTATIONS = 8
#: Pixel shifts (down and left, wrapping) combined with the orientations: 32 variants per cell.
SHIFTS = (0, 5, 10, 15)


def add_arguments(parser) -> None:
    parser.add_argument("--cells", type=int, default=20000, help="cells of the archive measurement (scale)")
    parser.add_argument("--cells-dir", default="/tmp/scale_cells", help="generated cells, reused (scale)")
    parser.add_argument("--worker-cells", type=int, default=96, help="cells of the 1-vs-2-worker measurement (scale)")


def ensure_cells(folder, n: int, *, seed: int = 15, log=print) -> list:
    """At least ``n`` generated cell JPEGs in ``folder`` (made once); returns the first ``n`` paths."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    have = sorted(folder.glob("*.jpg"))
    if len(have) >= n:
        return have[:n]
    base = folder / "base"
    base.mkdir(exist_ok=True)
    need = math.ceil(n / (ORIENTATIONS * len(SHIFTS)))
    sources = sorted(base.glob("*.jpg"))
    if len(sources) < need:
        from core.synth import generate_cell
        from core.synth.cli import CLASS_PREFIX

        start = time.perf_counter()
        for i in range(len(sources), need):
            cell = generate_cell(seed, i)
            (base / f"{CLASS_PREFIX[cell.features.kind]}_SNE_{i:06d}.jpg").write_bytes(cell.jpeg)
            if (i + 1) % 500 == 0:
                log(f"generated {i + 1}/{need} base cells ({(i + 1) / (time.perf_counter() - start):.1f}/s)")
        sources = sorted(base.glob("*.jpg"))
    turns = [None, Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM, Image.Transpose.ROTATE_180,
             Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270, Image.Transpose.TRANSPOSE,
             Image.Transpose.TRANSVERSE]
    count = len(have)
    for j, shift in enumerate(SHIFTS):
        for k, turn in enumerate(turns):
            for src in sources:
                out = folder / f"{src.stem}_o{k}s{j}.jpg"
                if out.exists():
                    continue
                with Image.open(src) as image:
                    rgb = np.asarray(image.convert("RGB"))
                rgb = np.roll(rgb, (shift, -shift), axis=(0, 1))
                picture = Image.fromarray(rgb)
                (picture if turn is None else picture.transpose(turn)).save(out, quality=90)
                count += 1
                if count >= n:
                    return sorted(folder.glob("*.jpg"))[:n]
    return sorted(folder.glob("*.jpg"))[:n]


class TreeMemory:
    """Peak resident memory of this process and all its children, sampled in a thread."""

    def __init__(self, every: float = 0.1):
        import psutil

        self.process = psutil.Process()
        self.every, self.peak = every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        import psutil

        total = 0
        for proc in [self.process, *self.process.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return total

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())
        return False


def _load() -> str:
    return f"load average {', '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs"


def bench_workers(paths, model_args, *, workers=(1, 2), log=print) -> dict:
    """Cells per second of a distributed precompute with each worker count (fresh cache each time)."""
    from distributed import Client, LocalCluster

    from core.distributed import run_precompute

    paths = list(paths)
    warm, timed = paths[:4], paths[4:]
    rates, cpu = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        folders = {}
        for name, chunk in (("warm", warm), ("timed", timed)):
            folders[name] = Path(tmp) / name
            folders[name].mkdir()
            for p in chunk:  # hard links: the dataset scan refuses symbolic links leaving the folder
                try:
                    os.link(p, folders[name] / Path(p).name)
                except OSError:
                    (folders[name] / Path(p).name).write_bytes(Path(p).read_bytes())
        for n in workers:
            env = {"OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
                   "TF_CPP_MIN_LOG_LEVEL": "2"}
            with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                              silence_logs=40, env=env) as cluster, Client(cluster) as client:
                common = dict(model=model_args[0], weights=model_args[1], client=client, background=False,
                              params=SCALING_PARAMS, targets=["dysplastic"], chunk_size=2)
                # Warm-up: every worker loads the model and traces its graphs.
                run_precompute(folders["warm"], SCALING_METHODS, cache=Path(tmp) / f"warm{n}", **common)
                pids = list(client.run(os.getpid).values())
                cpu_before = _cpu_seconds(pids), _cpu_seconds([os.getpid()])
                start = time.perf_counter()
                run = run_precompute(folders["timed"], SCALING_METHODS, cache=Path(tmp) / f"timed{n}", **common)
                elapsed = time.perf_counter() - start
                worker_cpu = _cpu_seconds(pids) - cpu_before[0]
                client_cpu = _cpu_seconds([os.getpid()]) - cpu_before[1]
                done = max(run.progress.done, 1)
                rates[n] = run.progress.done / elapsed
                cpu[n] = (worker_cpu / done, client_cpu / done)
                log(f"  {n} worker{'s' if n > 1 else ''}: {run.progress.done} cells in {elapsed:.1f} s = "
                    f"{rates[n]:.2f} cells/s ({run.progress.computed} maps; {_load()})")
                log(f"    CPU per cell: workers {cpu[n][0]:.3f} s, client + scheduler {cpu[n][1]:.4f} s; "
                    f"workers busy {worker_cpu / elapsed / n:.0%} of their wall time")
    return rates, cpu


def _cpu_seconds(pids) -> float:
    """User + system CPU seconds of these processes so far."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def bench_archive(loaded, paths, *, log=print) -> dict:
    """Stream, predict, featurise and project ``paths``; seconds per stage and peak memory."""
    from core.explain.features import folder_projection

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with TreeMemory() as memory:
        exp = folder_projection(loaded, paths)
    total = time.perf_counter() - start
    return {"cells": len(paths), "seconds": total, "features_s": exp.timings.get("features", float("nan")),
            "projection_s": exp.timings.get("projection", float("nan")), "peak_tree_bytes": memory.peak,
            "self_maxrss_kb_before": before, "self_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "children_maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
            "engine": exp.extras.get("tsne_engine"), "included": int(exp.extras["included"].sum()),
            "features_shape": tuple(exp.extras["features"].shape)}


def run(args) -> int:
    from core.bench import bench_model

    log = lambda text: print(text, flush=True)  # noqa: E731
    n = int(args.cells)
    log(f"bench scale: {_load()}")
    paths = ensure_cells(args.cells_dir, max(n, args.worker_cells + 4), log=log)
    log(f"cells: {len(paths)} in {args.cells_dir}")
    loaded = bench_model(args)
    if args.model:
        model_args = (args.model, args.weights)
    else:
        from core.config import demo_model_path

        json_path, weights = demo_model_path()
        model_args = (str(json_path), str(weights) if weights else None)
    log(f"1. precompute {', '.join(SCALING_METHODS)} (occlusion patch 20, target dysplastic) on "
        f"{args.worker_cells} cells, LocalCluster processes, 1 thread each:")
    rates, cpu = bench_workers(paths[:args.worker_cells + 4], model_args, log=log)
    if 1 in rates and 2 in rates:
        log(f"  ratio 2 workers / 1 worker: {rates[2] / rates[1]:.2f} (target >= 1.7)")
        # On free cores each worker runs at 1 / (its CPU seconds per cell); the client and the
        # scheduler must keep up with all of them on the remaining time.
        free = {n: n / cpu[n][0] for n in cpu}
        log(f"  CPU-bound rate on free cores (n / worker CPU per cell): 1 worker {free[1]:.2f} cells/s, "
            f"2 workers {free[2]:.2f} cells/s, ratio {free[2] / free[1]:.2f}; the client + scheduler would "
            f"saturate one core at {1 / max(cpu[2][1], 1e-9):.0f} cells/s")
    if args.cells <= 0:
        return 0
    log(f"2. predict + deep features + projection of {n} cells, streamed (model: {loaded.source}):")
    result = bench_archive(loaded, paths[:n], log=log)
    log(f"  {result['cells']} cells in {result['seconds']:.1f} s (features and scores {result['features_s']:.1f} s, "
        f"projection {result['projection_s']:.1f} s, t-SNE engine {result['engine']}; target < 300 s)")
    log(f"  peak memory of the process tree {result['peak_tree_bytes'] / 2**30:.2f} GiB (target < 4 GiB); "
        f"kernel high-water marks: this process {result['self_maxrss_kb'] / 2**20:.2f} GiB, "
        f"largest child {result['children_maxrss_kb'] / 2**20:.2f} GiB")
    log(f"  features kept: {result['features_shape']} float32; {_load()}")
    return 0

