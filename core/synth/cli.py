"""``python -m core synth``: write generated cells and their ground truth to a folder;
``python -m core synth realism REAL_DIR``: how far generated cells are from real ones."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from core.errors import DisplasiaError

from . import GENERATOR_VERSION, GENERATOR_VERSIONS, generate_cell
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
    p.add_argument("--out", type=Path, help="output folder (created if missing; required)")
    p.add_argument("--n", type=int, default=20, help="number of cells (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of the set (default 0)")
    p.add_argument("--kind", choices=("normal", "dysplastic", "mixed"), default="mixed",
                   help="class of the cells; mixed draws each 50/50 (default)")
    p.add_argument("--generator", choices=GENERATOR_VERSIONS, default=GENERATOR_VERSION,
                   help=f"generator version (default {GENERATOR_VERSION}, the demo model's)")
    p.set_defaults(func=run_synth)
    sub = p.add_subparsers(dest="synth_command", metavar="SUBCOMMAND")
    r = sub.add_parser(
        "realism",
        help="two-sample test and per-part distances, real vs synthetic normal cells",
        description="Train a small classifier to tell real from synthetic NORMAL neutrophils on colour and "
                    "texture features and report its accuracy on held-out cells (every fourth real cell by "
                    "sorted name is held out; 0.5 = indistinguishable), plus per-part Lab colour and texture "
                    "of background, red cells, cytoplasm and nucleus.",
    )
    r.add_argument("real_dir", type=Path, help="folder of real normal neutrophil images")
    src = r.add_mutually_exclusive_group()
    src.add_argument("--synthetic", type=Path, help="folder of synthetic normal cells (default: generate them)")
    src.add_argument("--n", type=int, default=200, help="synthetic cells to generate (default 200)")
    r.add_argument("--seed", type=int, default=None, help="seed of the generated cells (default 777)")
    r.add_argument("--generator", choices=GENERATOR_VERSIONS, default=GENERATOR_VERSION,
                   help=f"generator version of the generated cells (default {GENERATOR_VERSION})")
    r.add_argument("--classifier", choices=("logistic", "boosting"), default="logistic")
    r.add_argument("--features", choices=("hand", "pixels", "random-conv"), default="hand",
                   help="what the classifier sees: hand-made colour/texture features (default; the generator "
                        "was tuned against them), 24x24 pixel blocks, or random convolution features")
    r.add_argument("--sheet", type=Path, default=None,
                   help="also write a PNG of held-out real cells beside synthetic ones")
    r.set_defaults(func=run_realism)
    b = sub.add_parser(
        "texture-bank",
        help="build generator 3.3's bank of real fine-texture patches from real normal cells",
        description="Cut high-pass residual patches (image minus a low-pass inside each part) of background, red "
                    "cells, cytoplasm and nucleus out of the TUNING real cells of REAL_DIR (every fourth cell by "
                    "sorted name is held out and never read) and write them as a compressed .npz. Developer tool: "
                    "the generator reads only the written file.",
    )
    b.add_argument("real_dir", type=Path, help="folder of real normal neutrophil images")
    b.add_argument("--out", type=Path, default=None,
                   help="bank file to write (default data/synth/texture_bank.npz, the one generator 3.3 reads)")
    b.set_defaults(func=run_texture_bank)
    c = sub.add_parser(
        "canvases",
        help="build generator 4.0's real canvases from real normal cells, and fit its stain",
        description="Copy the TUNING real cells of REAL_DIR (every fourth cell by sorted name is held out and never "
                    "read) whose neutrophil outlines cleanly into data/synth/canvases, byte for byte, with a "
                    "manifest; then fit how generator 4.0 takes a canvas' stain (core/synth/canvas_stats.json). "
                    "Developer tool: the generator reads only the written files.",
    )
    c.add_argument("real_dir", type=Path, nargs="?", help="folder of real normal neutrophil images")
    c.add_argument("--fit-only", action="store_true", help="only refit the stain on the bundled canvases")
    c.set_defaults(func=run_canvases)


def run_synth(args: argparse.Namespace) -> int:
    if args.out is None:
        raise DisplasiaError("--out is required (or use `synth realism REAL_DIR`).")
    if args.n < 1:
        raise DisplasiaError("--n must be at least 1.")
    if args.seed < 0:
        raise DisplasiaError("--seed must be zero or positive.")
    start = time.perf_counter()
    counts = {"normal": 0, "dysplastic": 0}
    for i in range(args.n):
        cell = generate_cell(args.seed, i, args.kind, version=args.generator)
        kind = cell.features.kind
        stem = f"{CLASS_PREFIX[kind]}_{capture_name(cell, capture_id(args.seed, i))}"
        write_cell(cell, args.out, stem, extra={"set_seed": args.seed, "set_index": i})
        counts[kind] += 1
    elapsed = time.perf_counter() - start
    print(f"wrote {args.n} cells ({counts['normal']} normal, {counts['dysplastic']} dysplastic) to "
          f"{args.out} in {elapsed:.1f} s; generator {args.generator}, seed {args.seed}")
    return 0


def run_realism(args: argparse.Namespace) -> int:
    from .realism import REALISM_SEED, image_paths, load_capture, realism_report, synthetic_cells

    start = time.perf_counter()
    real_paths = image_paths(args.real_dir)
    real = [load_capture(p) for p in real_paths]
    captures = None
    if args.synthetic is not None:
        synth = [load_capture(p) for p in image_paths(args.synthetic)]
        source = str(args.synthetic)
    else:
        if args.n < 8:
            raise DisplasiaError("--n must be at least 8.")
        seed = REALISM_SEED if args.seed is None else args.seed
        cells = synthetic_cells(args.n, seed, version=args.generator)
        synth = [cell.rgb for cell in cells]
        captures = [(cell.canvas or {}).get("canvas") for cell in cells]
        source = f"generator {args.generator}, seed {seed}"
    report = realism_report(real, synth, classifier=args.classifier, source=source, features=args.features,
                            real_names=[p.name for p in real_paths], synth_captures=captures)
    for line in report.lines():
        print(line)
    if args.sheet is not None:
        from .realism import comparison_sheet, is_held_out

        held = [x for i, x in enumerate(real) if is_held_out(i)][:8]
        args.sheet.parent.mkdir(parents=True, exist_ok=True)
        comparison_sheet(held, synth[:8]).save(args.sheet, optimize=True)
        print(f"sheet: {args.sheet}")
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0


def run_texture_bank(args: argparse.Namespace) -> int:
    from .texture import BANK_PATH, build_texture_bank, save_texture_bank

    out = BANK_PATH if args.out is None else args.out
    bank = build_texture_bank(args.real_dir)
    size = save_texture_bank(bank, out)
    print(f"wrote {out} ({size / 1e6:.2f} MB)")
    return 0


def run_canvases(args: argparse.Namespace) -> int:
    from .canvas import build_canvases, canvas_entries, fit_stain, load_canvas

    if not args.fit_only:
        if args.real_dir is None:
            raise DisplasiaError("give the folder of real cells (REAL_DIR), or --fit-only.")
        if not args.real_dir.is_dir():
            raise DisplasiaError(f"folder not found: {args.real_dir}")
        build_canvases(args.real_dir)
        for cached in (canvas_entries, load_canvas):
            cached.cache_clear()
    fit_stain("4.0")
    return 0
