"""Concepts page glue: cached TCAV and sweep runs with progress, and their plotly figures."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from core.concepts.figures import family_colour
from ui import resources, state

TCAV_RESULT = "concepts_tcav_result"
SOURCES = {"generator": "Generator features", "annotations": "Pathologists' readings of this dataset"}
INPUTS = {"generated": "Generated cells", "dataset": "This dataset's labelled cells"}


def tcav_form(loaded) -> dict | None:
    """The TCAV settings form; returns the settings when submitted."""
    from core.concepts.tcav import default_layers

    with st.form("tcav_form"):
        cols = st.columns(2)
        source = cols[0].radio("Concept sets", list(SOURCES), format_func=SOURCES.get, horizontal=True)
        inputs = cols[1].radio("Cells the scores are measured on", list(INPUTS), format_func=INPUTS.get,
                               horizontal=True, help="With pathologists' readings the dataset's cells are used.")
        layers = st.multiselect("Layers", list(loaded.description.feature_map_layers),
                                default=list(default_layers(loaded.description)))
        cols = st.columns(4)
        n = cols[0].number_input("Cells per concept side", 10, 200, 40, help="30-50 keeps a run near a minute.")
        runs = cols[1].number_input("Runs (CAVs and random CAVs)", 2, 100, 20, help="The paper uses at least 20.")
        pool = cols[2].number_input("Random cells", 20, 400, 80)
        seed = cols[3].number_input("Seed", 0, 2**31 - 1, 0)
        go_ = st.form_submit_button("Run TCAV (cached)")
    if not go_:
        return None
    return {"source": source, "dataset_inputs": inputs == "dataset" or source == "annotations",
            "layers": tuple(layers), "n": int(n), "runs": int(runs), "random": int(pool), "seed": int(seed)}


def run_tcav(loaded, dataset_root: str, settings: dict):
    """Run (or read from the disk cache) a TCAV test with a progress bar; None on a user error."""
    from core.concepts.cli import concept_inputs
    from core.concepts.tcav import TcavParams
    from core.concepts.tcav import run_tcav as core_run

    sel = state.selection()
    start = time.perf_counter()
    with state.user_errors():
        concept_sets, pool, inputs = concept_inputs(
            loaded, source=settings["source"], dataset=dataset_root if settings["dataset_inputs"] else None,
            db=_database_url() if settings["source"] == "annotations" else None, n=settings["n"],
            class_cells=settings["n"], random=settings["random"], seed=settings["seed"],
            interpolation=sel.interpolation)
        params = TcavParams(layers=settings["layers"], runs=settings["runs"], seed=settings["seed"])
        with st.status("TCAV: activations, CAVs and random runs…", expanded=True) as status:
            bar = st.progress(0.0)
            result = core_run(loaded, concept_sets, pool, inputs, params, cache=resources.explanation_cache(),
                              progress=lambda done, total: bar.progress(min(done / total, 1.0), f"{done}/{total}"))
            status.update(label=f"TCAV {'from cache' if result.from_cache else 'computed'} in "
                                f"{time.perf_counter() - start:.1f} s", state="complete", expanded=False)
        st.session_state[TCAV_RESULT] = (_owner(loaded, dataset_root), result)
        return result
    return None


def _owner(loaded, dataset_root: str) -> tuple:
    return loaded.description.content_hash, dataset_root


def last_result(loaded, dataset_root: str):
    """The last TCAV result of this session, if it was computed for this model and dataset."""
    stored = st.session_state.get(TCAV_RESULT)
    if stored is None or stored[0] != _owner(loaded, dataset_root):
        return None
    return stored[1]


def _database_url():
    from core.config import database_url

    resources.annotation_store()  # seeds the demo readings once
    return database_url()


def tcav_figure(result, target: str) -> go.Figure:
    """TCAV score per concept and layer with its 95 % interval; grey = random CAVs; * significant."""
    layers = list(result.params.layers)
    fig = make_subplots(rows=1, cols=len(layers), shared_yaxes=True, subplot_titles=layers)
    for col, layer in enumerate(layers, start=1):
        rows = result.table[(result.table["layer"] == layer) & (result.table["target"] == target)]
        nulls = result.null_scores.get((layer, target))
        if nulls is not None and len(nulls):
            m, s = float(np.mean(nulls)), float(np.std(nulls, ddof=1))
            fig.add_hrect(y0=max(0.0, m - 2 * s), y1=min(1.0, m + 2 * s), fillcolor="lightgrey", opacity=0.4,
                          line_width=0, row=1, col=col)
        scored = rows[rows["status"].isin(["scored", "control"])]
        fig.add_bar(x=scored["concept"], y=scored["score"], row=1, col=col, showlegend=False,
                    marker_color=[family_colour(f) for f in scored["family"]],
                    marker_opacity=[1.0 if s else 0.45 for s in scored["significant"]],
                    error_y=dict(type="data", symmetric=False, array=scored["score_high"] - scored["score"],
                                 arrayminus=scored["score"] - scored["score_low"]),
                    text=["*" if s else "" for s in scored["significant"]], textposition="outside",
                    customdata=np.stack([scored["p_corrected"], scored["accuracy"]], axis=1),
                    hovertemplate="%{x}: TCAV %{y:.2f}<br>corrected p %{customdata[0]:.2g}<br>"
                                  "CAV accuracy %{customdata[1]:.2f}<extra></extra>")
        skipped = rows[~rows["status"].isin(["scored", "control"])]
        if len(skipped):
            fig.add_scatter(x=skipped["concept"], y=[0.5] * len(skipped), mode="text", text=skipped["status"],
                            row=1, col=col, showlegend=False, hoverinfo="skip")
    fig.update_yaxes(range=[0, 1.1], title_text=f"TCAV score ({target} cells)", row=1, col=1)
    fig.update_layout(height=420, margin=dict(t=40, b=10), bargap=0.25)
    return fig


def concept_table(result, layer: str, target: str) -> pd.DataFrame:
    from core.concepts.tcav import sentence

    ranked = result.ranking(layer, target)
    control = result.table[(result.table["layer"] == layer) & (result.table["target"] == target)
                           & (result.table["family"] == "control")]
    rows = pd.concat([ranked, control], ignore_index=True)
    rows["what it says"] = [sentence(r) for _, r in rows.iterrows()]
    return rows[["concept", "status", "accuracy", "score", "score_low", "score_high", "random_score",
                 "p_corrected", "significant", "what it says"]]


def sweep_cells(view, cell_name: str, batch: int, seed: int):
    """The current cell's twin (or a stand-in) and a batch of generated cells."""
    from core.concepts.sweeps import generated_cells, twin_features

    row = view.table[view.table["name"] == cell_name]
    row = row.iloc[0] if len(row) else view.table.iloc[0]
    twin = twin_features(row["path"])
    note = f"the generator twin of {row['name']}"
    if twin is None:
        kind = row["label"] if row["label"] in ("normal", "dysplastic") else "mixed"
        twin = generated_cells(1, seed=seed, kind=kind)[0]
        note = (f"a generated {kind if kind != 'mixed' else ''} cell standing in for {row['name']} (a real cell has "
                "no generator twin)").replace("  ", " ")
    return twin, note, generated_cells(batch, seed=seed + 1) if batch else []


