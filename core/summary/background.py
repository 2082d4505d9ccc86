"""The study's background generalisation test for a dataset: per cell and per group.

Everything outside the cell outline is replaced by one uniform colour (the engine's
``background`` method); the table compares the model score P(normal) before and after.
Cells without an outline are left out.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def background_table(study, *, colour: str = "median", cache=None, progress=None) -> pd.DataFrame:
    """Per cell: original score, score with a uniform background and their difference.

    Returns
    -------
    DataFrame
        name, group, label, outline (masks' source), original, masked, difference
        (masked - original), prediction_original, prediction_masked, flipped.
    """
    from core.explain import compute
    from core.predict import label_of

    groups = study.groups
    rows = []
    n = len(study)
    for i, cell in enumerate(study.cells):
        regions = study.regions[i] if study.regions else None
        if regions is not None and regions.cell.any() and not regions.cell.all():
            exp = compute("background", study.loaded, study.images[i:i + 1], "normal", params={"colour": colour},
                          cache=cache, cell_mask=regions.cell[None])
            before = float(exp.extras["original_score"][0])
            after = float(exp.extras["masked_score"][0])
            p0, p1 = label_of(before, study.threshold), label_of(after, study.threshold)
            rows.append({"name": cell.name, "group": groups[i], "label": cell.label, "outline": regions.source,
                         "original": before, "masked": after, "difference": after - before,
                         "prediction_original": p0, "prediction_masked": p1, "flipped": p0 != p1})
        if progress is not None:
            progress(i + 1, n)
    return pd.DataFrame(rows, columns=["name", "group", "label", "outline", "original", "masked", "difference",
                                       "prediction_original", "prediction_masked", "flipped"])


def background_summary(table: pd.DataFrame, *, by: str = "group") -> pd.DataFrame:
    """Per group: n, mean and SD of the original score, the masked score and the difference,
    and how many predictions flip."""
    from core.summary.study import GROUP_ORDER

    columns = [by, "n", "original_mean", "original_sd", "masked_mean", "masked_sd", "difference_mean",
               "difference_sd", "flipped"]
    if table.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    present = list(dict.fromkeys(table[by].fillna("unlabelled")))
    order = [g for g in GROUP_ORDER if g in present] + [g for g in present if g not in GROUP_ORDER] + ["all"]
    for group in order:
        part = table if group == "all" else table[table[by].fillna("unlabelled") == group]
        row = {by: group, "n": len(part), "flipped": int(part["flipped"].sum())}
        for column in ("original", "masked", "difference"):
            values = part[column].astype(float)
            row[f"{column}_mean"] = values.mean()
            row[f"{column}_sd"] = values.std(ddof=1) if len(values) > 1 else np.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)
