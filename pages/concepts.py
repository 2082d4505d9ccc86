"""Concepts: does the model use what pathologists use? Concept sweeps of the current cell's
synthetic twin, and TCAV scores per concept, layer and class with the random-concept test."""
import streamlit as st

from core.concepts.sweeps import SWEEPS, describe_sweep
from core.io_utils import frame_csv_bytes
from ui import concepts as ui
from ui import context, state

st.title("Concepts")
view = context.dataset_view()
loaded = view.loaded
sel = state.selection()
# Only the open tab runs (the other is not built and sent on every rerun).
tab_sweep, tab_tcav = st.tabs(["Concept sweeps", "TCAV"], key="concepts_tab", on_change="rerun")


def sweep_tab():
    cols = st.columns(3)
    feature = cols[0].selectbox("Feature", list(SWEEPS), format_func=lambda f: SWEEPS[f].label, key="concepts_feature")
    batch = cols[1].number_input("Generated cells for mean and band", 0, 100, 0, key="concepts_batch",
                                 help="0 = only the current cell; 20 cells take about a minute the first time.")
    seed = cols[2].number_input("Seed", 0, 2**31 - 1, 11, key="concepts_seed")
    twin, note, batch_cells = ui.sweep_cells(view, sel.cell, int(batch), int(seed))
    one = ui.sweep(loaded, [twin], feature, names=(note,))
    if one is not None:
        st.caption(f"Sweeping {note}: every other latent feature stays as it is.")
        ui.thumbnails(one)
        st.plotly_chart(ui.sweep_figure(one), key="concepts_sweep_one")
        st.write(describe_sweep(one))
    if batch_cells:
        many = ui.sweep(loaded, batch_cells, feature)
        if many is not None:
            st.plotly_chart(ui.sweep_figure(many, f"{len(batch_cells)} generated cells: mean and 10-90 % band"),
                            key="concepts_sweep_batch")
            st.write(describe_sweep(many))


def tcav_tab():
    st.caption("TCAV (Kim et al. 2018): how often moving a layer's activations towards a concept raises the "
               "class's logit, tested against random directions; 0.5 = no preference, * = significant after Holm "
               "correction. A concept the layer cannot separate is not scored.")
    settings = ui.tcav_form(loaded)
    if settings is not None:
        ui.run_tcav(loaded, str(view.dataset.root), settings)
    result = ui.last_result(loaded, str(view.dataset.root))
    if result is not None:
        target = st.radio("Class", ["dysplastic", "normal"], horizontal=True, key="concepts_target")
        st.plotly_chart(ui.tcav_figure(result, target), key="concepts_tcav")
        layer = st.selectbox("Layer for the table", list(result.params.layers), index=len(result.params.layers) - 1)
        st.dataframe(ui.concept_table(result, layer, target), hide_index=True)
        st.download_button("TCAV table CSV", frame_csv_bytes(result.table), "tcav.csv", "text/csv",
                           key="concepts_csv")


for tab, draw in ((tab_sweep, sweep_tab), (tab_tcav, tcav_tab)):
    if tab.open:
        with tab:
            draw()
