"""The study's occlusion summary: score change per patch size and class.

For each cell and patch size the occlusion map is computed on the model score P(normal)
(target "normal", probability space: the score the study's Table 4 reports; on a
saturated cell every change is 0 here, the maps elsewhere use the log-odds), with the patch filled by its own
mean colour unless told otherwise. Per cell the largest drop and the largest rise of the
score over all patch positions are kept; the table gives, per patch size and class, their
mean over the cells and their extreme, in percentage points of the score. Reductions are
negative, as in the study.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

#: The study's patch sizes.
STUDY_PATCHES = (5, 10, 20, 40)


def summary_occlusion_params(patch: int, fill: str = "mean") -> dict:
    """The occlusion parameters of the summary's table (its cache key; the cluster path fills the same)."""
    return {"patch": int(patch), "fill": fill, "score": "probability"}


def occlusion_changes(study, *, patches=STUDY_PATCHES, fill: str = "mean", cache=None, progress=None) -> pd.DataFrame:
    """Per cell and patch size: baseline score and its largest reduction / increase.

    Parameters
    ----------
    study : Study
    patches : sequence of int
        Patch sides in pixels (5 px costs 3,600 windows per cell: pass fewer sizes for speed).
    fill : {"mean", "grey", "blur"}
    cache : ExplanationCache, optional
    progress : callable(done, total), optional
        Counts cells x patch sizes.

    Returns
    -------
    DataFrame
        name, group, label, patch, score (P(normal)), reduction_pct (<= 0), increase_pct (>= 0).
    """
    from core.explain import compute

    patches = [int(p) for p in patches]
    groups = study.groups
    rows = []
    total = len(patches) * len(study)
    done = 0
    for patch in patches:
        for i, cell in enumerate(study.cells):
            exp = compute("occlusion", study.loaded, study.images[i:i + 1], "normal",
                          params=summary_occlusion_params(patch, fill), cache=cache)
            change = np.asarray(exp.extras["window_scores"][0], np.float64) - float(exp.baseline[0])
            rows.append({"name": cell.name, "group": groups[i], "label": cell.label, "patch": patch,
                         "score": float(exp.baseline[0]),
                         "reduction_pct": 100.0 * min(float(change.min()), 0.0),
                         "increase_pct": 100.0 * max(float(change.max()), 0.0)})
            done += 1
            if progress is not None:
                progress(done, total)
    return pd.DataFrame(rows, columns=["name", "group", "label", "patch", "score", "reduction_pct", "increase_pct"])


def occlusion_summary(changes: pd.DataFrame, *, by: str = "label") -> pd.DataFrame:
    """The study's Table 4: per patch size x class, mean and extreme reduction / increase (%).

    Columns: patch, class (``by``), n, mean_reduction_pct, mean_increase_pct,
    max_reduction_pct (the most negative), max_increase_pct.
    """
    columns = ["patch", by, "n", "mean_reduction_pct", "mean_increase_pct", "max_reduction_pct", "max_increase_pct"]
    if changes.empty:
        return pd.DataFrame(columns=columns)
    data = changes.copy()
    data[by] = data[by].fillna("unlabelled")
    grouped = data.groupby(["patch", by], sort=True)
    out = pd.DataFrame({
        "n": grouped.size(),
        "mean_reduction_pct": grouped["reduction_pct"].mean(),
        "mean_increase_pct": grouped["increase_pct"].mean(),
        "max_reduction_pct": grouped["reduction_pct"].min(),
        "max_increase_pct": grouped["increase_pct"].max(),
    }).reset_index()
    return out[columns]
