"""``python -m core bench TARGET``: speed against a reference measured in the same run.

Benchmarks print ratios, never assert: timings on a shared machine are not test material.
"""
from __future__ import annotations

import importlib
import tempfile
import time
from pathlib import Path

import numpy as np

#: target -> "module:function" taking the parsed args and returning an exit code.
BENCHMARKS = {
    "predict": "core.bench:bench_predict",
    "explain": "core.explain.bench:run",
    "scale": "core.bench_scale:run",
}


def add_parsers(subparsers) -> None:
    p = subparsers.add_parser("bench", help="benchmarks (speed ratios against reference implementations)")
    p.add_argument("target", choices=sorted(BENCHMARKS))
    p.add_argument("--images", type=int, default=256, help="images for the predict benchmark")
    p.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    p.add_argument("--model", metavar="PATH", help="model (default: the bundled demo, else an untrained DisplasiaNet)")
    p.add_argument("--weights", metavar="PATH")
    from core.bench_scale import add_arguments

    add_arguments(p)
    p.set_defaults(func=_dispatch)


def _dispatch(args) -> int:
    module, function = BENCHMARKS[args.target].split(":")
    return getattr(importlib.import_module(module), function)(args)


def bench_model(args):
    """The model to benchmark: ``--model``, else the demo model, else untrained DisplasiaNet."""
    from core.config import demo_model_path
    from core.model_io import from_keras
    from core.predict_cli import load_model_from_args

    if args.model or demo_model_path()[0].is_file():
        return load_model_from_args(args)
    from core.architecture import displasianet

    return from_keras(displasianet(seed=0), source="untrained DisplasiaNet")


def best_time(fn, repeats: int) -> float:
    """Fastest of ``repeats`` timed calls of ``fn`` (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _bench_images(n: int, folder: Path) -> list[Path]:
    from PIL import Image

    from core.config import DEMO_DIR

    demo = sorted(DEMO_DIR.glob("*.jpg")) if DEMO_DIR.is_dir() else []
    if demo:
        return [demo[i % len(demo)] for i in range(n)]
    rng = np.random.default_rng(0)
    paths = []
    for i in range(min(n, 32)):
        path = folder / f"cell_{i}.jpg"
        Image.fromarray(rng.integers(0, 256, (363, 360, 3), dtype=np.uint8)).save(path, quality=90)
        paths.append(path)
    return [paths[i % len(paths)] for i in range(n)]


def bench_predict(args) -> int:
    import keras

    from core.predict import DEFAULT_BATCH, predict_files, predict_scores

    loaded = bench_model(args)
    size = loaded.description.image_size
    with tempfile.TemporaryDirectory() as tmp:
        paths = _bench_images(args.images, Path(tmp))

        def reference_files():
            arrays = [keras.utils.img_to_array(keras.utils.load_img(p, target_size=size, interpolation="nearest")) / 255.0
                      for p in paths]
            return loaded.model.predict(np.stack(arrays), batch_size=DEFAULT_BATCH, verbose=0)

        def project_files():
            return predict_files(loaded, paths)

        ref = best_time(reference_files, args.repeats)
        ours = best_time(project_files, args.repeats)
        x = np.stack([keras.utils.img_to_array(keras.utils.load_img(p, target_size=size, interpolation="nearest")) / 255.0
                      for p in paths]).astype(np.float32)
        ref_arr = best_time(lambda: loaded.model.predict(x, batch_size=DEFAULT_BATCH, verbose=0), args.repeats)
        ours_arr = best_time(lambda: predict_scores(loaded, x), args.repeats)
        diff = np.abs(reference_files()[:, loaded.description.normal_unit] - project_files()).max()
    n = len(paths)
    print(f"model: {loaded.source}; {n} images, batch {DEFAULT_BATCH}, best of {args.repeats}")
    print(f"files -> scores : project {n / ours:8.1f} img/s | keras load_img + model.predict {n / ref:8.1f} img/s | ratio {ref / ours:.2f}")
    print(f"arrays -> scores: project {n / ours_arr:8.1f} img/s | keras model.predict {n / ref_arr:8.1f} img/s | ratio {ref_arr / ours_arr:.2f}")
    print(f"max |score difference| project vs keras: {diff:.2e}")
    return 0
