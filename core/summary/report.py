"""Self-contained HTML reports: one cell (prediction, annotation, every map, its numbers) or a
whole dataset (every table and figure of the Summary page).

Self-contained: images are embedded as base64 PNG, plotly.js is inlined once, nothing is
fetched from the network, so the file can be mailed or archived. Every string that comes
from a file or an annotation (names, annotators, notes, outline sources) is HTML-escaped;
pandas escapes table cells and plotly escapes its JSON.
"""
from __future__ import annotations

import base64
import html

import numpy as np
import pandas as pd

from core.summary.engine import DatasetSummary, randomisation_sample
from core.summary.maps import IMAGE_METHODS

#: Section ids of the dataset report, in order, with their titles.
DATASET_SECTIONS = (
    ("settings", "Settings"),
    ("per-image", "Per-image readings"),
    ("score-summary", "Pathologist scores per class"),
    ("scatter", "Model score vs pathologist scores"),
    ("projection", "Deep-feature projection (t-SNE)"),
    ("pathologist-vs-model", "Pathologist vs model"),
    ("disagreements", "Cells where readings disagree"),
    ("occlusion", "Occlusion summary"),
    ("background", "Background test"),
    ("localisation", "Where does each method look? (outlines)"),
    ("localisation-truth", "Where does each method look? (ground truth)"),
    ("faithfulness", "Deletion and insertion"),
    ("randomisation", "Model-randomisation check"),
    ("gallery", "Example maps"),
)
#: Section ids of the single-cell report.
CELL_SECTIONS = (
    ("cell-prediction", "Prediction"),
    ("cell-annotation", "Pathologist annotation"),
    ("cell-maps", "Explanation maps"),
    ("cell-numbers", "Numbers per method"),
)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1180px;padding:0 18px 60px;color:#1c2833}
h1{margin-top:24px}h2{border-bottom:2px solid #d5d8dc;padding-bottom:4px;margin-top:36px}
nav{background:#f4f6f7;padding:8px 12px;border-radius:6px;font-size:0.9em}nav a{margin-right:12px}
table.data{border-collapse:collapse;font-size:0.82em;margin:8px 0}table.data td,table.data th{border:1px solid #d5d8dc;padding:3px 6px;text-align:right}
table.data th{background:#eaf2f8}table.data td:first-child{text-align:left}
.note{color:#566573;font-size:0.9em;max-width:900px}.maps{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;text-align:center;font-size:0.8em}figure img{display:block;border:1px solid #ccc;max-width:100%}
.maps.small{gap:6px;margin-bottom:8px}.maps.small figure{max-width:128px;overflow-wrap:anywhere}
.scroll{max-height:520px;overflow:auto}.kv td{padding:2px 10px;text-align:left}
"""


# --------------------------------------------------------------------------------------- HTML

def _e(value) -> str:
    return html.escape(str(value), quote=True)


def png_data_uri(rgb: np.ndarray, *, max_side: int | None = None) -> str:
    """``data:image/png;base64,...`` of an RGB uint8 image (optionally shrunk)."""
    from PIL import Image

    from core.display import png_bytes

    rgb = np.asarray(rgb, np.uint8)
    if max_side and max(rgb.shape[:2]) > max_side:
        image = Image.fromarray(rgb)
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        rgb = np.asarray(image)
    return "data:image/png;base64," + base64.b64encode(png_bytes(rgb)).decode("ascii")


def _table(frame: pd.DataFrame | None, *, digits: int = 3, index: bool = False, scroll: bool = False) -> str:
    if frame is None or frame.empty:
        return '<p class="note">Nothing to show (no cells with the data this table needs).</p>'
    frame = frame.copy()
    for column in frame.columns:
        if not pd.api.types.is_float_dtype(frame[column]):
            frame[column] = [("" if _missing(v) else v) for v in frame[column]]
    text = frame.to_html(index=index, escape=True, na_rep="", border=0, classes="data",
                         float_format=lambda v: f"{v:.{digits}f}")
    return f'<div class="scroll">{text}</div>' if scroll else text


def _missing(value) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


class _Figures:
    """Plotly figures as HTML; plotly.js is inlined with the first one only."""

    def __init__(self):
        self.first = True

    def __call__(self, fig) -> str:
        include = "inline" if self.first else False
        self.first = False
        return fig.to_html(full_html=False, include_plotlyjs=include, config={"displaylogo": False})


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{_e(sid)}"><h2>{_e(title)}</h2>\n{body}\n</section>\n'


def _page(title: str, sections: list, nav: list) -> str:
    links = "".join(f'<a href="#{_e(sid)}">{_e(t)}</a>' for sid, t in nav)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n<h1>{_e(title)}</h1>\n"
            f"<nav>{links}</nav>\n" + "".join(sections) + "</body></html>\n")


def _kv(pairs: dict) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in pairs.items())
    return f'<table class="kv">{rows}</table>'


def _map_overlay(rgb, values) -> np.ndarray:
    from core.display import DisplayOptions, overlay

    return overlay(rgb, values, DisplayOptions(cmap="jet", opacity=0.5, normalisation="minmax"))


def outline_image(rgb: np.ndarray, regions) -> np.ndarray:
    """The cell with its nucleus (violet) and cell (orange) outlines drawn."""
    from skimage.segmentation import find_boundaries

    from core.display import to_image_size

    out = np.asarray(rgb, np.uint8).copy()
    if regions is None:
        return out
    for mask, colour in ((regions.cell, (230, 126, 34)), (regions.nucleus, (142, 68, 173))):
        big = to_image_size(mask.astype(np.float32), out.shape[:2]) > 0.5
        out[find_boundaries(big, mode="inner")] = colour
    return out


def dataset_report_html(study, summary: DatasetSummary, *, gallery_cells: int = 8, extra_sections=()) -> str:
    """The dataset report as one HTML string (see :data:`DATASET_SECTIONS`).

    ``extra_sections``: ``(id, title, html)`` appended after them (e.g. the concepts section of
    ``core.concepts.report``); their HTML is trusted, built by the project's own renderers.
    """
    from core.summary import figures
    from core.summary.tables import flat_columns

    fig = _Figures()
    s = summary
    body = {}
    body["settings"] = _kv(s.settings) + (
        '<p class="note">Score = model output P(normal); below the threshold the cell is called dysplastic. '
        'Group = dataset class, with the cells the current model gets wrong set apart. '
        'Explanations target each cell\'s dataset class unless the settings say otherwise.</p>')
    body["per-image"] = _table(s.per_image, digits=4, scroll=True)
    body["score-summary"] = ('<p class="note">Signed scores: cytoplasm S_g (+ transparent, - granular), '
                             'nucleus = chromatin S_c + lobes S_l, total S_t = S_g + S_c + S_l. '
                             'SD is the sample standard deviation.</p>'
                             + _table(flat_columns(s.score_summary)))
    if s.scatter.empty:
        body["scatter"] = _table(None)
    else:
        body["scatter"] = "".join(fig(figures.score_scatter(s.scatter, kind, threshold=study.threshold))
                                  for kind in ("total", "cytoplasm", "nucleus"))
    body["projection"] = (fig(figures.projection_figure(s.projection)) if s.projection is not None
                          else _table(None))
    body["pathologist-vs-model"] = (
        '<p class="note">Spearman rank correlation of the model score with each pathologist score over the '
        'annotated cells; a negative value is the expected direction (high pathologist scores = dysplastic, '
        'high model score = normal).</p>' + _table(s.correlations)
        + "<h3>Dataset label, model prediction and pathologist diagnosis</h3>" + _table(s.agreement))
    body["disagreements"] = _table(s.disagreements, digits=4, scroll=True)
    if s.occlusion_summary is not None:
        body["occlusion"] = ('<p class="note">Per cell, the largest drop and rise of the model score over all '
                             'patch positions (patch filled with its own mean colour), in percentage points; '
                             'mean over the cells and extreme per class. Reductions are negative.</p>'
                             + _table(s.occlusion_summary, digits=4) + fig(figures.occlusion_figure(s.occlusion_summary)))
    else:
        body["occlusion"] = _table(None)
    body["background"] = ('<p class="note">Score with everything outside the cell outline replaced by one '
                          'uniform colour (median of the background).</p>'
                          + _table(s.background_summary, digits=4)
                          + (fig(figures.background_figure(s.background, threshold=study.threshold))
                             if s.background is not None and not s.background.empty else "")
                          + "<h3>Per image</h3>" + _table(s.background, digits=4, scroll=True))
    note = ('<p class="note">Share of each method\'s positive attribution (occlusion: drop of the target '
            'probability; LIME: positive superpixel weights) inside nucleus, cytoplasm and background, next to '
            'the region\'s share of the image area; enrichment = share / area (1 = no better than an even '
            'spread). Pointing game = share of cells whose map peak lies inside the cell.</p>')
    body["localisation"] = note + (_table(s.localisation_summary) + fig(figures.localisation_figure(s.localisation_summary))
                                   if s.localisation_summary is not None and not s.localisation_summary.empty
                                   else _table(None))
    body["localisation-truth"] = (
        '<p class="note">The same against the synthetic generator\'s ground-truth masks, including the granule '
        'mask (only for synthetic cells).</p>'
        + (_table(s.localisation_truth_summary) + fig(figures.localisation_figure(s.localisation_truth_summary))
           if s.localisation_truth_summary is not None and not s.localisation_truth_summary.empty else _table(None)))
    if s.faithfulness_summary is not None:
        body["faithfulness"] = (
            '<p class="note">Pixels removed (deletion) or added (insertion) in attribution order, most important '
            'first, replaced by a heavily blurred copy of the image; probability of the explained class after each '
            'step. Lower deletion AUC and higher insertion AUC = more faithful; "random" is a random order.</p>'
            + _table(s.faithfulness_summary, digits=4) + fig(figures.faithfulness_figure(s.curves, "deletion"))
            + fig(figures.faithfulness_figure(s.curves, "insertion")))
    else:
        body["faithfulness"] = _table(None)
    if s.randomisation_summary is not None:
        body["randomisation"] = (
            f'<p class="note">Spearman rank correlation between each map of the trained model and of the same model '
            f'with its top layers re-initialised ({_e(s.settings.get("randomised layers", ""))}). A method that '
            f'explains the model changes a lot (low correlation); a high correlation means the map mostly shows '
            f'the image itself.</p>' + _table(s.randomisation_summary, digits=3)
            + fig(figures.randomisation_figure(s.randomisation)))
    else:
        body["randomisation"] = _table(None)
    body["gallery"] = _gallery(study, summary, gallery_cells)
    sections = [_section(sid, title, body[sid]) for sid, title in DATASET_SECTIONS]
    sections += [_section(sid, title, html_body) for sid, title, html_body in extra_sections]
    nav = list(DATASET_SECTIONS) + [(sid, title) for sid, title, _ in extra_sections]
    return _page(f"DisplasiaNet summary: {study.root.name}", sections, nav)


def _gallery(study, summary: DatasetSummary, count: int) -> str:
    if not summary.maps or count <= 0:
        return _table(None)
    picks = gallery_picks(study, count)
    rows = []
    for i in picks:
        cell = study.cells[i]
        items = [f'<figure><img src="{png_data_uri(study.rgbs[i], max_side=124)}" alt="cell">'
                 f'{_e(cell.name)}<br>{_e(study.groups[i])}, score {study.scores[i]:.4f}</figure>']
        for method, mm in summary.maps.items():
            uri = png_data_uri(_map_overlay(study.rgbs[i], mm.evidence[i]), max_side=124)
            items.append(f'<figure><img src="{uri}" alt="{_e(method)}">{_e(method)}</figure>')
        rows.append(f'<div class="maps small">{"".join(items)}</div>')
    return ('<p class="note">Positive evidence for the explained class, min-max normalised per map. '
            'The first rows are cells the model gets wrong (prediction differs from the dataset label).</p>'
            + _colour_bar() + "".join(rows))


def gallery_picks(study, count: int) -> list:
    """Example cells: up to half of them misclassified (model prediction != dataset label),
    the rest spread over the classes as ``randomisation_sample`` does; misclassified first."""
    from core.predict import label_of

    wrong = [i for i, c in enumerate(study.cells)
             if c.label is not None and label_of(float(study.scores[i]), study.threshold) != c.label]
    wrong = [wrong[int(t)] for t in np.unique(np.round(np.linspace(0, len(wrong) - 1, min(len(wrong), count // 2))))] \
        if wrong and count >= 2 else []
    rest = [i for i in randomisation_sample(study, count) if i not in wrong]
    return (wrong + rest)[:count]


def _colour_bar() -> str:
    """The overlays' colour scale (jet, min-max per map) as a small labelled bar."""
    from matplotlib import colormaps

    bar = (colormaps["jet"](np.linspace(0.0, 1.0, 256))[None, :, :3] * 255).astype(np.uint8).repeat(12, axis=0)
    return (f'<figure style="display:flex;align-items:center;gap:6px;margin:4px 0 10px">low'
            f'<img src="{png_data_uri(bar)}" alt="colour scale" style="width:256px;height:12px">'
            f'high evidence</figure>')


def cell_report_html(study, index: int, *, methods=IMAGE_METHODS, target: str = "label", params=None,
                     cache=None, steps: int = 20, maps=None, progress=None) -> str:
    """The report of one cell: prediction, annotation, every map and its numbers."""
    from core.summary import faithfulness as ff
    from core.summary.localisation import pointing_hit, relevance_mass
    from core.summary.maps import dataset_maps

    sub = study.subset([index])
    cell, rgb = sub.cells[0], sub.rgbs[0]
    if maps is None:
        maps = dataset_maps(sub, methods, target=target, params=params, cache=cache, progress=progress)
    else:
        maps = {m: type(mm)(m, (mm.targets[index],), mm.attribution[index:index + 1], mm.baseline[index:index + 1],
                             mm.params) for m, mm in maps.items()}
    regions, truth = sub.regions[0] if sub.regions else None, sub.truth[0] if sub.truth else None
    annotation = sub.annotations[0] if sub.annotations else None
    score = float(sub.scores[0])
    prediction = sub.predictions[0]
    body = {}
    body["cell-prediction"] = (
        f'<div class="maps"><figure><img src="{png_data_uri(rgb)}" alt="cell">{_e(cell.name)}</figure>'
        f'<figure><img src="{png_data_uri(outline_image(rgb, regions))}" alt="outlines">'
        f'outlines: {_e(regions.source if regions else "none")}</figure></div>'
        + _kv({"image": cell.name, "dataset class": cell.label or "unknown", "group": sub.groups[0],
               "model score P(normal)": f"{score:.6f}", "threshold": f"{sub.threshold:g}",
               "model prediction": prediction, "model": sub.loaded.source}))
    if annotation is None:
        body["cell-annotation"] = '<p class="note">No pathologist annotation for this cell.</p>'
    else:
        sc = annotation.scores
        body["cell-annotation"] = _kv({
            "annotator": annotation.annotator,
            "cytoplasm": f"{annotation.cytoplasm.state.value} {annotation.cytoplasm.degree} (S_g = {sc.cytoplasm:+d})",
            "chromatin": f"{annotation.chromatin.state.value} {annotation.chromatin.degree} (S_c = {sc.chromatin:+d})",
            "lobes": f"{annotation.lobes.value} (S_l = {sc.lobes})",
            "nucleus score S_c + S_l": f"{sc.chromatin + sc.lobes:+d}", "total S_t": f"{sc.total:+d}",
            "diagnosis": annotation.condition.value, "note": annotation.note or "",
            "updated": annotation.updated or ""})
    figures_html = []
    rows = []
    for method, mm in maps.items():
        values = mm.attribution[0]
        uri = png_data_uri(_map_overlay(rgb, np.maximum(values, 0)))
        figures_html.append(f'<figure><img src="{uri}" alt="{_e(method)}">{_e(method)} '
                            f'(target {_e(mm.targets[0])})</figure>')
        row = {"method": method, "target": mm.targets[0], "P(target)": float(mm.baseline[0])}
        for label, masks in (("", regions), ("truth ", truth)):
            if masks is None:
                continue
            shares = relevance_mass(values, masks.parts())
            for region, share in shares.items():
                row[f"{label}share {region}"] = share
            row[f"{label}pointing"] = pointing_hit(values, masks.cell)
        if steps:
            curves = ff.curves_for(sub.loaded, sub.images[0], values, mm.targets[0], steps=steps, cache=cache)
            row["deletion AUC"] = ff.area_under(curves["deletion"])
            row["insertion AUC"] = ff.area_under(curves["insertion"])
        rows.append(row)
    body["cell-maps"] = ('<p class="note">Positive evidence for the explained class over the cell, min-max '
                         'normalised per map (occlusion: drop of the target probability).</p>'
                         f'<div class="maps">{"".join(figures_html)}</div>')
    body["cell-numbers"] = ('<p class="note">Shares of positive attribution per region; pointing 1 = the map '
                            'peak lies inside the cell; deletion / insertion AUC of the target probability.</p>'
                            + _table(pd.DataFrame(rows), digits=3))
    sections = [_section(sid, title, body[sid]) for sid, title in CELL_SECTIONS]
    return _page(f"DisplasiaNet cell report: {cell.name}", sections, list(CELL_SECTIONS))
