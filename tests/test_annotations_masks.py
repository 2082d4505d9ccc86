"""Rasterising outlines to cell / nucleus / cytoplasm masks."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.annotations.masks import cell_masks, mask_iou, polygon_mask
from core.annotations.schema import Shape
from core.preprocess import resize_mask
from tests.test_annotations_schema import make_annotation


def test_rectangle_area_is_exact_on_pixel_edges():
    mask = polygon_mask([(20, 10), (70, 10), (70, 40), (20, 40)], (100, 100))
    assert mask.sum() == 50 * 30
    assert mask[10, 20] and mask[39, 69] and not mask[40, 20] and not mask[10, 70]


@pytest.mark.parametrize("x0, y0, w, h", [(3.3, 7.8, 40.2, 25.5), (0.5, 0.5, 10.0, 90.0)])
def test_off_grid_rectangle_area_within_one_pixel_row_and_column(x0, y0, w, h):
    # Edges through pixel centres (the second case) count those pixels in: at most one
    # extra row and one extra column.
    mask = polygon_mask([(x0, y0), (x0 + w, y0), (x0 + w, y0 + h), (x0, y0 + h)], (100, 100))
    assert abs(int(mask.sum()) - w * h) <= w + h + 1


def test_cytoplasm_is_cell_minus_nucleus_and_lobes_unite():
    a = make_annotation(shapes=(
        Shape("cytoplasm", ((100, 100), (200, 100), (200, 200), (100, 200))),
        Shape("nucleus", ((120, 120), (140, 120), (140, 140), (120, 140))),
        Shape("nucleus", ((160, 160), (180, 160), (180, 190), (160, 190)))))
    m = cell_masks(a)
    assert m.cell.shape == (363, 360)
    assert m.cell.sum() == 100 * 100
    assert m.nucleus.sum() == 20 * 20 + 20 * 30
    assert m.cytoplasm.sum() == 100 * 100 - 1000
    assert not (m.cytoplasm & m.nucleus).any()


def test_nucleus_outside_the_cell_outline_still_counts_as_cell():
    a = make_annotation(shapes=(Shape("nucleus", ((10, 10), (30, 10), (30, 30), (10, 30))),))
    m = cell_masks(a)
    assert m.cell.sum() == m.nucleus.sum() == 400 and m.cytoplasm.sum() == 0


def test_model_resolution_masks_follow_the_nearest_resize_of_the_image():
    a = make_annotation()
    full = cell_masks(a)
    small = cell_masks(a, size=(299, 299))
    assert small.cell.shape == (299, 299)
    # Paint the image with its own mask and resize it the way the model input is made.
    painted = Image.fromarray(full.nucleus.astype(np.uint8) * 255).resize((299, 299), Image.Resampling.NEAREST)
    assert np.array_equal(small.nucleus, np.asarray(painted) > 127)
    assert np.array_equal(resize_mask(full.cell, (299, 299)), small.cell)


def test_mask_iou_values():
    a = np.zeros((10, 10), bool)
    a[:, :5] = True
    b = np.zeros((10, 10), bool)
    b[:, 5:] = True
    assert mask_iou(a, a) == 1.0
    assert mask_iou(a, b) == 0.0
    c = np.ones((10, 10), bool)
    assert mask_iou(a, c) == 0.5
    assert mask_iou(np.zeros((3, 3), bool), np.zeros((3, 3), bool)) == 1.0
