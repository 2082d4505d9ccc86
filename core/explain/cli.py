"""``python -m core explain | methods | precompute``: explanations from the command line.

``explain`` writes one map (``.npy``: the raw ``(H, W)`` float32 map; ``.png``: the map over
the cell), ``methods`` lists the registry, ``precompute`` fills the cache for a folder.
No TensorFlow import happens before a command runs.
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np

from core.errors import DisplasiaError
from core.explain.base import TARGETS
from core.explain.registry import METHODS, get_method, method_names

#: Methods precompute runs by default: the registry's ``precompute`` flag. (The background
#: test needs outlines; feature maps take one forward pass but ~14 MB per cell, so they are
#: left to on-demand use.)
PRECOMPUTE_DEFAULT = method_names(precompute=True)


def add_parsers(subparsers) -> None:
    from core.predict_cli import add_model_arguments

    p = subparsers.add_parser("explain", help="explain one cell image with one method",
                              description="Compute one explanation map for one image.")
    add_model_arguments(p)
    p.add_argument("image", metavar="IMAGE", help="cell image file")
    p.add_argument("--method", required=True, help=f"one of: {', '.join(METHODS)}")
    p.add_argument("--target", choices=TARGETS, default="dysplastic", help="class to explain (default dysplastic)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
                   help="method parameter, repeatable (see 'methods')")
    p.add_argument("--mask", metavar="PATH", help="cell mask image (white = cell) for the background test")
    p.add_argument("--out", required=True, metavar="FILE", help=".npy (raw map) or .png (map over the cell)")
    p.add_argument("--cache", metavar="DIR", help="cache folder (default: DISPLASIA_CACHE_DIR or .cache/displasia)")
    p.add_argument("--no-cache", action="store_true", help="always recompute")
    p.set_defaults(func=run_explain)

    p = subparsers.add_parser("methods", help="list explanation methods and their parameters")
    p.add_argument("--markdown", action="store_true", help="print the README's method table")
    p.add_argument("--update-readme", action="store_true",
                   help="rewrite the generated method table of README.md from the registry")
    p.set_defaults(func=run_methods)

    p = subparsers.add_parser("precompute", help="fill the explanation cache for a folder of cells",
                              description="Compute and cache explanations for every image of a folder.")
    add_model_arguments(p)
    p.add_argument("folder", metavar="DIR", help="folder of cell images")
    p.add_argument("--methods", nargs="+", default=list(PRECOMPUTE_DEFAULT), metavar="NAME",
                   help=f"methods (default: {' '.join(PRECOMPUTE_DEFAULT)})")
    p.add_argument("--targets", nargs="+", choices=(*TARGETS, "label", "prediction"), default=list(TARGETS),
                   help="classes (default both); label / prediction: each cell's dataset class / predicted class")
    p.add_argument("--cache", metavar="DIR", help="cache folder (shared by every worker)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run on this existing Dask cluster (default: a local cluster of --workers processes)")
    p.add_argument("--workers", type=int, default=2, metavar="N", help="local worker processes (default 2)")
    p.add_argument("--chunk", type=int, default=8, metavar="CELLS", help="cells per task (default 8)")
    p.add_argument("--threshold", type=float, default=None, help="score threshold for --targets label/prediction")
    p.add_argument("--interpolation", choices=("nearest", "bilinear", "bicubic"), default="nearest",
                   help="resizing to the model input (default nearest)")
    p.set_defaults(func=run_precompute)


def parse_settings(settings) -> dict:
    """``["patch=5", "fill=grey"]`` -> ``{"patch": "5", "fill": "grey"}`` (validated later)."""
    values = {}
    for item in settings:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise DisplasiaError(f"Setting '{item}' must look like key=value.")
        values[key.strip()] = value.strip()
    return values


def methods_markdown() -> str:
    """The README's method table, built from the registry (a test keeps the README in step)."""
    rows = ["| method | registry name | page | map values | on Compare | precompute | summary | reference |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    meaning = {"supports": "signed: + supports the class", "magnitude": "magnitude (no direction)",
               "score": "class score with the place hidden"}
    for spec in METHODS.values():
        flags = ["yes" if flag else "" for flag in (spec.compare, spec.precompute, spec.localisation)]
        values = meaning[spec.sign] + (f"; `{spec.signed_param}=yes`: {meaning['supports']}" if spec.signed_param else "")
        rows.append(f"| {spec.title} | `{spec.name}` | `{spec.page}` | {values} | "
                    + " | ".join(flags) + f" | {spec.reference} |")
    return "\n".join(rows)


README_TABLE = ("<!-- methods-table -->\n", "\n<!-- /methods-table -->")


def update_readme(path) -> bool:
    """Replace the generated block of ``path`` with the registry's table; True if it changed."""
    from core.io_utils import atomic_write_bytes

    text = Path(path).read_text(encoding="utf-8")
    start, end = text.find(README_TABLE[0]), text.find(README_TABLE[1])
    if start < 0 or end < start:
        raise DisplasiaError(f"{path} has no generated method table ({README_TABLE[0].strip()} ... ).")
    new = text[:start + len(README_TABLE[0])] + methods_markdown() + text[end:]
    if new != text:
        atomic_write_bytes(Path(path), new.encode("utf-8"))
    return new != text


