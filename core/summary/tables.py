"""The study's tables: per-image readings, score summary per class, pathologist vs model.

Score conventions (shared domain brief): cytoplasm S_g = +m transparent / -m granular,
chromatin S_c = +m heterogenic / -m homogenic, lobes S_l = 1 hypo/hyper, 0 normal, total
S_t = S_g + S_c + S_l. The study's *nucleus* score is chromatin + lobes (S_c + S_l); the
tables name it so. Every function returns a pandas DataFrame, sortable and exportable as is.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from core.summary.study import GROUP_ORDER, Study

#: Columns of :func:`per_image_table`.
PER_IMAGE_COLUMNS = ("name", "group", "study_group", "label", "score", "prediction", "cytoplasm_state",
                     "cytoplasm_score", "chromatin_state", "chromatin_score", "lobe_state", "lobe_score",
                     "nucleus_score", "total", "condition", "annotator", "regions")
#: Pathologist scores compared with the model score.
PATHOLOGIST_SCORES = ("total", "cytoplasm_score", "chromatin_score", "lobe_score", "nucleus_score")


def per_image_table(study: Study) -> pd.DataFrame:
    """One row per cell: the model's reading next to the pathologist's.

    Columns: name, group (class; cells the model gets wrong set apart), study_group
    (file prefix), label, score (P(normal)), prediction, cytoplasm/chromatin/lobe state and
    signed score, nucleus_score (= chromatin + lobes), total, condition (pathologist
    diagnosis), annotator, regions (where the outlines come from). Unannotated cells have
    empty pathologist columns.
    """
    rows = []
    predictions, groups = study.predictions, study.groups
    for i, cell in enumerate(study.cells):
        a = study.annotations[i] if study.annotations else None
        r = study.regions[i] if study.regions else None
        row = {"name": cell.name, "group": groups[i], "study_group": cell.study_group, "label": cell.label,
               "score": float(study.scores[i]), "prediction": predictions[i]}
        if a is None:
            row.update(cytoplasm_state=None, cytoplasm_score=None, chromatin_state=None, chromatin_score=None,
                       lobe_state=None, lobe_score=None, nucleus_score=None, total=None, condition=None,
                       annotator=None)
        else:
            s = a.scores
            row.update(cytoplasm_state=a.cytoplasm.state.value, cytoplasm_score=s.cytoplasm,
                       chromatin_state=a.chromatin.state.value, chromatin_score=s.chromatin,
                       lobe_state=a.lobes.value, lobe_score=s.lobes, nucleus_score=s.chromatin + s.lobes,
                       total=s.total, condition=a.condition.value, annotator=a.annotator)
        row["regions"] = None if r is None else r.source
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(PER_IMAGE_COLUMNS))
    for column in ("cytoplasm_score", "chromatin_score", "lobe_score", "nucleus_score", "total"):
        table[column] = table[column].astype("Int64")
    return table


def score_summary(table: pd.DataFrame, *, by: str = "label") -> pd.DataFrame:
    """Mean, min, max and SD of the total, cytoplasm and nucleus scores per class.

    Parameters
    ----------
    table : DataFrame
        From :func:`per_image_table`.
    by : {"label", "group", "condition", "prediction"}
        Column whose values form the classes (default: the dataset class).

    Returns
    -------
    DataFrame
        One row per class: the class (column ``by``), ``n`` (annotated cells), then
        ``<score>_<statistic>`` for scores ``total``, ``cytoplasm`` and ``nucleus``
        (= chromatin + lobes) and statistics ``mean``, ``min``, ``max``, ``sd`` (sample SD,
        ddof 1; NaN for one cell). Unannotated cells are left out.
    """
    data = table.dropna(subset=["total"]).copy()
    data = data[data[by].notna()]
    scores = {"total": "total", "cytoplasm": "cytoplasm_score", "nucleus": "nucleus_score"}
    order = [g for g in GROUP_ORDER if g in set(data[by])] + sorted(set(data[by]) - set(GROUP_ORDER))
    rows = []
    for cls in order:
        part = data[data[by] == cls]
        row = {by: cls, "n": len(part)}
        for name, column in scores.items():
            values = part[column].astype(float)
            row[f"{name}_mean"] = values.mean()
            row[f"{name}_min"] = values.min()
            row[f"{name}_max"] = values.max()
            row[f"{name}_sd"] = values.std(ddof=1) if len(values) > 1 else np.nan
        rows.append(row)
    columns = [by, "n"] + [f"{s}_{t}" for s in scores for t in ("mean", "min", "max", "sd")]
    return pd.DataFrame(rows, columns=columns)


def flat_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with MultiIndex columns joined as ``score_statistic`` (for CSV and HTML)."""
    out = frame.copy()
    if isinstance(out.columns, pd.MultiIndex):
        out.columns = ["_".join(str(p) for p in c) for c in out.columns]
    return out