def sweep(loaded, cells, feature: str, names=()):
    from core.concepts.sweeps import sweep as core_sweep

    sel = state.selection()
    with state.user_errors():
        return core_sweep(loaded, cells, feature, interpolation=sel.interpolation, names=names,
                          cache=resources.explanation_cache())
    return None


def sweep_figure(result, title: str = "") -> go.Figure:
    """P(normal) and logit along the sweep: thin lines per cell, mean and 10-90 % band."""
    from core.concepts.sweeps import SWEEPS

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06)
    x = result.values
    for r, (space, label) in enumerate((("probability", "P(normal)"), ("logit", "logit of normal")), start=1):
        values = result.probability if space == "probability" else result.logit
        mean, low, high = result.band(space)
        if len(values) > 1:
            fig.add_scatter(x=np.concatenate([x, x[::-1]]), y=np.concatenate([high, low[::-1]]), fill="toself",
                            fillcolor="rgba(142,68,173,0.18)", line_width=0, hoverinfo="skip", showlegend=False,
                            row=r, col=1)
            for curve in values:
                fig.add_scatter(x=x, y=curve, mode="lines", line=dict(color="rgba(127,140,141,0.35)", width=1),
                                hoverinfo="skip", showlegend=False, row=r, col=1)
        fig.add_scatter(x=x, y=mean, mode="lines+markers", line=dict(color="#8e44ad", width=3), showlegend=False,
                        hovertemplate=f"{result.feature} %{{x:g}}: {label} %{{y:.3f}}<extra></extra>", row=r, col=1)
        fig.update_yaxes(title_text=label, row=r, col=1)
    fig.update_yaxes(range=[-0.02, 1.02], row=1, col=1)
    fig.update_xaxes(title_text=SWEEPS[result.feature].label, row=2, col=1)
    fig.update_layout(height=460, margin=dict(t=30 if title else 10, b=10), title=title or None)
    return fig


def thumbnails(result) -> None:
    if not len(result.thumbnails):
        return
    cols = st.columns(len(result.thumbnails))
    for col, image, value in zip(cols, result.thumbnails, result.values):
        col.image(image, caption=f"{value:g}", use_container_width=True)
