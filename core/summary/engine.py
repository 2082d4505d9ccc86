"""The dataset summary: every table of the study and of the evidence checks, computed once.

The computation behind the Summary page, ``python -m core report`` and the HTML report
(:mod:`core.summary.report` only renders a :class:`DatasetSummary`). No streamlit, no HTML.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.summary.maps import IMAGE_METHODS
from core.summary.occlusion import STUDY_PATCHES


@dataclass(eq=False)
class DatasetSummary:
    """Every table of the dataset summary (DataFrames), the maps they come from and the settings."""

    settings: dict
    per_image: pd.DataFrame
    score_summary: pd.DataFrame
    scatter: pd.DataFrame
    correlations: pd.DataFrame
    agreement: pd.DataFrame
    disagreements: pd.DataFrame
    projection: pd.DataFrame | None = None
    occlusion_changes: pd.DataFrame | None = None
    occlusion_summary: pd.DataFrame | None = None
    background: pd.DataFrame | None = None
    background_summary: pd.DataFrame | None = None
    localisation: pd.DataFrame | None = None
    localisation_summary: pd.DataFrame | None = None
    localisation_truth: pd.DataFrame | None = None
    localisation_truth_summary: pd.DataFrame | None = None
    curves: pd.DataFrame | None = None
    faithfulness: pd.DataFrame | None = None
    faithfulness_summary: pd.DataFrame | None = None
    randomisation: pd.DataFrame | None = None
    randomisation_summary: pd.DataFrame | None = None
    maps: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)

    def tables(self) -> dict:
        """``{name: DataFrame}`` of every table that was computed (for CSV export)."""
        skip = {"settings", "maps", "timings"}
        return {name: value for name, value in vars(self).items()
                if name not in skip and isinstance(value, pd.DataFrame)}


def write_tables(summary: DatasetSummary, folder) -> list:
    """Write every table of ``summary`` as ``<folder>/<name>.csv``; returns the paths."""
    from pathlib import Path

    from core.errors import DisplasiaError
    from core.io_utils import atomic_write_bytes, frame_csv_bytes

    folder = Path(folder)
    if not folder.is_dir():
        raise DisplasiaError(f"Output folder does not exist: {folder}")
    paths = []
    for name, frame in summary.tables().items():
        path = folder / f"{name}.csv"
        atomic_write_bytes(path, frame_csv_bytes(frame))
        paths.append(path)
    return paths


class _Stages:
    """Turns per-stage ``(done, total)`` into one overall ``progress(done, total)`` in thousandths."""

    def __init__(self, weights: dict, progress=None, on_stage=None):
        self.weights = {k: float(v) for k, v in weights.items() if v > 0}
        self.total = sum(self.weights.values()) or 1.0
        self.progress, self.on_stage = progress, on_stage
        self.offset = 0.0
        self.timings = {}

    def stage(self, name: str):
        import time

        now = time.perf_counter()
        if getattr(self, "_current", None) is not None:
            self.timings[self._current[0]] = now - self._current[1]
        self._current = (name, now)
        if self.on_stage is not None:
            self.on_stage(name)
        weight = self.weights.get(name, 0.0)
        start = self.offset
        self.offset += weight

        def report(done, total):
            if self.progress is not None:
                share = start + weight * min(done / max(total, 1), 1.0)
                self.progress(int(round(1000 * share / self.total)), 1000)
        return report

    def finish(self):
        import time

        if getattr(self, "_current", None) is not None:
            self.timings[self._current[0]] = time.perf_counter() - self._current[1]
            self._current = None
        if self.progress is not None:
            self.progress(1000, 1000)


def randomisation_sample(study, count: int) -> list:
    """Up to ``count`` cell indices spread evenly over the classes (deterministic)."""
    if count <= 0 or len(study) == 0:
        return []
    labels = [c.label or "unlabelled" for c in study.cells]
    classes = list(dict.fromkeys(labels))
    per = max(1, int(np.ceil(count / len(classes))))
    chosen = []
    for cls in classes:
        idx = [i for i, lab in enumerate(labels) if lab == cls]
        take = np.unique(np.round(np.linspace(0, len(idx) - 1, min(per, len(idx)))).astype(int))
        chosen.extend(idx[t] for t in take)
    return sorted(chosen)[:count] if len(chosen) > count else sorted(chosen)


def summarise_dataset(study, *, methods=IMAGE_METHODS, target: str = "label", params=None, cache=None,
                      patches=STUDY_PATCHES, steps: int = 20, tile: int = 1, randomisation_cells: int = 12,
                      projection: bool = True, progress=None, on_stage=None, on_partial=None) -> DatasetSummary:
    """Compute every table of the dataset summary.

    Parameters
    ----------
    study : Study
    methods : sequence of str
        Image methods to assess (default: the registry's summary methods).
    target : str
        Class explained per cell (see ``Study.targets``; default the dataset class).
    params : mapping of method -> parameters, optional
    cache : ExplanationCache, optional
        Strongly advised: every map goes through it.
    patches : sequence of int
        Patch sizes of the occlusion summary (empty = skip).
    steps : int
        Deletion / insertion steps (0 = skip).
    tile : int
        Deletion / insertion unit: 1 = single pixels, larger = squares removed whole.
    randomisation_cells : int
        Cells for the randomisation check (it recomputes every map; 0 = skip).
    projection : bool
        Compute the t-SNE projection.
    progress : callable(done, total), optional
        Overall progress (in thousandths).
    on_stage : callable(str), optional
        Told the name of each stage as it starts.
    on_partial : callable(DatasetSummary), optional
        Handed the summary as soon as it exists; its fields fill in stage by stage, so a
        caller can show partial results while the rest computes.
    """
    from core.summary import background as bg
    from core.summary import faithfulness as ff
    from core.summary import localisation as loc
    from core.summary import occlusion as osm
    from core.summary import tables
    from core.summary.maps import dataset_maps

    methods = tuple(methods)
    n = max(len(study), 1)
    sample = randomisation_sample(study, randomisation_cells) if methods else []
    stages = _Stages({"projection": 2 if projection else 0, "occlusion": len(patches) * 3, "background": 0.5,
                      "maps": 2 * len(methods), "deletion/insertion": (len(methods) + 1) if steps else 0,
                      "randomisation": 2 * len(methods) * len(sample) / n}, progress, on_stage)
    per_image = tables.per_image_table(study)
    summary = DatasetSummary(
        settings={"dataset": str(study.root.name), "cells": len(study), "model": str(study.loaded.source),
                  "model_hash": study.loaded.description.content_hash[:12], "threshold": study.threshold,
                  "interpolation": study.interpolation, "methods": ", ".join(methods), "target": target,
                  "occlusion patches": ", ".join(str(p) for p in patches), "deletion steps": steps,
                  "deletion score": "log-odds of the explained class",
                  "maps": "signed where there is a choice (+ supports the explained class)",
                  "deletion unit": "pixel" if tile <= 1 else f"{tile} x {tile} px square",
                  "randomisation cells": len(sample),
                  "randomised layers": ", ".join(ff.randomisable_layers(study.loaded)),
                  "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")},
        per_image=per_image,
        score_summary=tables.score_summary(per_image),
        scatter=tables.scatter_data(per_image),
        correlations=tables.score_correlations(per_image),
        agreement=tables.agreement_table(per_image),
        disagreements=tables.disagreements(per_image),
    )
    if on_partial is not None:
        on_partial(summary)
    if projection and len(study) >= 2:
        summary.projection = tables.projection_points(study, per_image, cache=cache,
                                                      progress=stages.stage("projection"))
    if patches:
        summary.occlusion_changes = osm.occlusion_changes(study, patches=patches, cache=cache,
                                                          progress=stages.stage("occlusion"))
        summary.occlusion_summary = osm.occlusion_summary(summary.occlusion_changes)
    summary.background = bg.background_table(study, cache=cache, progress=stages.stage("background"))
    summary.background_summary = bg.background_summary(summary.background)
    if methods:
        maps = dataset_maps(study, methods, target=target, params=params, cache=cache,
                            progress=stages.stage("maps"))
        summary.maps = maps
        summary.localisation = loc.localisation_table(study, maps, source="regions")
        summary.localisation_summary = loc.localisation_summary(summary.localisation)
        if any(t is not None for t in study.truth):
            summary.localisation_truth = loc.localisation_table(study, maps, source="truth")
            summary.localisation_truth_summary = loc.localisation_summary(summary.localisation_truth)
        if steps:
            summary.curves = ff.faithfulness_curves(study, maps, steps=steps, tile=tile, cache=cache,
                                                    progress=stages.stage("deletion/insertion"))
            summary.faithfulness = ff.faithfulness_table(summary.curves)
            summary.faithfulness_summary = ff.faithfulness_summary(summary.faithfulness)
        if sample:
            summary.randomisation = ff.randomisation_table(study, methods, target=target, params=params,
                                                           cache=cache, cells=sample, maps=maps,
                                                           progress=stages.stage("randomisation"))
            summary.randomisation_summary = ff.randomisation_summary(summary.randomisation)
    stages.finish()
    summary.timings = {k: round(v, 1) for k, v in stages.timings.items()}
    return summary
