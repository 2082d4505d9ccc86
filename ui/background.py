"""Background test over a whole dataset: every cell's mask, one batched call, a table."""
from __future__ import annotations

import numpy as np
import pandas as pd

from core.preprocess import resize_mask
from ui import explain_view as ev
from ui import resources


def dataset_table(view, target: str, interpolation: str) -> pd.DataFrame:
    loaded = view.loaded
    size = loaded.description.image_size
    paths = tuple(view.table["path"])
    images = resources.dataset_images(paths, size, interpolation)
    masks, sources = [], []
    for path in paths:
        regions = resources.regions(path, resources.original(path))
        masks.append(resize_mask(regions.cell, size))
        sources.append(regions.source)
    exp = ev.explanation("background", loaded, images, target, {}, cell_mask=np.stack(masks), label="Background test, all cells")
    if exp is None:
        return pd.DataFrame()
    return pd.DataFrame({
        "name": view.table["name"], "group": view.table["group"],
        "original": exp.extras["original_score"], "masked": exp.extras["masked_score"],
        "difference": exp.extras["difference"], "mask": sources,
    })


def group_summary(table: pd.DataFrame) -> pd.DataFrame:
    stats = table.groupby("group")[["original", "masked", "difference"]].agg(["mean", "std"])
    stats.columns = [f"{a} {b}" for a, b in stats.columns]
    return stats.reset_index()
