"""``python -m core report``: the HTML summary report of a dataset, or of one cell of it.

No TensorFlow import happens before the command runs.
"""
from __future__ import annotations

import sys
from pathlib import Path

from core.config import DEFAULT_INTERPOLATION, DEFAULT_THRESHOLD
from core.errors import DisplasiaError


def add_parsers(subparsers) -> None:
    from core.config import DEFAULT_THRESHOLD, INTERPOLATIONS
    from core.explain.base import TARGETS
    from core.predict_cli import add_model_arguments
    from core.summary.maps import IMAGE_METHODS

    p = subparsers.add_parser(
        "report", help="write a self-contained HTML summary report of a dataset or one cell",
        description="Summary and evidence report: the study's tables, where each method looks, which method "
                    "can be trusted, pathologist vs model. One HTML file, images embedded.")
    add_model_arguments(p)
    p.add_argument("folder", metavar="DIR", help="folder of cell images")
    p.add_argument("--image", metavar="NAME", help="report on this one cell only")
    p.add_argument("--methods", nargs="+", default=list(IMAGE_METHODS), metavar="NAME",
                   help=f"explanation methods (default: {' '.join(IMAGE_METHODS)})")
    p.add_argument("--target", choices=("label", "prediction", *TARGETS), default="label",
                   help="class each map explains (default: the cell's dataset class)")
    p.add_argument("--patches", nargs="*", type=int, default=[5, 10, 20, 40], metavar="PX",
                   help="occlusion summary patch sizes (default 5 10 20 40; none to skip)")
    p.add_argument("--steps", type=int, default=20, help="deletion/insertion steps (0 = skip; default 20)")
    p.add_argument("--tile", type=int, default=1, metavar="PX",
                   help="deletion/insertion unit: 1 = single pixels (default), N = N x N squares removed whole")
    p.add_argument("--randomisation-cells", type=int, default=12, metavar="N",
                   help="cells for the model-randomisation check (0 = skip; default 12)")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"score below this is dysplastic (default {DEFAULT_THRESHOLD})")
    p.add_argument("--interpolation", choices=INTERPOLATIONS, default="nearest", help="resizing to the model input")
    p.add_argument("--cache", metavar="DIR", help="explanation cache folder (default: DISPLASIA_CACHE_DIR or .cache/displasia)")
    p.add_argument("--no-cache", action="store_true", help="always recompute")
    p.add_argument("--db", metavar="URL",
                   help="annotation database (SQLAlchemy URL); default: the JSON files in DIR/annotations")
    p.add_argument("--out", required=True, metavar="FILE.html", help="output HTML file")
    p.add_argument("--tables", metavar="DIR", help="also write every table of the dataset report as CSV into DIR")
    p.add_argument("--concepts", action="store_true",
                   help="add the concepts section: TCAV of the generator's concepts on this dataset's cells (cached)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="compute the maps on this Dask cluster first (workers share the cache folder)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="compute the maps on a local Dask cluster of N processes first")
    p.set_defaults(func=run_report)