def run_methods(args) -> int:
    if getattr(args, "update_readme", False):
        from core.config import REPO_ROOT

        changed = update_readme(REPO_ROOT / "README.md")
        print("README.md method table " + ("updated" if changed else "already up to date"), file=sys.stderr)
        return 0
    if getattr(args, "markdown", False):
        print(methods_markdown())
        return 0
    for spec in METHODS.values():
        print(f"{spec.name:13s} {spec.title}: {spec.summary}")
        for p in spec.params:
            bounds = ""
            if p.choices:
                bounds = " {" + "|".join(p.choices) + "}"
            elif p.low is not None:
                fmt = (lambda v: f"{int(v)}") if p.kind == "int" else (lambda v: f"{v:g}")
                bounds = f" [{fmt(p.low)}..{fmt(p.high)}]"
            default = "(auto)" if p.default is None else p.default
            print(f"    {p.name}={default}{bounds}  {p.help}")
    return 0


def _cache(args):
    from core.cache import ExplanationCache

    return None if getattr(args, "no_cache", False) else ExplanationCache(args.cache)


def run_explain(args) -> int:
    from core.explain import compute
    from core.io_utils import atomic_write_bytes
    from core.predict_cli import load_model_from_args
    from core.preprocess import load_input, load_rgb

    spec = get_method(args.method)
    if spec.kind == "dataset":
        raise DisplasiaError(f"{spec.title} needs a whole folder: use 'precompute'.")
    params = spec.validate(parse_settings(args.settings))
    out = Path(args.out)
    if out.suffix.lower() not in (".npy", ".png"):
        raise DisplasiaError(f"Output '{out.name}' must end in .npy or .png.")
    image_path = Path(args.image)
    if not image_path.is_file():
        raise DisplasiaError(f"Image not found: {image_path}")
    mask = None
    if spec.needs_mask:
        if not args.mask:
            raise DisplasiaError("The background test needs --mask (cell outline image, white = cell).")
        mask = load_rgb(args.mask).mean(axis=-1) > 127
    loaded = load_model_from_args(args)
    image = load_input(image_path, loaded.description.image_size)
    exp = compute(spec.name, loaded, image[None], args.target, params=params, cache=_cache(args), cell_mask=mask)
    if out.suffix.lower() == ".npy":
        buffer = io.BytesIO()
        np.save(buffer, exp.maps[0], allow_pickle=False)
        atomic_write_bytes(out, buffer.getvalue())
    else:
        atomic_write_bytes(out, overlay_png(image, exp.maps[0]))
    print(f"{spec.name} ({args.target}): baseline P({args.target}) = {exp.baseline[0]:.4f}; map {exp.maps.shape[1:]} "
          f"[{exp.maps.min():.4g}, {exp.maps.max():.4g}] -> {out}", file=sys.stderr)
    return 0


def overlay_png(image, heat) -> bytes:
    """PNG of the map over the cell: min-max normalised, viridis-like (or blue-red when signed)."""
    from PIL import Image

    heat = np.asarray(heat, np.float64)
    if heat.min() < 0 < heat.max():
        scale = np.abs(heat).max()
        t = (heat / scale + 1) / 2
        stops = np.array([[0.02, 0.19, 0.58], [0.97, 0.97, 0.97], [0.70, 0.01, 0.15]])
    else:
        span = heat.max() - heat.min()
        t = (heat - heat.min()) / span if span > 0 else np.zeros_like(heat)
        stops = np.array([[0.27, 0.00, 0.33], [0.23, 0.32, 0.55], [0.13, 0.57, 0.55],
                          [0.37, 0.79, 0.38], [0.99, 0.91, 0.14]])
    grid = np.linspace(0, 1, len(stops))
    colour = np.stack([np.interp(t, grid, stops[:, c]) for c in range(3)], axis=-1)
    blend = 0.5 * np.asarray(image, np.float64) + 0.5 * colour
    buffer = io.BytesIO()
    Image.fromarray(np.clip(np.round(blend * 255), 0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def run_precompute(args) -> int:
    """Fill the cache on a Dask cluster (``core.distributed``); a killed run resumes where it stopped.

    Exit 0 when every cell was done, 1 when some cells failed (each is listed), 2 for bad input.
    """
    from core.config import DEFAULT_THRESHOLD
    from core.distributed import print_progress
    from core.distributed import run_precompute as run_on_cluster
    from core.predict import check_threshold

    threshold = check_threshold(DEFAULT_THRESHOLD if args.threshold is None else args.threshold)
    if args.workers < 1 or args.chunk < 1:
        raise DisplasiaError("--workers and --chunk must be at least 1.")
    for name in args.methods:
        if get_method(name).needs_mask:
            raise DisplasiaError(f"{get_method(name).title} needs cell outlines; run it from the dashboard.")
    run = run_on_cluster(args.folder, args.methods, targets=args.targets, model=args.model, weights=args.weights,
                         cache=args.cache, interpolation=args.interpolation, threshold=threshold,
                         scheduler=args.scheduler, workers=args.workers, chunk_size=args.chunk,
                         progress=print_progress(), background=False)
    if run.dashboard_link:
        print(f"precompute: Dask dashboard was {run.dashboard_link}", file=sys.stderr)
    run.wait()
    p = run.progress
    for name, reason in run.failures:
        print(f"precompute: skipped {name}: {reason}", file=sys.stderr)
    print(f"precompute: {p.done - p.failed} of {p.total} cells done in {p.elapsed:.1f} s "
          f"({p.computed} maps computed, {p.cached} found in the cache, {p.skipped} cells already complete, "
          f"{len(run.failures)} skipped)", file=sys.stderr)
    return 1 if run.failures else 0
