"""Relevance mass and pointing game: known answers on hand-made maps and masks (no model)."""
from __future__ import annotations

import numpy as np
import pytest

from core.datasets import Cell
from core.summary.localisation import localisation_summary, localisation_table, pointing_hit, relevance_mass
from core.summary.maps import MethodMaps, attribution, evidence
from core.summary.study import ModelRegions, Study


def _regions(size=64):
    yy, xx = np.mgrid[0:size, 0:size]
    r = np.hypot(yy - size / 2, xx - size / 2)
    cell = r < size * 0.35
    nucleus = r < size * 0.15
    granules = cell & ~nucleus & ((yy + xx) % 5 == 0)
    return ModelRegions(cell, nucleus, cell & ~nucleus, "ground truth", granules)


def test_map_entirely_inside_nucleus_gives_nucleus_share_one():
    reg = _regions()
    values = np.where(reg.nucleus, np.random.default_rng(1).random(reg.cell.shape) + 0.1, 0.0)
    shares = relevance_mass(values, reg.parts())
    assert shares["nucleus"] == pytest.approx(1.0)
    assert shares["cytoplasm"] == pytest.approx(0.0)
    assert shares["background"] == pytest.approx(0.0)
    assert shares["granules"] == pytest.approx(0.0)


def test_negative_values_are_not_evidence():
    reg = _regions()
    values = np.where(reg.nucleus, 1.0, -5.0)  # strong negative evidence everywhere else
    assert relevance_mass(values, reg.parts())["nucleus"] == pytest.approx(1.0)


def test_uniform_random_map_gives_shares_proportional_to_areas():
    reg = _regions(128)
    values = np.random.default_rng(0).random(reg.cell.shape)
    shares = relevance_mass(values, reg.parts())
    for name, mask in reg.parts().items():
        assert shares[name] == pytest.approx(mask.mean(), abs=0.01), name
    assert shares["nucleus"] + shares["cytoplasm"] + shares["background"] == pytest.approx(1.0)


def test_map_without_positive_value_has_no_shares():
    reg = _regions()
    shares = relevance_mass(-np.ones(reg.cell.shape), reg.parts())
    assert all(np.isnan(v) for v in shares.values())


def test_pointing_game_hit_miss_and_plateaus():
    reg = _regions()
    values = np.zeros(reg.cell.shape)
    values[32, 32] = 1.0
    assert pointing_hit(values, reg.cell) == 1.0
    values[32, 32], values[0, 0] = 0.0, 1.0
    assert pointing_hit(values, reg.cell) == 0.0
    plateau = np.zeros(reg.cell.shape)
    plateau[0:4, 0:4] = 1.0          # 16 peak pixels outside
    plateau[30:36, 30:36] = 1.0      # 36 peak pixels inside: most of the peak is in the cell
    assert pointing_hit(plateau, reg.cell) == 1.0
    assert np.isnan(pointing_hit(np.zeros(reg.cell.shape), reg.cell))


def test_every_summary_map_is_signed_so_evidence_means_supports():
    """Occlusion's map already is the drop; saliency is explained in its signed form."""
    from core.explain import get_method
    from core.summary.maps import IMAGE_METHODS, summary_params

    drop = np.array([[[0.6, -0.1, 0.0]]], np.float32)
    a = attribution("occlusion", drop, np.array([0.8]))
    assert np.allclose(a, drop)
    assert np.allclose(evidence(a), [[[0.6, 0.0, 0.0]]])
    for name in IMAGE_METHODS:
        assert get_method(name).sign_for(summary_params(name)) == "supports", name
    # a magnitude map stays as it is (the table then says "magnitude")
    assert np.allclose(attribution("saliency", np.abs(drop), np.array([0.8]), {"signed": "no"}), np.abs(drop))


def _study(regions, labels, scores):
    n = len(regions)
    cells = tuple(Cell(path=None, name=f"c{i}.png", label=labels[i], label_source="csv", study_group=None)
                  for i in range(n))
    return Study(root=None, cells=cells, loaded=None, images=np.zeros((n, 64, 64, 3), np.float32), rgbs=[None] * n,
                 scores=np.asarray(scores, np.float32), annotations=(None,) * n, regions=tuple(regions),
                 truth=tuple(regions))


def test_table_and_summary_per_method_and_class():
    reg = _regions()
    inside = np.where(reg.nucleus, 1.0, 0.0).astype(np.float32)
    outside = np.where(reg.cell, 0.0, 1.0).astype(np.float32)
    study = _study([reg, reg, None], ["normal", "dysplastic", "normal"], [0.99, 0.1, 0.5])
    maps = {"nucleus_method": MethodMaps("nucleus_method", ("normal", "dysplastic", "normal"),
                                         np.stack([inside, inside, inside]), np.ones(3, np.float32)),
            "background_method": MethodMaps("background_method", ("normal", "dysplastic", "normal"),
                                            np.stack([outside, inside, outside]), np.ones(3, np.float32))}
    table = localisation_table(study, maps, source="truth")
    assert len(table) == 4  # the cell without masks is left out
    summary = localisation_summary(table).set_index(["method", "label"])
    assert summary.loc[("nucleus_method", "all"), "share_nucleus"] == pytest.approx(1.0)
    assert summary.loc[("nucleus_method", "all"), "pointing"] == pytest.approx(1.0)
    assert summary.loc[("background_method", "normal"), "share_background"] == pytest.approx(1.0)
    assert summary.loc[("background_method", "normal"), "pointing"] == pytest.approx(0.0)
    assert summary.loc[("background_method", "all"), "share_nucleus"] == pytest.approx(0.5)
    enrichment = summary.loc[("nucleus_method", "all"), "enrichment_nucleus"]
    assert enrichment == pytest.approx(1.0 / reg.nucleus.mean())


def test_ground_truth_evidence_region_follows_the_abnormal_features(tmp_path):
    from PIL import Image

    from core.summary.study import truth_regions

    reg = _regions()
    for abnormal, expected in ((("granularity",), reg.cytoplasm), (("lobes",), reg.nucleus),
                               (("granularity", "chromatin"), reg.cell), ((), reg.cell)):
        got = ModelRegions(reg.cell, reg.nucleus, reg.cytoplasm, "ground truth", reg.granules, abnormal).evidence()
        assert np.array_equal(got, expected), abnormal
    assert ModelRegions(reg.cell, reg.nucleus, reg.cytoplasm, "annotation: x").evidence() is None
    assert "evidence" not in ModelRegions(reg.cell, reg.nucleus, reg.cytoplasm, "annotation: x").parts()

    (tmp_path / "truth").mkdir()
    for part, mask in (("cell", reg.cell), ("nucleus", reg.nucleus), ("cytoplasm", reg.cytoplasm),
                       ("granules", reg.granules)):
        Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "truth" / f"TD_x_{part}.png")
    (tmp_path / "truth" / "TD_x.json").write_text('{"kind": "dysplastic", "abnormal_features": ["chromatin"]}')
    found = truth_regions(tmp_path / "TD_x.jpg", (32, 32))
    assert found.abnormal == ("chromatin",) and found.cell.shape == (32, 32)
    assert np.array_equal(found.evidence(), found.nucleus) and found.granules is not None