def run_report(args) -> int:
    from core.io_utils import atomic_write_bytes
    from core.predict import check_threshold
    from core.progress import ProgressBar
    from core.summary import engine, report
    from core.summary.study import load_study

    out = Path(args.out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise DisplasiaError(f"Output '{out.name}' must end in .html.")
    if not out.parent.is_dir():
        raise DisplasiaError(f"Output folder does not exist: {out.parent}")
    if not Path(args.folder).is_dir():
        raise DisplasiaError(f"Image folder not found: {args.folder}")
    if args.steps < 0 or args.randomisation_cells < 0 or args.tile < 1 or any(p < 1 for p in args.patches):
        raise DisplasiaError("--steps and --randomisation-cells must not be negative; --tile and --patches must be at "
                             "least 1.")
    check_threshold(args.threshold)
    if args.tables and not Path(args.tables).is_dir():
        raise DisplasiaError(f"Tables folder does not exist: {args.tables}")
    from core.summary.maps import check_methods

    methods = check_methods(args.methods)
    if args.scheduler or args.workers is not None:
        if args.no_cache:
            raise DisplasiaError("--scheduler and --workers fill the cache: they cannot be used with --no-cache.")
        if args.workers is not None and args.workers < 1:
            raise DisplasiaError("--workers must be at least 1.")
        _maps_on_cluster(args, methods)
    store = _store(args.db)
    from core.predict_cli import load_model_from_args

    loaded = load_model_from_args(args)
    cache = None
    if not args.no_cache:
        from core.cache import ExplanationCache

        cache = ExplanationCache(args.cache)
    study = load_study(args.folder, loaded, store=store, threshold=args.threshold, interpolation=args.interpolation,
                       names=[args.image] if args.image else None, progress=ProgressBar("reading"))
    if args.image:
        text = report.cell_report_html(study, 0, methods=methods, target=args.target, cache=cache,
                                       steps=args.steps, progress=ProgressBar("maps"))
    else:
        bar = ProgressBar("report")
        summary = engine.summarise_dataset(
            study, methods=methods, target=args.target, cache=cache, patches=tuple(args.patches), steps=args.steps,
            tile=args.tile,
            randomisation_cells=args.randomisation_cells, progress=bar,
            on_stage=lambda name: print(f"report: {name}", file=sys.stderr))
        extra = [("concepts", "Concepts", _concepts_html(loaded, args, cache))] if args.concepts else []
        text = report.dataset_report_html(study, summary, extra_sections=extra)
        if args.tables:
            engine.write_tables(summary, args.tables)
        print("report: seconds per stage: " + ", ".join(f"{k} {v:g}" for k, v in summary.timings.items()),
              file=sys.stderr)
    atomic_write_bytes(out, text.encode("utf-8"))
    print(f"wrote {out} ({len(text) / 1e6:.1f} MB, {len(study)} cell{'s' if len(study) != 1 else ''})",
          file=sys.stderr)
    return 0


def _concepts_html(loaded, args, cache) -> str:
    """TCAV of the generator's concepts, scored on the dataset's cells of each class (through the cache)."""
    from core.concepts.cli import concept_inputs
    from core.concepts.report import concepts_section_html
    from core.concepts.tcav import TcavParams, run_tcav
    from core.progress import ProgressBar

    concept_sets, pool, inputs = concept_inputs(loaded, source="generator", dataset=args.folder,
                                                interpolation=args.interpolation)
    result = run_tcav(loaded, concept_sets, pool, inputs, TcavParams(), cache=cache, progress=ProgressBar("concepts"))
    return concepts_section_html(result)


def _maps_on_cluster(args, methods) -> None:
    run = maps_on_cluster(args.folder, methods, target=args.target, patches=args.patches, model=args.model,
                          weights=args.weights, cache=args.cache, interpolation=args.interpolation,
                          threshold=args.threshold, scheduler=args.scheduler, workers=args.workers or 2,
                          names=[args.image] if args.image else None)
    for name, reason in run.failures:
        print(f"report: {name} skipped on the cluster: {reason}", file=sys.stderr)


def maps_on_cluster(folder, methods, *, target: str, patches, model, weights=None, cache,
                    interpolation: str = DEFAULT_INTERPOLATION, threshold: float = DEFAULT_THRESHOLD,
                    scheduler=None, workers: int = 2, client=None, names=None, progress=None):
    """Compute every map the report reads on a Dask cluster, into the cache the report then hits.

    The same keys as the report's own calls: each method with the summary's parameters
    (``summary_params``) for each cell's target, and the occlusion summary's patch sizes
    (``summary_occlusion_params``, target normal). Returns the finished ``PrecomputeRun``.
    """
    from core.distributed import make_jobs, print_progress, run_precompute
    from core.summary.maps import summary_params
    from core.summary.occlusion import summary_occlusion_params

    extra = []
    for patch in patches:
        extra += make_jobs(["occlusion"], ["normal"], {"occlusion": summary_occlusion_params(patch)})
    run = run_precompute(folder, methods, targets=[target], params={m: summary_params(m) for m in methods},
                         model=model, weights=weights, cache=cache, interpolation=interpolation, threshold=threshold,
                         scheduler=scheduler, workers=workers, client=client,
                         progress=progress if progress is not None else print_progress(), background=False,
                         names=names, extra_jobs=extra)
    run.wait()
    return run


def _store(url):
    if not url:
        return None
    from core.annotations.store import AnnotationStore

    try:
        return AnnotationStore(url)
    except DisplasiaError:
        raise
    except Exception as exc:  # SQLAlchemy raises many types for a bad URL or an unreadable file
        raise DisplasiaError(f"Cannot open the annotation database '{url}': {exc.__class__.__name__}.") from None
