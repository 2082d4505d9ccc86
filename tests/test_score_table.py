"""The gallery's score table is built once per (dataset, scores, threshold) and shared safely."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.datasets import Cell, Dataset
from ui.context import _table


def _dataset(n: int = 3) -> Dataset:
    cells = tuple(Cell(Path(f"/x/{i}.jpg"), f"{i}.jpg", "normal" if i % 2 else None, "csv", None) for i in range(n))
    return Dataset(Path("/x"), cells)


def test_the_table_is_reused_and_a_callers_change_stays_its_own(monkeypatch):
    from ui import context

    builds = []
    real = context._build_table
    monkeypatch.setattr(context, "_build_table", lambda *a: builds.append(a) or real(*a))
    ds = _dataset()
    scores = np.array([0.99, 0.5, np.nan])
    first = _table(ds, scores, 0.979)
    assert _table(ds, scores.copy(), 0.979).equals(first) and len(builds) == 1   # same content: no rebuild
    first.loc[0, "score"] = -1.0                                          # a caller writes into its frame
    again = _table(ds, scores, 0.979)
    assert again.loc[0, "score"] == 0.99                                  # the shared one is untouched
    assert list(_table(ds, scores, 0.4)["prediction"]) == ["normal", "normal", None]   # threshold is in the key
    assert list(_table(ds, np.array([0.1, 0.5, 0.7]), 0.979)["prediction"]) == ["dysplastic"] * 3
    other = _dataset()                                                    # another dataset object, same cells
    _table(other, scores, 0.979)
    assert len(builds) == 4
    assert ds.names() == ["0.jpg", "1.jpg", "2.jpg"] and ds.names() is not ds.names()