def scatter_data(table: pd.DataFrame) -> pd.DataFrame:
    """Long table for the scatter plots: model score (x) vs each pathologist score (y).

    Columns: name, group, score, kind ("total", "cytoplasm", "nucleus"), value.
    """
    data = table.dropna(subset=["total"])
    parts = []
    for kind, column in (("total", "total"), ("cytoplasm", "cytoplasm_score"), ("nucleus", "nucleus_score")):
        part = data[["name", "group", "score"]].copy()
        part["kind"] = kind
        part["value"] = data[column].astype(float).to_numpy()
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=["name", "group", "score", "kind", "value"])
    return pd.concat(parts, ignore_index=True)


def score_correlations(table: pd.DataFrame) -> pd.DataFrame:
    """Spearman rank correlation of the model score with each pathologist score.

    Negative is the expected sign: higher pathologist scores mean more dysplastic, the model
    score is P(normal). Columns: score, n, spearman_rho, p_value (NaN when a score is
    constant or fewer than 3 cells are annotated).
    """
    from scipy.stats import spearmanr

    data = table.dropna(subset=["total"])
    rows = []
    for column in PATHOLOGIST_SCORES:
        x = data["score"].astype(float).to_numpy()
        y = data[column].astype(float).to_numpy()
        if len(x) >= 3 and np.ptp(y) > 0 and np.ptp(x) > 0:
            result = spearmanr(x, y)
            rho, p = float(result.statistic), float(result.pvalue)
        else:
            rho, p = np.nan, np.nan
        rows.append({"score": column, "n": len(x), "spearman_rho": rho, "p_value": p})
    return pd.DataFrame(rows)


def agreement_table(table: pd.DataFrame) -> pd.DataFrame:
    """Counts of (dataset label, model prediction, pathologist condition) combinations.

    Columns: label, prediction, condition, cells, agree (all three the same). Unannotated or
    unlabelled cells show as "unknown".
    """
    data = table[["label", "prediction", "condition"]].astype(object).where(
        table[["label", "prediction", "condition"]].notna(), "unknown")
    counts = data.value_counts().rename("cells").reset_index()
    counts["agree"] = (counts["label"] == counts["prediction"]) & (counts["prediction"] == counts["condition"])
    return counts.sort_values(["label", "prediction", "condition"]).reset_index(drop=True)


def confusion(table: pd.DataFrame, rows: str = "condition", columns: str = "prediction") -> pd.DataFrame:
    """Cross-tabulation of two of label / prediction / condition (cells counted)."""
    data = table[[rows, columns]].astype(object).where(table[[rows, columns]].notna(), "unknown")
    return pd.crosstab(data[rows], data[columns], dropna=False)


def disagreements(table: pd.DataFrame) -> pd.DataFrame:
    """Cells where the dataset label, the model and the pathologist do not all agree.

    Adds ``disagreement``: a short description, e.g. "model vs label; pathologist vs model".
    """
    rows = []
    for _, r in table.iterrows():
        found = []
        label, prediction, condition = r["label"], r["prediction"], r["condition"]
        if label is not None and label == label and prediction != label:
            found.append("model vs label")
        if condition is not None and condition == condition:
            if condition != prediction:
                found.append("pathologist vs model")
            if label is not None and label == label and condition != label:
                found.append("pathologist vs label")
            total = r["total"]
            if total is not pd.NA and total == total and (int(total) >= 1) != (condition == "dysplastic"):
                found.append("total score vs pathologist diagnosis")
        if found:
            rows.append({**{k: r[k] for k in ("name", "group", "label", "score", "prediction", "condition", "total")},
                         "disagreement": "; ".join(found)})
    return pd.DataFrame(rows, columns=["name", "group", "label", "score", "prediction", "condition", "total",
                                       "disagreement"])


def projection_points(study, table: pd.DataFrame | None = None, *, cache=None, progress=None) -> pd.DataFrame:
    """t-SNE of the last pooling output of every cell, with the pathologist total per point.

    Uses the engine's ``features`` method (through ``cache``). Columns: name, group, x, y,
    total (NaN when unannotated), method ("t-SNE", or "PCA" for fewer than 4 cells).
    """
    from core.explain import compute

    table = per_image_table(study) if table is None else table
    exp = compute("features", study.loaded, study.images, "normal", cache=cache, progress=progress)
    use_tsne = len(study) >= 4
    xy = np.asarray(exp.extras["tsne" if use_tsne else "pca"], np.float64)
    totals = table.set_index("name")["total"]
    return pd.DataFrame({"name": study.names, "group": study.groups, "x": xy[:, 0], "y": xy[:, 1],
                         "total": [float(totals[n]) if pd.notna(totals[n]) else np.nan for n in study.names],
                         "method": "t-SNE" if use_tsne else "PCA"})
