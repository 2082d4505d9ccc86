"""Automatic outline suggestion: IoU against known masks."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage as ndi

from core.annotations.masks import mask_iou, shapes_mask
from core.annotations.schema import ShapeLabel
from core.annotations.segment import evaluate_folder, mask_polygons, suggest_outlines
from core.config import DATA_DIR
from core.errors import DisplasiaError

H, W = 363, 360


def _disc(cy, cx, r):
    yy, xx = np.mgrid[:H, :W]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def drawn_cell(seed: int = 0):
    """A hand-built smear: cream background, pink red cells (one touching), a lilac cell
    with two violet nucleus lobes; returns (rgb, cell, nucleus)."""
    rng = np.random.default_rng(seed)
    cy, cx = H / 2 + rng.uniform(-8, 8), W / 2 + rng.uniform(-8, 8)
    cell = _disc(cy, cx, 80)
    nucleus = (_disc(cy - 25, cx - 15, 21) | _disc(cy + 22, cx + 15, 20)) & cell
    img = np.empty((H, W, 3))
    img[:] = (236, 228, 210)
    for ry, rx in ((cy - 118, cx), (60, 60), (300, 290), (cy + 30, cx + 112)):
        img[_disc(ry, rx, 38)] = (224, 170, 166)
    img[cell] = (222, 198, 214)
    img[nucleus] = (84, 54, 138)
    img += rng.normal(0, 2.0, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), cell, nucleus


def test_hand_drawn_cells_reach_the_target_iou():
    for seed in range(3):
        rgb, cell, nucleus = drawn_cell(seed)
        s = suggest_outlines(rgb)
        assert mask_iou(s.cell, cell) >= 0.9
        assert mask_iou(s.nucleus, nucleus) >= 0.85


def test_generated_cells_reach_the_target_mean_iou():
    synth = pytest.importorskip("core.synth")
    cells = [synth.generate_cell(2026, i) for i in range(8)]
    cell_iou = [mask_iou(suggest_outlines(c.rgb).cell, c.cell) for c in cells]
    nucleus_iou = [mask_iou(suggest_outlines(c.rgb).nucleus, c.nucleus) for c in cells]
    assert np.mean(cell_iou) >= 0.85 and min(cell_iou) >= 0.7
    assert np.mean(nucleus_iou) >= 0.85 and min(nucleus_iou) >= 0.6


def test_outlines_rasterise_back_to_the_masks():
    rgb, _, _ = drawn_cell(1)
    s = suggest_outlines(rgb)
    labels = [sh.label for sh in s.shapes]
    assert labels.count(ShapeLabel.CYTOPLASM) == 1 and labels.count(ShapeLabel.NUCLEUS) == 2
    assert mask_iou(shapes_mask(s.shapes, (H, W), "cytoplasm"), s.cell) > 0.97
    assert mask_iou(shapes_mask(s.shapes, (H, W), "nucleus"), s.nucleus) > 0.93


def test_mask_polygons_of_a_square_are_its_corners():
    m = np.zeros((20, 20), bool)
    m[5:15, 4:12] = True
    (poly,) = mask_polygons(m)
    assert mask_iou(shapes_mask([_shape(poly)], (20, 20)), m) > 0.9


def _shape(points):
    from core.annotations.schema import Shape
    return Shape("cytoplasm", tuple(points))


def test_blank_image_gives_no_outline():
    s = suggest_outlines(np.full((H, W, 3), 230, np.uint8))
    assert s.shapes == () and not s.nucleus.any()


def test_evaluate_folder_means_over_images(tmp_path):
    for k in range(2):
        rgb, cell, nucleus = drawn_cell(k)
        Image.fromarray(rgb).save(tmp_path / f"c{k}.png")
        Image.fromarray(cell.astype(np.uint8) * 255).save(tmp_path / f"c{k}_cell.png")
        Image.fromarray(nucleus.astype(np.uint8) * 255).save(tmp_path / f"c{k}_nucleus.png")
    result = evaluate_folder(tmp_path, tmp_path)
    assert result.n == 2 and [r["image"] for r in result.rows] == ["c0.png", "c1.png"]
    assert result.cell_min >= 0.9 and result.nucleus_mean >= 0.85
    (tmp_path / "empty").mkdir()
    with pytest.raises(DisplasiaError, match="no image"):
        evaluate_folder(tmp_path, tmp_path / "empty")


REAL_DIR = DATA_DIR / "real_pbc"
REAL_CELLS = sorted(REAL_DIR.glob("*.jpg")) if REAL_DIR.is_dir() else []


@pytest.mark.skipif(not REAL_CELLS, reason="bundled real cells not present")
def test_real_cells_get_one_plausible_cell_with_the_nucleus_inside():
    """Real CellaVision captures (PBC data set): no truth masks, so check what any correct
    outline must satisfy: one cell at the centre of a neutrophil's size, the nucleus
    inside it and a plausible share of it (platelets nearby are not lobes)."""
    for path in REAL_CELLS:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
        s = suggest_outlines(rgb)
        h, w = s.cell.shape
        assert s.cell[h // 2, w // 2], path.name
        assert ndi.label(s.cell)[1] == 1, path.name
        assert 0.07 <= s.cell.mean() <= 0.2, path.name
        assert s.nucleus.any() and not (s.nucleus & ~s.cell).any(), path.name
        assert 0.25 <= s.nucleus.sum() / s.cell.sum() <= 0.65, path.name
