"""What a page needs about the current selection, loaded through the caches."""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from core.explain.base import resolve_target
from core.predict import label_of
from ui import resources, state
from ui.widgets import plain


@dataclass
class DatasetView:
    """The dataset with the model's scores and labels at the current threshold."""

    dataset: object
    loaded: object
    table: pd.DataFrame  # one row per cell: name, path, group, label, score, prediction, agrees


@dataclass
class ScoreView:
    """The dataset with whatever scores are stored so far, without loading the model.

    ``table.score`` is NaN (and ``prediction``/``agrees`` None) for cells not scored yet;
    ``job`` is the background scoring job filling them in (None when all are known).
    """

    dataset: object
    table: pd.DataFrame
    model_key: str
    job: object | None

    @property
    def missing(self) -> int:
        return int(self.table["score"].isna().sum())


def model():
    sel = state.selection()
    with state.user_errors():
        return resources.load_model(sel.model)


def dataset():
    sel = state.selection()
    with state.user_errors():
        return resources.dataset(sel.dataset, resources.dataset_stamp(sel.dataset))


_tables: OrderedDict = OrderedDict()    # (id(ds), scores digest, threshold) -> (ds, table)
_tables_lock = threading.Lock()


def _table(ds, scores, threshold: float) -> pd.DataFrame:
    """The score table, built once per (dataset, scores, threshold): a 20,000-row table cost
    ~40 ms on every rerun. Shared between sessions: each caller gets a shallow copy, and
    pandas' copy-on-write keeps its changes from reaching the shared frame."""
    import hashlib

    scores = np.asarray(scores, dtype=float)
    key = (id(ds), hashlib.sha1(scores.tobytes()).hexdigest(), float(threshold))
    with _tables_lock:
        hit = _tables.get(key)
        if hit is not None and hit[0] is ds:
            _tables.move_to_end(key)
            return hit[1].copy(deep=False)       # copy-on-write: a caller's change copies its column
    table = _build_table(ds, scores, threshold)
    with _tables_lock:
        _tables[key] = (ds, table)
        while len(_tables) > 16:
            _tables.popitem(last=False)
    return table.copy(deep=False)


def _build_table(ds, scores, threshold: float) -> pd.DataFrame:
    table = pd.DataFrame({
        "name": ds.names(),
        "path": [str(c.path) for c in ds.cells],
        "group": [c.group for c in ds.cells],
        "label": pd.Series([c.label for c in ds.cells], dtype=object),   # None stays None (pandas 3 would make NaN)
        "score": np.asarray(scores, dtype=float),
    })
    known = table["score"].notna()
    table["prediction"] = pd.Series([label_of(s, threshold) if k else None for s, k in zip(table["score"], known)],
                                    dtype=object)
    table["agrees"] = pd.Series([None if c.label is None or p is None else c.label == p
                                 for c, p in zip(ds.cells, table["prediction"])], dtype=object)
    return table


def _stored(sel, ds):
    from core.scores import preprocessing_key

    paths = [str(c.path) for c in ds.cells]
    with state.user_errors():
        key = resources.model_key(sel.model)
        hashes = resources.image_hashes(paths)
    scores = resources.score_store().get(key, hashes, preprocessing_key(sel.interpolation))
    return key, paths, hashes, scores


def score_view(*, background: bool = True) -> ScoreView:
    """Scores from the persistent store at once; missing ones are computed in the background
    (``background=False``: left missing, for a caller that scores them itself)."""
    sel = state.selection()
    ds = dataset()
    key, paths, hashes, scores = _stored(sel, ds)
    job = None
    if background and np.isnan(scores).any():
        job = resources.start_scoring(sel.model, key, paths, hashes, sel.interpolation)
    return ScoreView(ds, _table(ds, scores, sel.threshold), key, job)


def dataset_view() -> DatasetView:
    """Every cell scored (missing scores computed now, with a progress bar, and stored)."""
    from core.scores import score_missing

    sel = state.selection()
    ds, loaded = dataset(), model()
    key, paths, hashes, scores = _stored(sel, ds)
    if np.isnan(scores).any():
        bar = st.progress(0.0, text="Scoring cells…")
        with state.user_errors():
            score_missing(resources.score_store(), loaded, key, paths, hashes, sel.interpolation,
                          progress=lambda d, t: bar.progress(d / t, text=f"Scoring cells… {d}/{t}"))
        bar.empty()
        key, paths, hashes, scores = _stored(sel, ds)
    return DatasetView(ds, loaded, _table(ds, scores, sel.threshold))


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
        score = _score(cell)
    target = resolve_target(sel.target, score, sel.threshold)
    return CellContext(loaded, cell, rgb, image, score, label_of(score, sel.threshold), target, sel.threshold)


def _score(cell) -> float:
    """P(normal) of one cell under the current interpolation (from the score store)."""
    sel = state.selection()
    return resources.cell_score(sel.model, str(cell.path), sel.interpolation)


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
        score = _score(cell)
    except DisplasiaError as exc:
        return f"no model score ({exc})"
    return f"model score {score:.4f} → {label_of(score, sel.threshold)}"


def cell_header(ctx: CellContext) -> None:
    """One line with the cell, the model's verdict and the class being explained."""
    label = ctx.cell.label or "unlabelled"
    mark = "" if ctx.cell.label is None else (" ✓" if ctx.cell.label == ctx.prediction else " ✗")
    st.markdown(f"**{plain(ctx.cell.name)}** · score P(normal) **{ctx.score:.4f}** → **{ctx.prediction}** "
                f"(threshold {ctx.threshold:.3f}) · dataset label: {label}{mark} · explaining **{ctx.target}**")
