"""Summary page parts: the study loaded once per (model, dataset, threshold), the evidence
computation in the background (progress, ETA, Stop, partial results), and table/figure
blocks with downloads."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from core.errors import DisplasiaError
from core.io_utils import frame_csv_bytes
from ui import resources, state
from ui.display import cached_figure
from ui.widgets import deferred_download

SUMMARY = "summary_result"
JOB = "evidence_job"


@st.cache_resource(show_spinner="Reading the dataset and its annotations…", max_entries=4)
def study(model_hash: str, root: str, threshold: float, interpolation: str, annotations_version: int, _loaded):
    from core.summary import load_study

    return load_study(root, _loaded, store=resources.annotation_store(), threshold=threshold, interpolation=interpolation)


def current_study(view):
    sel = state.selection()
    store = resources.annotation_store()
    with state.user_errors():
        return study(view.loaded.description.content_hash, str(view.dataset.root), sel.threshold, sel.interpolation,
                     store.count_versions(), view.loaded)


def stored_per_image(score_view, threshold: float) -> pd.DataFrame | None:
    """The per-image table from the stored scores and the annotation database: no TensorFlow,
    no image decoding, so the study tables show at once after a restart. None while some
    cell has no stored score yet (the caller then scores them)."""
    import numpy as np

    from core.annotations.schema import latest_reading
    from core.cell_regions import region_source
    from core.summary.study import Study
    from core.summary.tables import per_image_table

    table = score_view.table
    if score_view.missing:
        return None
    cells = tuple(score_view.dataset.cells)
    with state.user_errors():
        readings = resources.latest_readings([str(c.path) for c in cells])
    light = Study(score_view.dataset.root, cells, None, np.empty((0,), np.float32), [],
                  table["score"].to_numpy(np.float32), threshold, tuple(latest_reading(r) for r in readings))
    frame = per_image_table(light)
    frame["regions"] = [region_source(c.path, r) for c, r in zip(cells, readings)]
    return frame


def table_block(title: str, frame: pd.DataFrame | None, name: str, *, caption: str = "") -> None:
    if frame is None or frame.empty:
        return
    st.markdown(f"**{title}**")
    if caption:
        st.caption(caption)
    st.dataframe(frame, hide_index=True)
    deferred_download(st, f"{title} (CSV)", lambda: frame_csv_bytes(frame), f"{name}.csv", "text/csv", key=f"csv_{name}",
                      icon=None)


def figure_block(fig, name: str) -> None:
    if fig is not None:
        st.plotly_chart(fig, key=f"fig_{name}", config={"displaylogo": False,
                                                         "toImageButtonOptions": {"format": "png", "filename": name}})


class _Stopped(Exception):
    """Raised inside the evidence computation when the user pressed Stop."""


@dataclass
class EvidenceJob:
    """The evidence computation running in the background for one set of choices."""

    key: tuple
    started: float
    study: object = None             # the Study the evidence is computed on
    stage: str = "starting"
    fraction: float = 0.0
    result: object = None            # DatasetSummary, filled in stage by stage
    stop: bool = False
    finished: bool = False
    error: str | None = None

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        eta = elapsed * (1 - self.fraction) / self.fraction if self.fraction > 0.01 else None
        tail = f", about {eta:.0f} s left" if eta is not None else ""
        return f"{self.stage}: {self.fraction:.0%} after {elapsed:.0f} s{tail}"


_jobs_lock = threading.Lock()
_jobs: dict = {}


def start_evidence(stud, methods, patches, steps: int, randomisation_cells: int) -> EvidenceJob:
    """Run ``summarise_dataset`` in a background thread (one per choice of inputs); maps go
    through the disk cache, so a stopped or repeated run resumes where it was."""
    from core.summary.engine import summarise_dataset

    key = (id(stud), tuple(methods), tuple(patches), steps, randomisation_cells)
    with _jobs_lock:
        job = _jobs.get(key)
        if job is not None and not (job.finished and (job.error or job.stop)):
            return job
        from ui.quota import charge

        charge(len(stud) * max(1, len(methods)), "The evidence summary")  # quotas.dataset_work_cells
        job = _jobs[key] = EvidenceJob(key, time.monotonic(), study=stud)
    st.session_state[JOB] = key
    cache = resources.explanation_cache()

    def progress(done, total):
        job.fraction = min(done / max(total, 1), 1.0)
        if job.stop:
            raise _Stopped

    def run():
        try:
            job.result = summarise_dataset(
                stud, methods=methods, patches=patches, steps=steps, randomisation_cells=randomisation_cells,
                cache=cache, progress=progress, on_stage=lambda name: setattr(job, "stage", name),
                on_partial=lambda partial: setattr(job, "result", partial))
            job.fraction, job.stage = 1.0, "done"
        except _Stopped:
            job.stage = "stopped"
        except DisplasiaError as exc:
            job.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - one line for the user; the server log has the rest
            import logging

            logging.getLogger(__name__).exception("evidence computation failed")
            job.error = f"The evidence computation failed: {type(exc).__name__}."
        finally:
            job.finished = True

    threading.Thread(target=run, name="evidence", daemon=True).start()
    return job


def current_job() -> EvidenceJob | None:
    return _jobs.get(st.session_state.get(JOB))


def evidence_panel(show_results) -> None:
    """Progress, ETA and Stop of the running computation, and its (partial) results; redraws
    itself every second while the computation runs."""
    job = current_job()
    if job is None:
        return
    if job.finished:
        _job_lines(job)
        if job.result is not None:
            show_results(job.result)
        return

    @st.fragment(run_every=1.0)
    def live():
        now = current_job()
        if now is None or now.finished:
            st.rerun(scope="app")
        _job_lines(now)
        if now.result is not None:
            show_results(now.result)

    live()


def _job_lines(job: EvidenceJob) -> None:
    if job.error:
        st.error(job.error)
    elif job.finished and job.stage == "stopped":
        st.warning(f"Stopped ({job.line()}); the results below are partial. Computing again resumes from the cache.")
    elif job.finished:
        st.caption(f"Evidence computed in {time.monotonic() - job.started:.0f} s.")
    else:
        cols = st.columns([5, 1])
        cols[0].progress(job.fraction, text=job.line())
        if cols[1].button("Stop", key="evidence_stop"):
            job.stop = True


def evidence_results(result, stud, threshold: float) -> None:
    """Every table and figure of the evidence that is there yet (a partial result shows its first stages)."""
    from core.summary import figures
    from core.summary.report import dataset_report_html

    table_block("Relevance mass per method and class (annotation / ground-truth outlines)",
                result.localisation_summary, "relevance_mass")
    figure_block(cached_figure(figures.localisation_figure, result.localisation_summary), "relevance_mass")
    table_block("Relevance mass against the generator's ground truth (incl. granules)",
                result.localisation_truth_summary, "relevance_mass_truth")
    table_block("Deletion / insertion AUC", result.faithfulness_summary, "faithfulness")
    figure_block(cached_figure(figures.faithfulness_figure, result.curves), "deletion_curves")
    table_block("Model randomisation (Spearman: low = the method depends on the weights)",
                result.randomisation_summary, "randomisation")
    figure_block(cached_figure(figures.randomisation_figure, result.randomisation), "randomisation")
    table_block("Occlusion summary (%)", result.occlusion_summary, "occlusion_summary")
    figure_block(cached_figure(figures.occlusion_figure, result.occlusion_summary), "occlusion")
    figure_block(cached_figure(figures.projection_figure, result.projection), "tsne")
    table_block("Background test per group", result.background_summary, "background_summary")
    if result.background is not None:
        figure_block(cached_figure(figures.background_figure, result.background, threshold=threshold), "background")
    table_block("Background test per image", result.background, "background")
    job = current_job()
    if job is None or job.finished:
        deferred_download(st, "Download the HTML report", lambda: dataset_report_html(stud, result),
                          "displasia_report.html", "text/html", key="sum_report", icon=None)


def open_cell(names, *, key: str) -> None:
    """Pick one of ``names``, make it the current cell and go to the Compare page."""
    if not len(names):
        return
    cols = st.columns([3, 1])
    name = cols[0].selectbox("Open a cell", list(names), key=f"open_{key}", label_visibility="collapsed")
    if cols[1].button("Open in Compare", key=f"go_{key}"):
        st.session_state[state.CELL] = name
        st.switch_page("pages/compare.py")


def cell_report(get_study, name: str) -> None:
    """Build the one-cell HTML report on request (``get_study()`` loads the study then), then
    offer it for download."""
    from core.summary.report import cell_report_html

    key = f"cell_report:{name}"
    if st.button(f"Build the report of {name}", key="build_cell_report"):
        stud = get_study()
        with st.spinner("Computing every method for this cell…"):
            st.session_state[key] = cell_report_html(stud, stud.index(name), cache=resources.explanation_cache())
    if key in st.session_state:
        st.download_button(f"Download the report of {name}", st.session_state[key], f"{name}_report.html", "text/html",
                           key="dl_cell_report")
