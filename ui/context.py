"""What a page needs about the current selection, loaded through the caches."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from core.predict import label_of
from ui import resources, state


@dataclass
class DatasetView:
    """The dataset with the model's scores and labels at the current threshold."""

    dataset: object
    loaded: object
    table: pd.DataFrame  # one row per cell: name, path, group, label, score, prediction, agrees


def model():
    sel = state.selection()
    with state.user_errors():
        return resources.load_model(sel.model, sel.model.stamp())


def dataset():
    sel = state.selection()
    with state.user_errors():
        return resources.dataset(sel.dataset, resources.dataset_stamp(sel.dataset))


def dataset_view() -> DatasetView:
    sel = state.selection()
    ds, loaded = dataset(), model()
    with state.user_errors():
        scores = resources.scores(loaded.description.content_hash, str(ds.root), tuple(ds.names()),
                                  sel.interpolation, loaded, tuple(str(c.path) for c in ds.cells))
    table = pd.DataFrame({
        "name": ds.names(),
        "path": [str(c.path) for c in ds.cells],
        "group": [c.group for c in ds.cells],
        "label": [c.label for c in ds.cells],
        "score": np.asarray(scores, dtype=float),
    })
    table["prediction"] = [label_of(s, sel.threshold) for s in table["score"]]
    table["agrees"] = [None if l is None else l == p for l, p in zip(table["label"], table["prediction"])]
    return DatasetView(ds, loaded, table)


def current_row(view: DatasetView) -> pd.Series:
    name = state.selection().cell
    rows = view.table[view.table["name"] == name]
    return rows.iloc[0] if len(rows) else view.table.iloc[0]
