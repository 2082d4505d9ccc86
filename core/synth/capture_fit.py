"""Refit a generator's per-capture part statistics (``capture_stats.json`` of generator 3.0,
``capture_stats_3.1.json`` of 3.1, ``capture_stats_3.2.json`` of 3.2: the model's
``stats_file``).

    .venv/bin/python -m core.synth.capture_fit REAL_DIR [--version 3.0|3.1|3.2]

Developer tool, not part of the dashboard: it reads the TUNING real cells only (never
the held-out ones, :func:`core.synth.realism.is_held_out`), measures per part (background,
red cells, cytoplasm, nucleus) the Lab mean and SD of each capture, and writes derived
numbers only: their mean and the square root of their covariance; the same means over
synthetic normal cells drawn without this calibration; the square root of the spread the
generator lacks (real covariance minus synthetic, negative eigenvalues dropped); and
mean offsets found by re-measuring calibrated cells (``--rounds``).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import numpy as np

from core.errors import DisplasiaError

from . import render
from .realism import image_paths, is_held_out, load_capture, measure_cell

#: Positions of the per-part Lab mean and SD in :func:`measure_cell`'s feature vector.
STAT_INDEX = [part * 10 + k for part in range(4) for k in range(6)]
FIT_SEED = 9000


def _synthetic_stats(version: str, n: int) -> np.ndarray:
    from . import generate_cell

    return np.array([measure_cell(generate_cell(FIT_SEED, i, "normal", version=version).rgb).features[STAT_INDEX]
                     for i in range(n)])


def _sqrt_psd(cov: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(cov)
    return v * np.sqrt(np.clip(w, 0.0, None))


def fit(real_dir, *, n: int = 100, rounds: int = 2, version: str = "3.0", log=print) -> dict:
    paths = [p for i, p in enumerate(image_paths(real_dir)) if not is_held_out(i)]
    real = np.array([measure_cell(load_capture(p)).features[STAT_INDEX] for p in paths])
    log(f"{len(real)} tuning real cells measured")
    base = render.capture_model(version)
    render.CAPTURE_MODELS["_uncalibrated"] = dataclasses.replace(base, part_statistics=False)
    try:
        synth = _synthetic_stats("_uncalibrated", n)
    finally:
        del render.CAPTURE_MODELS["_uncalibrated"]
    stats = {
        "note": (f"Derived statistics, no pixels: per-capture Lab mean (L, a, b) and SD (L, a, b) of background, "
                 f"red cells, cytoplasm and nucleus (core.synth.realism.measure_cell) over the {len(real)} TUNING "
                 f"real normal cells (held-out cells not used); written by python -m core.synth.capture_fit."),
        "real_mean": real.mean(0).tolist(),
        "real_chol": _sqrt_psd(np.cov(real.T)).tolist(),
        "synthetic_mean": synth.mean(0).tolist(),
        "residual_chol": _sqrt_psd(np.cov(real.T) - np.cov(synth.T)).tolist(),
        "bias": [0.0] * len(STAT_INDEX),
    }
    for r in range(rounds):
        _write(stats, base.stats_file)
        calibrated = _synthetic_stats(version, n)
        gap = real.mean(0) - calibrated.mean(0)
        is_mean = np.tile([1.0, 1.0, 1.0, 0.0, 0.0, 0.0], 4)
        stats["bias"] = (np.asarray(stats["bias"]) + gap * is_mean).tolist()
        # SDs: scale the target by how far the measured spread still is from the real one.
        stats["real_mean"] = np.where(is_mean == 0, np.asarray(stats["real_mean"]) * real.mean(0)
                                      / calibrated.mean(0), stats["real_mean"]).tolist()
        log(f"round {r + 1}: largest remaining mean gap {np.abs(gap).max():.2f}")
    _write(stats, base.stats_file)
    return stats


def _write(stats: dict, name: str) -> None:
    render.stats_path(name).write_text(json.dumps(stats, indent=0) + "\n", encoding="utf-8")
    render.capture_statistics.cache_clear()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.synth.capture_fit", description=__doc__.split("\n\n")[0])
    p.add_argument("real_dir")
    p.add_argument("--n", type=int, default=100, help="synthetic cells per measurement (default 100)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--version", default="3.0", help="generator version whose statistics to fit (default 3.0)")
    args = p.parse_args(argv)
    try:
        if not render.capture_model(args.version).part_statistics:
            raise DisplasiaError(f"generator {args.version} draws no part statistics: nothing to fit")
        fit(args.real_dir, n=args.n, rounds=args.rounds, version=args.version)
    except DisplasiaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
