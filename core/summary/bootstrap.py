"""Bootstrap 95 % intervals over cells for the summary's evidence tables.

Percentile bootstrap (Efron & Tibshirani, 1993, "An Introduction to the Bootstrap"): the
cells of a group are resampled with replacement, the statistic (a mean) is recomputed on
each resample, and the 2.5 % and 97.5 % quantiles of those means bound the interval. It
says how much a mean over a few dozen cells could move with other cells of the same kind;
it does not cover the choice of cells, model or generator. Seeded, so a table is
reproducible.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

#: Resamples per interval; 2,000 keeps the quantiles' own noise below 0.01 of the SD.
RESAMPLES = 2000
LEVEL = 0.95


def mean_interval(values, *, resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0) -> tuple:
    """``(low, high)`` percentile-bootstrap interval of the mean of ``values`` (NaNs dropped).

    NaN bounds for fewer than 2 values.

    >>> low, high = mean_interval([1.0, 2.0, 3.0, 4.0])
    >>> 1.0 <= low < 2.5 < high <= 4.0
    True
    >>> mean_interval([5.0])
    (nan, nan)
    """
    x = np.asarray(values, np.float64)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(int(resamples), len(x)))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))


def add_intervals(summary: pd.DataFrame, data: pd.DataFrame, keys: list, columns, *, seed: int = 0) -> pd.DataFrame:
    """Add ``<column>_lo`` / ``<column>_hi`` after each column of ``summary``.

    ``summary`` has one row per combination of ``keys`` (e.g. method x class); ``data`` the
    per-cell values with the same key columns (a key value "all" pools every cell).
    """
    out = summary.copy()
    for column in columns:
        if column not in out.columns or column not in data.columns:
            continue
        lows, highs = [], []
        for _, row in out.iterrows():
            mask = np.ones(len(data), bool)
            for key in keys:
                if row[key] != "all":
                    mask &= (data[key] == row[key]).to_numpy()
            low, high = mean_interval(data.loc[mask, column], seed=seed)
            lows.append(low)
            highs.append(high)
        at = out.columns.get_loc(column) + 1
        out.insert(at, f"{column}_hi", highs)
        out.insert(at, f"{column}_lo", lows)
    return out
