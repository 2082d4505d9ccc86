"""``python -m core annotations ...``: import, export, seed, agreement, outline evaluation.

Registered in ``core/cli.py``; importing this module does not import TensorFlow.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.errors import DisplasiaError


def add_parsers(subparsers) -> None:
    """Add the ``annotations`` command and its sub-commands to ``subparsers``."""
    top = subparsers.add_parser("annotations", help="pathologist annotations: import, export, ...",
                                description="Pathologist annotations stored in the annotation database.")
    top.set_defaults(func=lambda args: (top.print_help(), 2)[1])
    sub = top.add_subparsers(dest="annotations_command", metavar="COMMAND")

    def db_option(p):
        p.add_argument("--db", metavar="URL", default=None,
                       help="SQLAlchemy database URL (default: env DISPLASIA_DB or var/annotations.sqlite)")

    p = sub.add_parser("import-legacy", help="import the earlier tool's <image stem>_json.txt files")
    p.add_argument("dir", type=Path, help="folder with the legacy files beside their images")
    db_option(p)
    p.add_argument("--annotator", default="legacy", help="annotator name to record (default: legacy)")
    p.set_defaults(func=_import_legacy)

    p = sub.add_parser("seed", help="import project JSON annotation files (idempotent)")
    p.add_argument("dir", type=Path, nargs="?", default=None,
                   help="folder of *.json annotation files (default: the demo annotations)")
    db_option(p)
    p.set_defaults(func=_seed)

    p = sub.add_parser("export", help="export the latest annotations as CSV, JSON, masks, overlays")
    db_option(p)
    p.add_argument("--csv", type=Path, required=True, metavar="OUT", help="score table to write")
    p.add_argument("--json", type=Path, metavar="DIR", help="write project JSON files here")
    p.add_argument("--masks", type=Path, metavar="DIR", help="write cell/nucleus/cytoplasm PNG masks here")
    p.add_argument("--overlays", type=Path, metavar="DIR", help="write overlay PNGs here (needs --images)")
    p.add_argument("--images", type=Path, metavar="DIR", help="folder of the annotated images")
    p.set_defaults(func=_export)

    p = sub.add_parser("agreement", help="agreement between annotators (kappa, mask IoU)")
    db_option(p)
    p.add_argument("--csv", type=Path, metavar="OUT", help="also write the table as CSV")
    p.set_defaults(func=_agreement)

    p = sub.add_parser("segment-eval", help="IoU of the automatic outline suggestion against truth masks")
    p.add_argument("images", type=Path, help="folder of cell images")
    p.add_argument("--truth", type=Path, required=True,
                   help="folder with <stem>_cell.png and <stem>_nucleus.png")
    p.add_argument("--csv", type=Path, metavar="OUT", help="also write per-image IoU as CSV")
    p.set_defaults(func=_segment_eval)


def _store(args):
    from .store import AnnotationStore
    return AnnotationStore(args.db)


def _import_legacy(args) -> int:
    from .legacy import import_legacy_dir
    with _store(args) as store:
        report = import_legacy_dir(store, args.dir, annotator=args.annotator)
    for line in report.lines():
        print(line)
    return 0 if not report.skipped else 1


def _seed(args) -> int:
    if args.dir is None:
        from core.config import DEMO_ANNOTATIONS_DIR
        args.dir = DEMO_ANNOTATIONS_DIR
    with _store(args) as store:
        report = store.seed_from_dir(args.dir)
    for name in report.imported:
        print(f"imported {name}")
    for name, why in report.skipped:
        print(f"skipped {name}: {why}")
    print(f"{len(report.imported)} imported, {len(report.unchanged)} unchanged, "
          f"{len(report.skipped)} skipped")
    return 0 if not report.skipped else 1


def _export(args) -> int:
    from .export import export_store
    if (args.overlays is None) != (args.images is None):
        raise DisplasiaError("--overlays and --images go together")
    with _store(args) as store:
        report = export_store(store, csv_path=args.csv, json_dir=args.json, masks_dir=args.masks,
                              overlays_dir=args.overlays, images_dir=args.images)
    print(f"{report.rows} rows -> {args.csv}")
    if args.json:
        print(f"{report.json_files} JSON files -> {args.json}")
    if args.masks:
        print(f"{report.mask_files} mask files -> {args.masks}")
    if args.overlays:
        print(f"{report.overlays} overlays -> {args.overlays}")
    for problem in report.problems:
        print(f"warning: {problem}", file=sys.stderr)
    return 0


def _print_table(rows: list[dict], csv_path: Path | None) -> None:
    import csv
    if not rows:
        print("(nothing to compare)")
        return
    cols = list(rows[0])
    print("\t".join(cols))
    for r in rows:
        print("\t".join(f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols))
    if csv_path is not None:
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        with csv_path.open("w", newline="", encoding="utf-8") as fh:
            from core.io_utils import csv_safe

            w = csv.DictWriter(fh, fieldnames=cols)
            w.writeheader()
            w.writerows({k: csv_safe(v) for k, v in r.items()} for r in rows)


def _agreement(args) -> int:
    from .agreement import agreement_table
    with _store(args) as store:
        rows = agreement_table(store.all_latest())
    _print_table(rows, args.csv)
    return 0


def _segment_eval(args) -> int:
    from .segment import evaluate_folder
    result = evaluate_folder(args.images, args.truth)
    _print_table(result.rows, args.csv)
    print(f"n={result.n}  cell IoU mean {result.cell_mean:.3f} min {result.cell_min:.3f}  "
          f"nucleus IoU mean {result.nucleus_mean:.3f} min {result.nucleus_min:.3f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the ``annotations`` command on its own (``python -m core.annotations.cli ...``)."""
    parser = argparse.ArgumentParser(prog="python -m core")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except DisplasiaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
