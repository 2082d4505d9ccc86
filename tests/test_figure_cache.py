"""The figure cache of the pages: one figure per content, never a stale one for new data."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ui.display import cached_figure, content_key

calls = []


def make(frame, scale=1.0):
    calls.append(1)
    return {"points": frame["x"].to_numpy() * scale}


def test_content_key_sees_every_element_of_long_arrays_and_column_names():
    a = np.zeros(5000)
    b = a.copy()
    b[2500] = 1.0                      # numpy's repr would elide this element
    assert content_key({"curve": a}) != content_key({"curve": b})
    assert content_key(pd.DataFrame({"x": [1, 2]})) != content_key(pd.DataFrame({"y": [1, 2]}))
    assert content_key(pd.DataFrame({"x": [1, 2]})) == content_key(pd.DataFrame({"x": [1, 2]}))


def test_cached_figure_builds_once_per_content_and_again_for_new_content():
    calls.clear()
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    first = cached_figure(make, frame, scale=2.0)
    again = cached_figure(make, frame.copy(), scale=2.0)
    assert again is first and len(calls) == 1
    changed = cached_figure(make, pd.DataFrame({"x": [1.0, 2.0, 4.0]}), scale=2.0)
    rescaled = cached_figure(make, frame, scale=3.0)
    assert len(calls) == 3
    assert changed["points"][-1] == 8.0 and rescaled["points"][0] == 3.0
    assert cached_figure(make, None) is None
