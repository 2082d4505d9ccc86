"""Summary: the study's tables and plots for this dataset, and whether each method looks where
the pathologist (or the ground truth) says the evidence is."""
import streamlit as st

from core.summary import figures, tables
from core.summary.maps import IMAGE_METHODS
from core.summary.report import dataset_report_html
from ui import context, state, summary as ui

st.title("Summary and evidence")
view = context.dataset_view()
stud = ui.current_study(view)
threshold = state.selection().threshold
per_image = tables.per_image_table(stud)
tab_study, tab_evidence, tab_pathologist = st.tabs(["Study tables", "Where methods look", "Pathologist vs model"])
with tab_study:
    ui.table_block("Per-image table", per_image, "per_image")
    ui.table_block("Scores per class", tables.score_summary(per_image), "score_summary",
                   caption="Nucleus = chromatin + lobe scores.")
    kind = st.radio("Scatter: model score against", ["total", "cytoplasm", "nucleus"], horizontal=True, key="sum_kind")
    ui.figure_block(figures.score_scatter(tables.scatter_data(per_image), kind, threshold=threshold), f"scatter_{kind}")
with tab_pathologist:
    ui.table_block("Spearman correlation of the model score with each pathologist score",
                   tables.score_correlations(per_image), "correlations")
    ui.table_block("Pathologist condition vs model prediction vs dataset label", tables.agreement_table(per_image), "agreement")
    disagreeing = tables.disagreements(per_image)
    ui.table_block("Cells where they disagree", disagreeing, "disagreements")
    ui.open_cell(disagreeing["name"] if "name" in disagreeing else [], key="disagreements")
with tab_evidence:
    with st.form("evidence"):
        methods = st.multiselect("Methods", IMAGE_METHODS, default=list(IMAGE_METHODS))
        cols = st.columns(3)
        patches = cols[0].multiselect("Occlusion patch sizes", [5, 10, 20, 40], default=[10, 20, 40],
                                      help="5 px means 3,600 occlusions per cell: minutes on a laptop.")
        steps = cols[1].number_input("Deletion / insertion steps", 0, 100, 20)
        randomised = cols[2].number_input("Cells for the randomisation check", 0, 200, 12)
        go = st.form_submit_button("Compute the evidence (cached, resumable)")
    if go:
        ui.compute_evidence(stud, tuple(methods), tuple(patches), int(steps), int(randomised))
    result = st.session_state.get(ui.SUMMARY)
    if result is not None:
        ui.table_block("Relevance mass per method and class (annotation / ground-truth outlines)", result.localisation_summary, "relevance_mass")
        ui.figure_block(figures.localisation_figure(result.localisation_summary) if result.localisation_summary is not None else None, "relevance_mass")
        ui.table_block("Relevance mass against the generator's ground truth (incl. granules)", result.localisation_truth_summary, "relevance_mass_truth")
        ui.table_block("Deletion / insertion AUC", result.faithfulness_summary, "faithfulness")
        ui.figure_block(figures.faithfulness_figure(result.curves) if result.curves is not None else None, "deletion_curves")
        ui.table_block("Model randomisation (Spearman: low = the method depends on the weights)", result.randomisation_summary, "randomisation")
        ui.figure_block(figures.randomisation_figure(result.randomisation) if result.randomisation is not None else None, "randomisation")
        ui.table_block("Occlusion summary (%)", result.occlusion_summary, "occlusion_summary")
        ui.figure_block(figures.occlusion_figure(result.occlusion_summary) if result.occlusion_summary is not None else None, "occlusion")
        ui.figure_block(figures.projection_figure(result.projection) if result.projection is not None else None, "tsne")
        ui.table_block("Background test per group", result.background_summary, "background_summary")
        ui.figure_block(figures.background_figure(result.background, threshold=threshold), "background")
        ui.table_block("Background test per image", result.background, "background")
        st.download_button("Download the HTML report", dataset_report_html(stud, result), "displasia_report.html", "text/html",
                           key="sum_report")
    st.divider()
    ui.cell_report(stud, state.selection().cell)
