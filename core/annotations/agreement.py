"""Agreement between annotators of the same cells.

* Cohen's kappa on the chosen condition (dysplastic / normal);
* quadratic-weighted kappa on each signed score (cytoplasm -3..3, chromatin -3..3,
  lobes 0..1, total -6..7), over the full range of each score so that the weights do not
  depend on which values happen to occur;
* IoU of the cell and nucleus masks, averaged over the shared images.

Kappa is undefined (NaN) when chance agreement is already 1, e.g. both annotators gave
every cell the same single value.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import combinations

import numpy as np

from .masks import cell_masks, mask_iou
from .schema import MAX_DEGREE, TOTAL_MAX, TOTAL_MIN, Annotation

SCORE_RANGES = {
    "cytoplasm": tuple(range(-MAX_DEGREE, MAX_DEGREE + 1)),
    "chromatin": tuple(range(-MAX_DEGREE, MAX_DEGREE + 1)),
    "lobes": (0, 1),
    "total": tuple(range(TOTAL_MIN, TOTAL_MAX + 1)),
}


def weighted_kappa(a: Sequence, b: Sequence, categories: Sequence, *,
                   weights: str | None = "quadratic") -> float:
    """Cohen's kappa of two raters' labels; ``weights`` None, "linear" or "quadratic".

    ``categories`` are the possible labels in order (their order sets the weights).

    Examples
    --------
    >>> weighted_kappa(["d", "d", "n", "n"], ["d", "n", "n", "n"], ["d", "n"], weights=None)
    0.5
    """
    a, b = list(a), list(b)
    if len(a) != len(b):
        raise ValueError("both raters must label the same items")
    if not a:
        return float("nan")
    index = {c: i for i, c in enumerate(categories)}
    k = len(categories)
    observed = np.zeros((k, k))
    for x, y in zip(a, b):
        observed[index[x], index[y]] += 1
    observed /= observed.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    i, j = np.indices((k, k))
    if weights is None:
        w = (i != j).astype(float)
    elif weights == "linear":
        w = np.abs(i - j) / max(k - 1, 1)
    elif weights == "quadratic":
        w = ((i - j) / max(k - 1, 1)) ** 2
    else:
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    disagreement_expected = float((w * expected).sum())
    if disagreement_expected == 0:
        return float("nan")
    return float(1.0 - (w * observed).sum() / disagreement_expected)


def _scores(a: Annotation) -> dict[str, int]:
    s = a.scores
    return {"cytoplasm": s.cytoplasm, "chromatin": s.chromatin, "lobes": s.lobes, "total": s.total}


def pair_agreement(first: Sequence[Annotation], second: Sequence[Annotation]) -> dict:
    """Agreement of two annotators over paired readings of the same images."""
    if len(first) != len(second):
        raise ValueError("readings must be paired image by image")
    row: dict = {"n_images": len(first)}
    row["condition_agreement"] = (float(np.mean([x.condition is y.condition for x, y in zip(first, second)]))
                                  if first else float("nan"))
    row["condition_kappa"] = weighted_kappa([x.condition.value for x in first],
                                            [y.condition.value for y in second],
                                            ["dysplastic", "normal"], weights=None)
    sa, sb = [_scores(x) for x in first], [_scores(y) for y in second]
    for name, cats in SCORE_RANGES.items():
        row[f"{name}_wkappa"] = weighted_kappa([s[name] for s in sa], [s[name] for s in sb], cats)
    cell, nucleus = [], []
    for x, y in zip(first, second):
        if x.shapes and y.shapes and x.image_size == y.image_size:
            mx, my = cell_masks(x), cell_masks(y)
            cell.append(mask_iou(mx.cell, my.cell))
            nucleus.append(mask_iou(mx.nucleus, my.nucleus))
    row["cell_iou"] = float(np.mean(cell)) if cell else float("nan")
    row["nucleus_iou"] = float(np.mean(nucleus)) if nucleus else float("nan")
    return row


def agreement_table(annotations: Iterable[Annotation]) -> list[dict]:
    """One row per pair of annotators over the images both have read.

    Columns: annotator_a, annotator_b, n_images, condition_agreement, condition_kappa,
    cytoplasm_wkappa, chromatin_wkappa, lobes_wkappa, total_wkappa, cell_iou, nucleus_iou.
    Pass e.g. ``store.all_latest()``; ``pandas.DataFrame(rows)`` shows it as a table.
    """
    by_image: dict[str, dict[str, Annotation]] = {}
    for a in annotations:
        by_image.setdefault(a.image_sha256, {})[a.annotator] = a
    names = sorted({name for readers in by_image.values() for name in readers})
    rows = []
    for x, y in combinations(names, 2):
        shared = [r for r in by_image.values() if x in r and y in r]
        if not shared:
            continue
        shared.sort(key=lambda r: r[x].image)
        rows.append({"annotator_a": x, "annotator_b": y,
                     **pair_agreement([r[x] for r in shared], [r[y] for r in shared])})
    return rows


def image_agreement(readings: dict[str, Annotation]) -> list[dict]:
    """For one image: per pair of annotators, condition match, score gaps and mask IoU."""
    rows = []
    for x, y in combinations(sorted(readings), 2):
        a, b = readings[x], readings[y]
        sa, sb = _scores(a), _scores(b)
        row = {"annotator_a": x, "annotator_b": y,
               "same_condition": a.condition is b.condition,
               **{f"{k}_difference": sb[k] - sa[k] for k in SCORE_RANGES}}
        if a.shapes and b.shapes and a.image_size == b.image_size:
            ma, mb = cell_masks(a), cell_masks(b)
            row["cell_iou"] = mask_iou(ma.cell, mb.cell)
            row["nucleus_iou"] = mask_iou(ma.nucleus, mb.nucleus)
        else:
            row["cell_iou"] = row["nucleus_iou"] = float("nan")
        rows.append(row)
    return rows
