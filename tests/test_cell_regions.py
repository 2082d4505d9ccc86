"""The summary's cheap "where do the masks come from" answer agrees with the masks themselves."""
from __future__ import annotations

import numpy as np
import pytest

from core.annotations.schema import Annotation, Graded, Shape
from core.cell_regions import annotation_masks, cell_regions, region_source

SQUARE = ((10.0, 10.0), (30.0, 10.0), (30.0, 30.0), (10.0, 30.0))
SLIVER = ((10.2, 10.2), (30.2, 10.3), (10.3, 10.4))   # positive area, no pixel centre inside


def _reading(annotator: str, shapes, updated: str) -> Annotation:
    return Annotation(image="cell.jpg", image_sha256="0" * 64, annotator=annotator, image_size=(40, 40),
                      cytoplasm=Graded("granular", 1), chromatin=Graded("homogenic", 1), lobes="normal",
                      condition="normal", shapes=tuple(Shape(label, pts) for label, pts in shapes), updated=updated)


@pytest.mark.parametrize("annotations, expected", [
    ({}, "automatic outline"),
    ({"a": _reading("a", [("cytoplasm", SQUARE)], "2026-01-01T00:00:00+00:00")}, "annotation: a"),
    ({"a": _reading("a", [("nucleus", SQUARE)], "2026-01-01T00:00:00+00:00")}, "annotation: a"),
    ({"a": _reading("a", [("cytoplasm", SLIVER)], "2026-01-01T00:00:00+00:00")}, "automatic outline"),
    # the latest reading that drew something counts, even when an older one drew more
    ({"a": _reading("a", [("cytoplasm", SQUARE)], "2026-01-01T00:00:00+00:00"),
      "b": _reading("b", [("cytoplasm", SLIVER)], "2026-02-01T00:00:00+00:00")}, "automatic outline"),
    ({"a": _reading("a", [("cytoplasm", SLIVER)], "2026-01-01T00:00:00+00:00"),
      "b": _reading("b", [("cytoplasm", SQUARE), ("nucleus", SLIVER)], "2026-02-01T00:00:00+00:00")}, "annotation: b"),
])
def test_region_source_names_the_source_cell_regions_uses(tmp_path, annotations, expected):
    rgb = np.full((40, 40, 3), 230, np.uint8)
    rgb[12:28, 12:28] = (120, 60, 160)
    assert region_source(tmp_path / "cell.jpg", annotations) == expected
    assert cell_regions(tmp_path / "cell.jpg", rgb, annotations).source == expected
    # the sliver really rasterises to nothing (else the case above tests nothing)
    assert annotation_masks({"a": _reading("a", [("cytoplasm", SLIVER)], "2026-01-01T00:00:00+00:00")}) is None
