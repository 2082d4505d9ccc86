"""Static figures of concept results (PNG bytes, matplotlib's Agg backend: works offline).

Used by the CLI and the HTML report; the dashboard draws the same data with plotly.
"""
from __future__ import annotations

import io

import numpy as np
import pandas as pd

_COLOURS = {"granularity": "#8e44ad", "chromatin": "#2e86c1", "lobes": "#16a085", "confounder": "#e67e22",
            "control": "#7f8c8d"}


def family_colour(family: str) -> str:
    return _COLOURS.get(family, "#34495e")


def _figure(width, height):
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def tcav_png(result, target: str) -> bytes:
    """One panel per layer: TCAV score per concept with its 95 % interval, the random band,
    a star for significance after correction, and the reason when a concept is not scored."""
    layers = result.params.layers
    fig = _figure(3.2 * len(layers) + 1.5, 4.2)
    axes = fig.subplots(1, len(layers), sharey=True, squeeze=False)[0]
    for ax, layer in zip(axes, layers):
        rows = result.table[(result.table["layer"] == layer) & (result.table["target"] == target)]
        x = np.arange(len(rows))
        nulls = result.null_scores.get((layer, target))
        if nulls is not None and len(nulls):
            m, s = float(np.mean(nulls)), float(np.std(nulls, ddof=1))
            ax.axhspan(max(0, m - 2 * s), min(1, m + 2 * s), color="#bdc3c7", alpha=0.35, lw=0)
            ax.axhline(m, color="#7f8c8d", lw=1, ls="--")
        for xi, row in zip(x, rows.itertuples()):
            if row.status in ("too small", "not separable"):
                ax.text(xi, 0.5, row.status, rotation=90, ha="center", va="center", fontsize=7, color="#7f8c8d")
                continue
            ax.bar(xi, row.score, color=family_colour(row.family), alpha=0.9 if row.significant else 0.4)
            ax.errorbar(xi, row.score, yerr=[[row.score - row.score_low], [row.score_high - row.score]],
                        color="black", capsize=2, lw=0.8)
            if row.significant:
                ax.text(xi, min(1.02, row.score_high + 0.02), "*", ha="center", fontsize=12)
        ax.set_xticks(x, list(rows["concept"]), rotation=60, ha="right", fontsize=8)
        ax.set_ylim(0, 1.08)
        ax.set_title(layer, fontsize=9)
    axes[0].set_ylabel(f"TCAV score ({target} cells)")
    fig.suptitle(f"TCAV, target {target}: bars = mean over runs with 95 % interval, grey = random CAVs "
                 "(mean, +/- 2 SD), * = significant after correction", fontsize=8)
    return _png(fig)


def sweep_frame(result) -> pd.DataFrame:
    """Long table: one row per (cell, value) with probability and logit."""
    names = list(result.names) or [f"cell {i}" for i in range(len(result.logit))]
    rows = []
    for i, name in enumerate(names):
        for j, value in enumerate(result.values):
            rows.append({"cell": name, "feature": result.feature, "value": float(value),
                         "p_normal": float(result.probability[i, j]), "logit_normal": float(result.logit[i, j])})
    return pd.DataFrame(rows)


def sweep_csv(result) -> str:
    from core.io_utils import safe_frame

    return safe_frame(sweep_frame(result)).to_csv(index=False)


def sweep_png(result) -> bytes:
    """Thumbnails of the first cell along the sweep above P(normal) and logit curves
    (every cell thin, the mean thick, the 10-90 % band shaded)."""
    from core.concepts.sweeps import SWEEPS

    k = len(result.values)
    fig = _figure(max(7.0, 0.9 * k), 6.2)
    grid = fig.add_gridspec(3, k, height_ratios=[1.0, 2.2, 2.2])
    for j in range(min(k, len(result.thumbnails))):
        ax = fig.add_subplot(grid[0, j])
        ax.imshow(result.thumbnails[j])
        ax.set_axis_off()
        ax.set_title(f"{result.values[j]:g}", fontsize=7)
    for r, (space, label) in enumerate((("probability", "P(normal)"), ("logit", "logit of normal"))):
        ax = fig.add_subplot(grid[r + 1, :])
        values = result.probability if space == "probability" else result.logit
        for curve in values:
            ax.plot(result.values, curve, color="#95a5a6", lw=0.6, alpha=0.6)
        mean, low, high = result.band(space)
        if len(values) > 1:
            ax.fill_between(result.values, low, high, color="#8e44ad", alpha=0.2, lw=0)
        ax.plot(result.values, mean, color="#8e44ad", lw=2)
        ax.set_ylabel(label)
        if space == "probability":
            ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(SWEEPS[result.feature].label)
    return _png(fig)
