"""``python -m core synth``: write generated cells and their ground truth to a folder."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from core.errors import DisplasiaError

from . import GENERATOR_VERSION, generate_cell
from .store import capture_name, write_cell

#: Study prefixes of the reference set by true class (Z = "additional" examples).
CLASS_PREFIX = {"normal": "ZN", "dysplastic": "ZD"}


def capture_id(seed: int, index: int) -> int:
    """A seven-digit capture number, unique per index within one seed."""
    # 7919 is prime and coprime with 9e6, so distinct indices never collide.
    return 1_000_000 + (int(seed) * 104_729 + int(index) * 7_919) % 9_000_000


def add_parsers(subparsers) -> None:
    p = subparsers.add_parser(
        "synth",
        help="generate synthetic CellaVision-like neutrophils with ground truth",
        description="Write N generated neutrophil images (360x363 JPEG) and their ground truth "
                    "(cell, nucleus, cytoplasm and granule masks as PNG; latent features as JSON). "
                    "The same seed gives the same bytes.",
    )
    p.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
    p.add_argument("--n", type=int, default=20, help="number of cells (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of the set (default 0)")
    p.add_argument("--kind", choices=("normal", "dysplastic", "mixed"), default="mixed",
                   help="class of the cells; mixed draws each 50/50 (default)")
    p.set_defaults(func=run_synth)


def run_synth(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise DisplasiaError("--n must be at least 1.")
    if args.seed < 0:
        raise DisplasiaError("--seed must be zero or positive.")
    start = time.perf_counter()
    counts = {"normal": 0, "dysplastic": 0}
    for i in range(args.n):
        cell = generate_cell(args.seed, i, args.kind)
        kind = cell.features.kind
        stem = f"{CLASS_PREFIX[kind]}_{capture_name(cell, capture_id(args.seed, i))}"
        write_cell(cell, args.out, stem, extra={"set_seed": args.seed, "set_index": i})
        counts[kind] += 1
    elapsed = time.perf_counter() - start
    print(f"wrote {args.n} cells ({counts['normal']} normal, {counts['dysplastic']} dysplastic) to "
          f"{args.out} in {elapsed:.1f} s; generator {GENERATOR_VERSION}, seed {args.seed}")
    return 0
