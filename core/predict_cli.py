"""``python -m core predict``: score image files and folders into a CSV."""
from __future__ import annotations

from pathlib import Path

from core.config import DEFAULT_THRESHOLD, IMAGE_SUFFIXES, INTERPOLATIONS
from core.errors import DisplasiaError


def add_parsers(subparsers) -> None:
    p = subparsers.add_parser("predict", help="score images with a model and write a CSV",
                              description="Score cell images: P(normal), predicted label and agreement with the known class.")
    add_model_arguments(p)
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"score below this is dysplastic (default {DEFAULT_THRESHOLD})")
    p.add_argument("--interpolation", choices=INTERPOLATIONS, default="nearest",
                   help="resizing to the model input (default nearest, as DisplasiaNet was trained)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders")
    p.add_argument("--csv", required=True, metavar="OUT", help="output CSV file")
    p.set_defaults(func=run)


def add_model_arguments(parser) -> None:
    """``--model`` / ``--weights``, shared by every command that needs a model."""
    parser.add_argument("--model", metavar="PATH", help="model file: .json (+ --weights), .h5 or .keras (default: bundled demo model)")
    parser.add_argument("--weights", metavar="PATH", help="HDF5 weights for a .json architecture")


def load_model_from_args(args):
    from core.config import demo_model_path
    from core.model_io import load_model

    if args.model:
        return load_model(args.model, args.weights)
    json_path, weights = demo_model_path()
    if not json_path.is_file():
        raise DisplasiaError("No --model given and the bundled demo model is missing (see README: train-demo).")
    return load_model(json_path, weights)


def collect_cells(inputs, skipped: list | None = None) -> list:
    """Cells from image files and folders, each with the class its folder or name gives.

    Files of a folder that cannot be used are left out and appended to ``skipped`` as
    ``(name, reason)``; an unusable file named directly is an error.
    """
    skipped = [] if skipped is None else skipped
    from core.datasets import cell_for_file, scan_dataset

    cells = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            dataset = scan_dataset(path)
            cells.extend(dataset.cells)
            skipped.extend(dataset.skipped)
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise DisplasiaError(f"{path.name} is not an image file ({', '.join(IMAGE_SUFFIXES)}).")
            cells.append(cell_for_file(path))
        else:
            raise DisplasiaError(f"Input not found: {path}")
    return cells


def run(args) -> int:
    from core.io_utils import atomic_write_bytes, check_output_path, csv_text
    from core.predict import check_threshold, predict_cells
    from core.progress import ProgressBar

    if args.batch_size < 1:
        raise DisplasiaError("--batch-size must be at least 1.")
    check_threshold(args.threshold)
    out = check_output_path(args.csv)
    skipped = []
    cells = collect_cells(args.inputs, skipped)
    loaded = load_model_from_args(args)
    progress = ProgressBar("predict") if len(cells) > args.batch_size else None
    predictions = predict_cells(loaded, cells, threshold=args.threshold, interpolation=args.interpolation,
                                batch_size=args.batch_size, progress=progress)
    rows = [["image", "score", "prediction", "label", "agrees", "path"]]
    for cell, p in zip(cells, predictions):
        agrees = "" if p.agrees is None else str(p.agrees).lower()
        rows.append([cell.path.name, f"{p.score:.6f}", p.prediction, p.label or "", agrees, str(cell.path)])
    atomic_write_bytes(out, csv_text(rows).encode("utf-8"))
    n_wrong = sum(p.agrees is False for p in predictions)
    for name, reason in skipped:
        print(f"skipped {name}: {reason}")
    print(f"{len(predictions)} images scored -> {out} ({n_wrong} disagree with their known class"
          f"{f'; {len(skipped)} files skipped' if skipped else ''})")
    return 0
