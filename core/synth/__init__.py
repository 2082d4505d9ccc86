"""Procedural CellaVision-like neutrophils with pixel-exact ground truth.

Pure NumPy / SciPy / Pillow (no TensorFlow, no streamlit). A cell is a pure function
of its :class:`CellFeatures`; a generated set is a pure function of ``(seed, index)``,
so cell ``i`` of seed ``S`` is the same whatever the size of the set.
"""
from __future__ import annotations

import numpy as np

from .features import (
    DYSPLASTIC_FEATURES,
    GENERATOR_VERSION,
    GENERATOR_VERSIONS,
    HYPOGRANULAR_DENSITY,
    KINDS,
    LATEST_GENERATOR_VERSION,
    NUCLEUS_SHAPES,
    CellFeatures,
    sample_features,
)
from .render import CAPTURE_MODELS, IMAGE_SHAPE, CaptureModel, SyntheticCell, capture_model, render_cell

__all__ = [
    "CAPTURE_MODELS", "CaptureModel", "CellFeatures", "SyntheticCell", "GENERATOR_VERSION",
    "GENERATOR_VERSIONS", "LATEST_GENERATOR_VERSION", "capture_model", "HYPOGRANULAR_DENSITY", "IMAGE_SHAPE",
    "KINDS", "NUCLEUS_SHAPES", "DYSPLASTIC_FEATURES", "cell_features", "generate_cell",
    "render_cell", "sample_features",
]


def cell_features(seed: int, index: int, kind: str = "mixed") -> CellFeatures:
    """Latent features of cell ``index`` of the set generated with ``seed``.

    ``kind`` is "normal", "dysplastic" or "mixed" (each cell's class drawn 50/50).
    """
    rng = np.random.default_rng([int(seed), int(index)])
    if kind == "mixed":
        kind = KINDS[int(rng.random() < 0.5)]
    return sample_features(rng, kind)


def generate_cell(seed: int, index: int = 0, kind: str = "mixed", *,
                  version: str = GENERATOR_VERSION) -> SyntheticCell:
    """Render cell ``index`` of the set generated with ``seed`` (see :func:`cell_features`)
    with generator ``version``: the latent features do not depend on the version."""
    return render_cell(cell_features(seed, index, kind), version=version)
