"""Admin section: fill the explanation cache for the current dataset on a Dask cluster.

One run per server process at a time (``core.distributed.run_precompute`` in the
background, on a local cluster or the scheduler whose address is given); every admin
session sees it: cells done, rate, ETA, failures, a Stop button
and the link to the Dask dashboard. The page redraws the run every 2 s while it goes on.
"""
from __future__ import annotations

import os
import threading

import streamlit as st

from ui import state
from ui.widgets import plain

POLL_S = 2.0
_lock = threading.Lock()
_current: dict = {}                  # "run" -> PrecomputeRun, "what" -> one-line description


def section() -> None:
    from core.explain.registry import get_method, method_names

    st.subheader("Precompute explanations (Dask)")
    run = _current.get("run")
    if run is not None and run.running:
        live_status()
        return
    if run is not None:
        show(run)                                # how the last run ended
    sel = state.selection()
    choices = method_names(precompute=True)
    left, right = st.columns([4, 1])
    methods = left.multiselect("Methods", choices, default=[m for m in ("gradcam", "occlusion") if m in choices],
                               format_func=lambda m: get_method(m).title, key="precompute_methods")
    cores = max(1, os.cpu_count() or 1)
    workers = right.number_input("Local workers", 1, cores, min(2, cores), key="precompute_workers",
                                 help="Processes of a local Dask cluster, one thread each.")
    scheduler = st.text_input("Dask scheduler address (empty: a local cluster on this server)", key="precompute_scheduler",
                              placeholder="tcp://scheduler:8786", max_chars=200,
                              help="Its workers must see the dataset, the model and the cache folder at the same paths.")
    if st.button(f"Start: every cell of {plain(sel.dataset)}, both classes", key="precompute_start",
                 disabled=not methods):
        start(sel, methods, int(workers), scheduler.strip() or None)
        st.rerun()


def start(sel, methods: list, workers: int, scheduler: str | None = None) -> None:
    from core.distributed import run_precompute

    with _lock:
        if _current.get("run") is not None and _current["run"].running:
            return
        with state.user_errors():
            _current["run"] = run_precompute(sel.dataset, methods, model=sel.model.path, weights=sel.model.weights,
                                             interpolation=sel.interpolation, threshold=sel.threshold,
                                             workers=workers, scheduler=scheduler, background=True)
        _current["what"] = f"{', '.join(methods)} on {sel.dataset} with {sel.model.label}"


@st.fragment(run_every=POLL_S)
def live_status() -> None:
    run = _current.get("run")
    if run is None or not run.running:
        st.rerun(scope="app")                    # the run ended: the start form again
    show(run)


def show(run) -> None:
    """Cells done, rate and ETA, the Dask dashboard link, what stopped the run, failed cells, Stop."""
    p = run.progress
    st.caption(plain(_current.get("what", "")))
    st.progress(p.done / p.total if p.total else 0.0, text=plain(p.line()))
    if run.dashboard_link:
        st.markdown(f"[Dask dashboard]({run.dashboard_link})")
    if run.error is not None:
        st.error(plain(str(run.error)))
    if run.failures:
        with st.expander(f"{len(run.failures)} cell(s) failed or skipped", icon=":material/warning:"):
            st.dataframe([{"cell": name, "reason": reason} for name, reason in run.failures], hide_index=True)
    if run.running and st.button("Stop", key="precompute_stop", disabled=run.cancelled,
                                 help="Finished cells stay cached; a new run skips them."):
        run.cancel()
