"""Summary and evidence: the study's tables for any dataset, and the numbers it could not give.

- :mod:`~core.summary.study`: read a dataset once (images, scores, annotations, masks).
- :mod:`~core.summary.tables`: per-image table, score summary per class, scatter data,
  pathologist vs model (Spearman, confusion, disagreements).
- :mod:`~core.summary.occlusion`, :mod:`~core.summary.background`: the study's occlusion
  and background-test tables.
- :mod:`~core.summary.maps`: every method's maps for a dataset, through the cache.
- :mod:`~core.summary.localisation`: where each method looks (relevance mass, pointing game).
- :mod:`~core.summary.faithfulness`: which method can be trusted (deletion / insertion,
  model randomisation).
- :mod:`~core.summary.engine`: every table of a dataset at once (:class:`DatasetSummary`).
- :mod:`~core.summary.figures`: plotly figures; :mod:`~core.summary.report`: HTML rendering only.

No streamlit; TensorFlow loads only when a model runs. Every table function returns a
pandas DataFrame and long computations take ``progress=callable(done, total)``.
"""
from __future__ import annotations

from core.summary.study import GROUP_ORDER, ModelRegions, Study, load_study, outcome_group

__all__ = ["GROUP_ORDER", "ModelRegions", "Study", "load_study", "outcome_group"]
