"""Summary: the study's tables and plots for this dataset, and whether each method looks where
the pathologist (or the ground truth) says the evidence is."""
import streamlit as st

from core.summary import figures, tables
from core.summary.maps import IMAGE_METHODS
from ui import context, state
from ui import summary as ui
from ui.display import cached_figure

st.title("Summary and evidence")
threshold = state.selection().threshold


def full_study():
    """The study with images, outlines and the model (TensorFlow): only the evidence needs it."""
    return ui.current_study(context.dataset_view())


per_image = ui.stored_per_image(context.score_view(background=False), threshold)
if per_image is None:                 # some cell not scored yet: score now (progress bar), then the tables
    per_image = tables.per_image_table(full_study())
# Only the open tab runs (the others are not built and sent on every rerun).
tab_study, tab_evidence, tab_pathologist = st.tabs(["Study tables", "Where methods look", "Pathologist vs model"],
                                                   key="summary_tab", on_change="rerun")


def study_tab():
    ui.table_block("Per-image table", per_image, "per_image")
    ui.table_block("Scores per class", tables.score_summary(per_image), "score_summary",
                   caption="Nucleus = chromatin + lobe scores.")
    kind = st.radio("Scatter: model score against", ["total", "cytoplasm", "nucleus"], horizontal=True, key="sum_kind")
    ui.figure_block(cached_figure(figures.score_scatter, tables.scatter_data(per_image), kind, threshold=threshold),
                    f"scatter_{kind}")


def pathologist_tab():
    ui.table_block("Spearman correlation of the model score with each pathologist score",
                   tables.score_correlations(per_image), "correlations")
    ui.table_block("Pathologist condition vs model prediction vs dataset label", tables.agreement_table(per_image), "agreement")
    disagreeing = tables.disagreements(per_image)
    ui.table_block("Cells where they disagree", disagreeing, "disagreements")
    ui.open_cell(disagreeing["name"] if "name" in disagreeing else [], key="disagreements")


def evidence_tab():
    with st.form("evidence"):
        methods = st.multiselect("Methods", IMAGE_METHODS, default=list(IMAGE_METHODS))
        cols = st.columns(3)
        patches = cols[0].multiselect("Occlusion patch sizes", [5, 10, 20, 40], default=[10, 20, 40],
                                      help="5 px means 3,600 occlusions per cell: minutes on a laptop.")
        steps = cols[1].number_input("Deletion / insertion steps", 0, 100, 20)
        randomised = cols[2].number_input("Cells for the randomisation check", 0, 200, 12)
        go = st.form_submit_button("Compute the evidence (cached, resumable)")
    if go:
        ui.start_evidence(full_study(), tuple(methods), tuple(patches), int(steps), int(randomised))
    ui.evidence_panel(lambda result: ui.evidence_results(result, ui.current_job().study, threshold))
    st.divider()
    ui.cell_report(full_study, state.selection().cell)


for tab, draw in ((tab_study, study_tab), (tab_evidence, evidence_tab), (tab_pathologist, pathologist_tab)):
    if tab.open:
        with tab:
            draw()
