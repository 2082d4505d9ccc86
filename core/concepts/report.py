"""The concepts section of the HTML report: TCAV tables, figures and sentences, and sweeps.

``concepts_section_html`` returns a self-contained ``<section>`` fragment (figures inlined
as PNG data URLs) that any report page can append to its body.
"""
from __future__ import annotations

import base64
import html

import pandas as pd

from core.concepts.tcav import sentence


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}" style="max-width:100%">'


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.3g}", na_rep="", border=0, classes="concepts",
                         escape=True)


def tcav_summary(result, layer: str | None = None) -> pd.DataFrame:
    """The concept table of one layer (default: the last tested), both classes, ranked."""
    layer = layer or result.params.layers[-1]
    parts = []
    for target in ("dysplastic", "normal"):
        ranked = result.ranking(layer, target)
        control = result.table[(result.table["layer"] == layer) & (result.table["target"] == target)
                               & (result.table["family"] == "control")]
        parts.append(pd.concat([ranked, control], ignore_index=True))
    table = pd.concat(parts, ignore_index=True)
    return table[["target", "concept", "family", "status", "accuracy", "score", "score_low", "score_high",
                  "random_score", "p_corrected", "significant"]]


def concepts_section_html(result=None, sweeps=(), *, layer: str | None = None, figures: bool = True) -> str:
    """HTML fragment: TCAV per concept at ``layer`` with one sentence each, the TCAV figures of
    every layer, and each sweep's curve with its sentence.

    Parameters
    ----------
    result : core.concepts.tcav.TcavResult, optional
    sweeps : sequence of core.concepts.sweeps.SweepResult
    layer : str, optional
        Layer of the table and sentences (default: the last layer tested).
    figures : bool
        Inline the PNG figures (False keeps the fragment small, e.g. for tests).
    """
    from core.concepts import figures as figs
    from core.concepts.sweeps import describe_sweep

    out = ['<section class="concepts"><h2>Concepts: does the model use what pathologists use?</h2>']
    if result is None and not sweeps:
        out.append("<p>No concept analysis was run.</p></section>")
        return "".join(out)
    if result is not None:
        p = result.params
        layer = layer or p.layers[-1]
        out.append(
            f"<p>TCAV (Kim et al. 2018) on layers {html.escape(', '.join(p.layers))}: {p.runs} CAVs per concept "
            f"({p.classifier}), each against {p.runs} random-vs-random CAVs, two-sided Welch t-test, "
            f"{p.correction.title()} correction, significance at {p.alpha:g}. A score above 0.5 means moving "
            "towards the concept raises the class's logit for most of its cells; a concept whose held-out CAV "
            f"accuracy is below {p.min_accuracy:g} is not scored.</p>")
        out.append(f"<h3>Concepts at {html.escape(layer)}</h3>")
        out.append(_table(tcav_summary(result, layer)))
        rows = result.table[result.table["layer"] == layer]
        out.append("<ul>" + "".join(f"<li>{html.escape(sentence(r))}</li>" for _, r in rows.iterrows()) + "</ul>")
        if figures:
            for target in ("dysplastic", "normal"):
                out.append(_img(figs.tcav_png(result, target), f"TCAV scores, {target} cells"))
    for sweep in sweeps:
        out.append(f"<h3>Sweep of {html.escape(sweep.feature.replace('_', ' '))}</h3>")
        out.append(f"<p>{html.escape(describe_sweep(sweep))}</p>")
        if figures:
            out.append(_img(figs.sweep_png(sweep), f"sweep of {sweep.feature}"))
    out.append("</section>")
    return "".join(out)
