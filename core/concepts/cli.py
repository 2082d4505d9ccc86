"""``python -m core concepts tcav|sweep``: concept tests and sweeps written as CSV and PNG."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from core.config import INTERPOLATIONS
from core.errors import DisplasiaError


def add_parsers(subparsers) -> None:
    p = subparsers.add_parser("concepts", help="concept-level explanations: TCAV and concept sweeps",
                              description="Does the model use what pathologists use? TCAV scores per concept, "
                                          "layer and class, and sweeps of one generator feature.")
    sub = p.add_subparsers(dest="concepts_command", metavar="WHAT", required=True)

    t = sub.add_parser("tcav", help="TCAV of every concept at several layers, with the random-concept test")
    _common(t)
    t.add_argument("--source", choices=("generator", "annotations"), default="generator",
                   help="concept sets from the generator's latent features or from pathologists' readings of "
                        "--dataset (default generator)")
    t.add_argument("--dataset", metavar="DIR",
                   help="score the labelled cells of this folder instead of generated cells (and, with "
                        "--source annotations, build the concept sets from their readings)")
    t.add_argument("--db", metavar="URL", help="annotation database (default: the JSON files in DIR/annotations)")
    t.add_argument("--concepts", nargs="+", metavar="NAME", help="generator concepts to test (default all)")
    t.add_argument("--layers", nargs="+", metavar="LAYER",
                   help="layers (default: the post-ReLU output of every conv block)")
    t.add_argument("--n", type=int, default=40, help="cells per concept side (default 40)")
    t.add_argument("--class-cells", type=int, default=40, help="generated cells per class (default 40)")
    t.add_argument("--random", type=int, default=80, help="random cells to draw random sets from (default 80)")
    t.add_argument("--runs", type=int, default=20, help="CAVs per concept and random runs (default 20)")
    t.add_argument("--classifier", choices=("logistic", "svm"), default="logistic")
    t.add_argument("--correction", choices=("holm", "bonferroni"), default="holm")
    t.add_argument("--alpha", type=float, default=0.05, help="significance level after correction")
    t.add_argument("--min-accuracy", type=float, default=0.65,
                   help="held-out CAV accuracy below which a concept is 'not separable' (default 0.65)")
    t.set_defaults(func=run_tcav_command)

    s = sub.add_parser("sweep", help="vary one generator feature of a batch of cells and score each step")
    _common(s)
    s.add_argument("--feature", default="granule_density", help="feature to sweep (default granule_density)")
    s.add_argument("--cells", type=int, default=20, help="generated cells in the batch (default 20)")
    s.add_argument("--kind", choices=("mixed", "normal", "dysplastic"), default="mixed")
    s.add_argument("--image", metavar="FILE", help="sweep this generated image's twin (needs truth/<stem>.json)")
    s.set_defaults(func=run_sweep_command)


def _common(p) -> None:
    from core.predict_cli import add_model_arguments

    add_model_arguments(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--interpolation", choices=INTERPOLATIONS, default="nearest")
    p.add_argument("--cache", metavar="DIR", help="cache folder (default: DISPLASIA_CACHE_DIR or .cache/displasia)")
    p.add_argument("--no-cache", action="store_true", help="always recompute")


def _cache(args):
    if args.no_cache:
        return None
    from core.cache import ExplanationCache

    return ExplanationCache(args.cache)


def _out(args) -> Path:
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DisplasiaError(f"Cannot create the output folder {out}: {exc.strerror}.") from None
    return out


def concept_inputs(loaded, *, source: str, dataset=None, db=None, concepts=None, n: int = 40, class_cells: int = 40,
                   random: int = 80, seed: int = 0, interpolation: str = "nearest"):
    """The concept sets, random pool and class inputs of a TCAV run (shared by CLI and page)."""
    from core.concepts import sets

    size = loaded.description.image_size
    cells = None
    if dataset is not None:
        from core.datasets import scan_dataset

        cells = scan_dataset(dataset).cells
    if source == "annotations":
        if cells is None:
            raise DisplasiaError("Annotation-based concepts need --dataset (the folder the readings are of).")
        readings = sets.dataset_readings(cells, _store(db, Path(dataset)))
        if not readings:
            raise DisplasiaError(f"No cell of {Path(dataset).name} has a pathologist's reading.")
        concept_sets = sets.annotation_concepts(cells, readings, size=size, interpolation=interpolation)
        concept_sets.append(sets.control_concept(n=n, seed=seed + 7919, size=size, interpolation=interpolation))
    else:
        concept_sets = sets.generator_concepts(n=n, seed=2018 + seed, names=concepts, size=size,
                                               interpolation=interpolation)
    pool = sets.random_cells(n=random, seed=99 + seed, size=size, interpolation=interpolation)
    if cells is not None:
        inputs = sets.dataset_class_cells(cells, size=size, interpolation=interpolation)
    else:
        inputs = sets.class_cells(n=class_cells, seed=5 + seed, size=size, interpolation=interpolation)
    return concept_sets, pool, inputs


def _store(url, folder: Path):
    from core.annotations.store import AnnotationStore

    if url:
        return AnnotationStore(url)
    store = AnnotationStore("sqlite://")
    if (folder / "annotations").is_dir():
        store.seed_from_dir(folder / "annotations")
    return store


def run_tcav_command(args) -> int:
    from core.concepts import figures
    from core.concepts.tcav import TcavParams, run_tcav, sentence
    from core.io_utils import atomic_write_bytes, frame_csv_bytes
    from core.predict_cli import load_model_from_args
    from core.progress import ProgressBar

    if min(args.n, args.class_cells, args.random, args.runs) < 1:
        raise DisplasiaError("--n, --class-cells, --random and --runs must be at least 1.")
    out = _out(args)
    loaded = load_model_from_args(args)
    concept_sets, pool, inputs = concept_inputs(
        loaded, source=args.source, dataset=args.dataset, db=args.db, concepts=args.concepts, n=args.n,
        class_cells=args.class_cells, random=args.random, seed=args.seed, interpolation=args.interpolation)
    params = TcavParams(layers=tuple(args.layers or ()), runs=args.runs, classifier=args.classifier,
                        correction=args.correction, alpha=args.alpha, min_accuracy=args.min_accuracy, seed=args.seed)
    start = time.perf_counter()
    result = run_tcav(loaded, concept_sets, pool, inputs, params, cache=_cache(args), progress=ProgressBar("tcav"))
    seconds = time.perf_counter() - start
    table = result.table.copy()
    table["sentence"] = [sentence(row) for _, row in table.iterrows()]
    atomic_write_bytes(out / "tcav.csv", frame_csv_bytes(table))
    for target in ("dysplastic", "normal"):
        atomic_write_bytes(out / f"tcav_{target}.png", figures.tcav_png(result, target))
    from core.concepts.report import concepts_section_html

    page = ("<!doctype html><html><head><meta charset='utf-8'><title>Concepts</title></head><body>"
            f"{concepts_section_html(result)}</body></html>")
    atomic_write_bytes(out / "concepts.html", page.encode("utf-8"))
    layer = result.params.layers[-1]
    for target in ("dysplastic", "normal"):
        ranked = result.ranking(layer, target)
        if ranked.empty:
            print(f"{layer}, {target}: no {target} cells to score")
            continue
        print(f"{layer}, {target}: " + ", ".join(
            f"{r.concept} {r.score:.2f}{'*' if r.significant else ''}" if r.status == "scored" else
            f"{r.concept} ({r.status})" for r in ranked.itertuples()))
    control = table[table["family"] == "control"]
    print(f"random control significant in {int(control['significant'].sum())} of {len(control)} tests")
    print(f"tcav: {len(concept_sets)} concepts x {len(result.params.layers)} layers x {args.runs} runs in "
          f"{seconds:.1f} s ({'cache' if result.from_cache else 'computed'}); wrote {out}/tcav.csv, PNGs and concepts.html",
          file=sys.stderr)
    return 0


def run_sweep_command(args) -> int:
    from core.concepts import figures, sweeps
    from core.io_utils import atomic_write_bytes
    from core.predict_cli import load_model_from_args
    from core.progress import ProgressBar

    sweeps.check_feature(args.feature)
    out = _out(args)
    if args.image:
        twin = sweeps.twin_features(args.image)
        if twin is None:
            raise DisplasiaError(f"{Path(args.image).name} has no generator ground truth (truth/<stem>.json); "
                                 "sweeps need a generated cell.")
        cells, names = [twin], (Path(args.image).name,)
    else:
        if args.cells < 1:
            raise DisplasiaError("--cells must be at least 1.")
        cells = sweeps.generated_cells(args.cells, seed=11 + args.seed, kind=args.kind)
        names = tuple(f"cell {i}" for i in range(len(cells)))
    loaded = load_model_from_args(args)
    start = time.perf_counter()
    result = sweeps.sweep(loaded, cells, args.feature, interpolation=args.interpolation, names=names,
                          cache=_cache(args), progress=ProgressBar("sweep"))
    seconds = time.perf_counter() - start
    atomic_write_bytes(out / f"sweep_{args.feature}.csv", figures.sweep_csv(result).encode("utf-8"))
    atomic_write_bytes(out / f"sweep_{args.feature}.png", figures.sweep_png(result))
    print(sweeps.describe_sweep(result))
    if len(cells) > 1:
        strict = float(sweeps.monotone_curves(result.logit, tolerance=0.0).mean())
        rho = result.spearman()
        print(f"monotone logit: {result.monotone().mean():.0%} of cells within 5% of their range, {strict:.0%} "
              f"strictly; Spearman rho(feature, logit) >= 0.9 for {np.mean(np.abs(rho) >= 0.9):.0%} "
              f"(median {np.nanmedian(rho):+.2f})")
    print(f"sweep: {len(cells)} cells x {len(result.values)} steps in {seconds:.1f} s "
          f"({'cache' if result.from_cache else 'computed'}); wrote {out}", file=sys.stderr)
    return 0
