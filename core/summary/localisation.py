"""Where does each method look? Relevance mass per cell region and the pointing game.

Relevance mass (Arras et al., 2022, "CLEVR-XAI: A benchmark dataset for the ground truth
evaluation of neural network explanations", Information Fusion): the share of the
positive attribution that falls inside a region. A map spread evenly over the image gives
each region its share of the area, so every share is reported next to the region's area
fraction; ``share / area`` above 1 means the method concentrates there.

Pointing game (Zhang et al., 2018, "Top-down Neural Attention by Excitation Backprop",
IJCV): is the map's peak inside the cell? Here without tolerance margin; when the peak is
a plateau (occlusion patches, LIME superpixels) the point counts as a hit when most of the
peak's pixels lie inside the cell.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from core.summary.maps import evidence

#: Regions reported; granules and evidence exist for synthetic ground truth only ("evidence":
#: where the generator put the features of the cell's class, see ``ModelRegions.evidence``).
REGIONS = ("nucleus", "cytoplasm", "background", "granules", "evidence")


def relevance_mass(values: np.ndarray, regions: dict) -> dict:
    """Share of the positive part of ``values`` inside each region.

    Parameters
    ----------
    values : (H, W) ndarray
        Attribution (negative values are ignored).
    regions : mapping of name -> (H, W) bool ndarray

    Returns
    -------
    dict
        ``{name: share}``, NaN for every region when the map has no positive value.

    Examples
    --------
    >>> m = np.zeros((4, 4)); m[0, 0] = 2.0; m[3, 3] = 2.0
    >>> inside = np.zeros((4, 4), bool); inside[0, 0] = True
    >>> relevance_mass(m, {"nucleus": inside, "background": ~inside})
    {'nucleus': 0.5, 'background': 0.5}
    """
    positive = evidence(values).astype(np.float64)
    total = positive.sum()
    if not total > 0:
        return {name: float("nan") for name in regions}
    return {name: float(positive[np.asarray(mask, bool)].sum() / total) for name, mask in regions.items()}


def pointing_hit(values: np.ndarray, cell: np.ndarray, *, rtol: float = 1e-6) -> float:
    """1.0 when the map's peak lies in ``cell``, 0.0 when not, NaN for a map without peak.

    >>> m = np.zeros((3, 3)); m[1, 1] = 1.0
    >>> cell = np.zeros((3, 3), bool); cell[1, 1] = True
    >>> pointing_hit(m, cell), pointing_hit(m, ~cell)
    (1.0, 0.0)
    """
    values = np.asarray(values, np.float64)
    top = values.max()
    if not np.isfinite(top) or top <= 0 or np.ptp(values) == 0:
        return float("nan")
    peak = values >= top - rtol * abs(top)
    return float(np.asarray(cell, bool)[peak].mean() > 0.5)


def localisation_table(study, maps: dict, *, source: str = "regions") -> pd.DataFrame:
    """Relevance mass and pointing game for every (cell, method) with masks.

    Parameters
    ----------
    study : Study
    maps : dict of method -> MethodMaps
        From :func:`core.summary.maps.dataset_maps`.
    source : {"regions", "truth"}
        The best available outlines (annotation, else ground truth, else automatic) or the
        generator's ground truth (synthetic cells only; adds the granule mask).

    Returns
    -------
    DataFrame
        One row per cell and method: name, group, label, target, method, outline (the
        masks' source), share_<region> and area_<region> for nucleus, cytoplasm,
        background, granules, evidence (NaN when unknown), pointing (1 hit, 0 miss).
    """
    masks = study.regions if source == "regions" else study.truth
    groups = study.groups
    rows = []
    for method, mm in maps.items():
        for i, cell in enumerate(study.cells):
            regions = masks[i] if masks else None
            if regions is None:
                continue
            parts = regions.parts()
            shares = relevance_mass(mm.attribution[i], parts)
            row = {"name": cell.name, "group": groups[i], "label": cell.label, "target": mm.targets[i],
                   "method": method, "outline": regions.source}
            for region in REGIONS:
                row[f"share_{region}"] = shares.get(region, np.nan)
                row[f"area_{region}"] = float(parts[region].mean()) if region in parts else np.nan
            row["pointing"] = pointing_hit(mm.attribution[i], regions.cell)
            rows.append(row)
    columns = (["name", "group", "label", "target", "method", "outline"]
               + [f"share_{r}" for r in REGIONS] + [f"area_{r}" for r in REGIONS] + ["pointing"])
    return pd.DataFrame(rows, columns=columns)


def localisation_summary(table: pd.DataFrame, *, by: str = "label") -> pd.DataFrame:
    """Means per method x class of the shares, the areas and the pointing game.

    Adds ``enrichment_<region>`` = mean share / mean area (1 = no better than a map spread
    evenly over the image), ``n`` (cells) and the bootstrap 95 % interval over cells of each
    share and of the pointing game (``<column>_lo``, ``<column>_hi``). Rows ``class ==
    "all"`` pool the classes.
    """
    from core.summary.bootstrap import add_intervals

    if table.empty:
        return pd.DataFrame()
    value_columns = [c for c in table.columns if c.startswith(("share_", "area_"))] + ["pointing"]
    data = table.copy()
    data[by] = data[by].fillna("unlabelled")
    pooled = data.assign(**{by: "all"})
    both = pd.concat([data, pooled], ignore_index=True)
    grouped = both.groupby(["method", by], sort=False)
    out = grouped[value_columns].mean()
    out.insert(0, "n", grouped.size())
    for region in REGIONS:
        if f"share_{region}" in out:
            out[f"enrichment_{region}"] = out[f"share_{region}"] / out[f"area_{region}"].replace(0, np.nan)
    methods = list(dict.fromkeys(table["method"]))
    classes = list(dict.fromkeys(list(data[by]) + ["all"]))
    out = out.reindex(pd.MultiIndex.from_product([methods, classes], names=["method", by]))
    out = out.dropna(how="all", subset=["n"]).reset_index()
    shares = [c for c in value_columns if c.startswith("share_")] + ["pointing"]
    return add_intervals(out, data, ["method", by], shares)
