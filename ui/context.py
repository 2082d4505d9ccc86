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


@dataclass
class CellContext:
    """The current cell as every analysis page needs it."""

    loaded: object
    cell: object  # core.datasets.Cell
    rgb: np.ndarray  # original image, uint8 (H, W, 3)
    image: np.ndarray  # model input, float32 (h, w, 3) in [0, 1]
    score: float  # P(normal)
    prediction: str
    target: str
    threshold: float


def current_cell() -> CellContext:
    from core.preprocess import to_model_input

    sel = state.selection()
    cell, rgb = current_record()
    loaded = model()
    with state.user_errors():
        image = to_model_input(rgb, loaded.description.image_size, sel.interpolation)
        score = _score(loaded, cell)
    return CellContext(loaded, cell, rgb, image, score, label_of(score, sel.threshold), sel.target, sel.threshold)


def _score(loaded, cell) -> float:
    """P(normal) of one cell under the current interpolation (cached per model and file)."""
    interpolation = state.selection().interpolation
    return float(resources.cell_score(loaded.description.content_hash, str(cell.path), interpolation, loaded))


def current_record():
    """The current cell and its original image, without touching the model."""
    sel = state.selection()
    ds = dataset()
    with state.user_errors():
        cell = ds.cell(sel.cell) if sel.cell in ds.names() else ds.cells[0]
        return cell, resources.original(str(cell.path))


def score_line(cell) -> str:
    """'model score … → label' for the current model, or why there is none."""
    from core.errors import DisplasiaError

    sel = state.selection()
    try:
        score = _score(resources.load_model(sel.model, sel.model.stamp()), cell)
    except DisplasiaError as exc:
        return f"no model score ({exc})"
    return f"model score {score:.4f} → {label_of(score, sel.threshold)}"


def cell_header(ctx: CellContext) -> None:
    """One line with the cell, the model's verdict and the class being explained."""
    label = ctx.cell.label or "unlabelled"
    mark = "" if ctx.cell.label is None else (" ✓" if ctx.cell.label == ctx.prediction else " ✗")
    st.markdown(f"**{ctx.cell.name}** · score P(normal) **{ctx.score:.4f}** → **{ctx.prediction}** "
                f"(threshold {ctx.threshold:.3f}) · dataset label: {label}{mark} · explaining **{ctx.target}**")
