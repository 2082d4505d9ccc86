"""The realism measure: segmentation by colour, the two-sample test, the command."""
from __future__ import annotations

import numpy as np
import pytest

from core.synth import generate_cell
from core.synth.realism import (
    PARTS,
    is_held_out,
    measure_cell,
    part_masks,
    two_sample_test,
    wilson_interval,
)
from tests.real_cells_support import REAL_DIR, needs_real


def _iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


@pytest.fixture(scope="module")
def cells():
    # Generator 2.0 draws every part (4.0 draws only the neutrophil into a real capture).
    return [generate_cell(31, i, "normal", version="2.0") for i in range(3)]


def test_colour_segmentation_finds_the_drawn_parts(cells):
    # The per-part distances are only as good as this segmentation; on synthetic cells
    # the drawn masks are the truth.
    nucleus_iou = []
    for c in cells:
        m = part_masks(c.rgb)
        assert _iou(m["cytoplasm"] | m["nucleus"], c.cell) > 0.8
        # Nothing of the nucleus is missed; dense dark granules next to it may join it
        # (on real and synthetic cells alike).
        assert (c.nucleus & ~m["nucleus"]).sum() < 0.03 * c.nucleus.sum()
        nucleus_iou.append(_iou(m["nucleus"], c.nucleus))
        # The soft rim of the cell may read as background or red cell, nothing more.
        assert (m["background"] & c.cell).sum() < 0.02 * c.cell.sum()
        assert (m["red_cells"] & c.cell).sum() < 0.02 * c.cell.sum()
    assert np.median(nucleus_iou) > 0.8


def test_features_are_finite_and_fixed_length(cells):
    a, b = measure_cell(cells[0].rgb), measure_cell(cells[1].rgb)
    assert a.features.shape == b.features.shape and np.isfinite(a.features).all()
    assert set(a.part_lab) == set(PARTS)
    # A real capture is 366 x 369 now and then: the same features after centre-cropping.
    padded = np.pad(cells[0].rgb, ((3, 3), (3, 3), (0, 0)), mode="edge")
    np.testing.assert_allclose(measure_cell(padded).features, a.features)


def test_two_sample_test_tells_different_from_same():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, (200, 6)), rng.normal(0, 1, (200, 6))
    same = two_sample_test(a[:150], b[:150], a[150:], b[150:])
    assert same.ci[0] < 0.5 < same.ci[1] + 0.05
    shifted = b + np.array([1.5, 0, 0, 0, 0, 0])
    diff = two_sample_test(a[:150], shifted[:150], a[150:], shifted[150:])
    assert diff.accuracy > 0.75 and diff.ci[0] > 0.6
    assert diff.n_test_real == diff.n_test_synthetic == 50


def test_wilson_interval_contains_the_estimate_and_narrows():
    lo, hi = wilson_interval(80, 100)
    assert lo < 0.8 < hi
    lo2, hi2 = wilson_interval(800, 1000)
    assert hi2 - lo2 < hi - lo
    assert wilson_interval(100, 100)[1] == pytest.approx(1.0)


def test_hold_out_is_every_fourth_cell():
    held = [i for i in range(200) if is_held_out(i)]
    assert len(held) == 50 and held[:3] == [3, 7, 11]


def test_realism_command_runs_and_reports(tmp_path, capsys):
    from core.cli import main
    from core.synth.store import write_cell

    # "Real" cells from another seed: the command runs end to end on any folder.
    real = tmp_path / "real"
    for i in range(8):
        write_cell(generate_cell(41, i, "normal"), real, f"SNE_{i:07d}")
    sheet = tmp_path / "sheet.png"
    assert main(["synth", "realism", str(real), "--n", "8", "--sheet", str(sheet)]) == 0
    out = capsys.readouterr().out
    assert "held-out accuracy" in out and "nucleus" in out and "red_cells" in out
    assert sheet.stat().st_size > 1000


@needs_real
@pytest.mark.parametrize("version", ["3.1", "3.2", "3.3"])
def test_generator_3_part_colours_match_real_tuning_cells(version):
    # Small sample (30 tuning cells spread over the set, 16 synthetic): every part's mean
    # colour within a few Delta E of the real one; generator 1.0 was 5-10 off for three
    # parts. (The first 12 tuning cells alone have a cytoplasm 3.5 Delta E off the mean
    # of all 150.)
    from core.synth.realism import image_paths, load_capture, part_distances

    paths = [p for i, p in enumerate(image_paths(REAL_DIR)) if not is_held_out(i)][::5]
    real = [measure_cell(load_capture(p)) for p in paths]
    synth = [measure_cell(generate_cell(4242, i, "normal", version=version).rgb) for i in range(16)]
    for d in part_distances(real, synth):
        assert d.delta_e < 3.5, d


@pytest.mark.parametrize("version", ["3.1", "3.2", "3.3"])
def test_realism_command_measures_another_generator_version(tmp_path, capsys, version):
    from core.cli import main
    from core.synth.store import read_truth, write_cell

    real = tmp_path / "real"
    for i in range(8):
        write_cell(generate_cell(41, i, "normal", version="3.0"), real, f"SNE_{i:07d}")
    assert read_truth(real, "SNE_0000000")["generator_version"] == "3.0"
    assert main(["synth", "realism", str(real), "--n", "8", "--generator", version]) == 0
    assert f"generator {version}" in capsys.readouterr().out


@pytest.mark.parametrize("family", ["pixels", "random-conv"])
def test_realism_report_with_other_feature_families(family):
    from core.synth.realism import realism_report

    # Two sources that differ only in colour (a blue cast on one): every family must see it.
    base = [generate_cell(43, i, "normal").rgb for i in range(16)]
    cast = [np.clip(x.astype(int) + (0, 0, 40), 0, 255).astype(np.uint8) for x in base]
    report = realism_report(base[:8] + base[8:], cast[8:] + cast[:8], features=family)
    assert report.features == family and report.two_sample.accuracy >= 0.9
    assert any(("pixel blocks" if family == "pixels" else "random convolution") in line for line in report.lines())


def test_random_conv_features_are_fixed_and_shaped():
    from core.synth.realism import pixel_features, random_conv_features

    x = generate_cell(44, 0, "normal").rgb
    assert random_conv_features(x).shape == (96,) and pixel_features(x).shape == (24 * 24 * 3,)
    assert np.array_equal(random_conv_features(x), random_conv_features(x.copy()))


def test_realism_report_rejects_an_unknown_feature_family():
    from core.errors import DisplasiaError
    from core.synth.realism import realism_report

    with pytest.raises(DisplasiaError, match="unknown feature family"):
        realism_report([], [], features="wavelets")


def test_realism_command_rejects_a_missing_folder(tmp_path, capsys):
    from core.cli import main

    assert main(["synth", "realism", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.startswith("error:")


def test_synth_without_out_is_a_user_error(capsys):
    from core.cli import main

    assert main(["synth", "--n", "2"]) == 2
    assert "--out" in capsys.readouterr().err


@needs_real
def test_real_cells_split_and_segment():
    from core.synth.realism import image_paths, load_capture

    paths = image_paths(REAL_DIR)
    assert sum(is_held_out(i) for i in range(len(paths))) >= 50
    rgb = load_capture(paths[1])
    assert rgb.shape == (363, 360, 3)
    m = part_masks(rgb)
    # A real neutrophil: a nucleus inside a cell that covers a sensible share of the image.
    cell = m["cytoplasm"] | m["nucleus"]
    assert 0.05 < cell.mean() < 0.25 and m["nucleus"].sum() > 0.2 * cell.sum()


def test_capture_fit_writes_derived_statistics_only(tmp_path, monkeypatch):
    import json

    from core.synth import capture_fit, render
    from core.synth.store import write_cell

    real = tmp_path / "real"
    for i in range(8):
        write_cell(generate_cell(45, i, "normal"), real, f"SNE_{i:07d}")
    monkeypatch.setattr(render, "_STATS_DIR", tmp_path)
    render.capture_statistics.cache_clear()
    try:
        stats = capture_fit.fit(real, n=4, rounds=1, log=lambda *a: None)
        written = json.loads((tmp_path / "capture_stats.json").read_text())
    finally:
        render.capture_statistics.cache_clear()
    # Six of the eight cells are tuning cells; 24 numbers per vector, 24 x 24 roots.
    assert "6 TUNING" in written["note"] and written["bias"] == stats["bias"]
    assert len(written["real_mean"]) == 24 and np.asarray(written["real_chol"]).shape == (24, 24)
    assert any(b != 0.0 for b in written["bias"])


def test_capture_fit_refuses_a_version_without_part_statistics(tmp_path, capsys):
    from core.synth import capture_fit

    assert capture_fit.main([str(tmp_path), "--version", "2.0"]) == 2
    assert "draws no part statistics" in capsys.readouterr().err


def test_grouped_cv_cannot_tell_copies_and_tells_a_shift():
    """Cells drawn into reused captures: copies of the captures are chance, a real difference is not."""
    from core.synth.realism import grouped_cv_accuracy

    rng = np.random.default_rng(0)
    real = rng.standard_normal((60, 12))
    names = [f"cell{i}" for i in range(60)]
    # two synthetic copies of each of 30 captures, each a near-exact copy of its real cell
    captures = [names[i % 30] for i in range(60)]
    copies = np.array([real[i % 30] for i in range(60)]) + 1e-3 * rng.standard_normal((60, 12))
    grouped = grouped_cv_accuracy(real, copies, names, captures, classifier="boosting")
    assert grouped < 0.65
    # the same copies with one feature shifted by three standard deviations are told apart (Bayes: 0.93)
    shifted = copies.copy()
    shifted[:, 3] += 3.0
    assert grouped_cv_accuracy(real, shifted, names, captures) > 0.8


def test_realism_report_adds_the_grouped_cv_for_canvas_cells():
    from core.errors import DisplasiaError
    from core.synth.realism import grouped_cv_accuracy, realism_report

    cells = [generate_cell(45, i, "normal") for i in range(16)]
    real = [c.rgb for c in cells[:8]]
    report = realism_report(real + real, [c.rgb for c in cells[8:]] * 2, real_names=[f"r{i}" for i in range(16)],
                            synth_captures=[c.canvas["canvas"] for c in cells[8:]] * 2)
    assert report.grouped_cv_accuracy is not None and 0.0 <= report.grouped_cv_accuracy <= 1.0
    assert any("grouped by capture" in line for line in report.lines())
    assert realism_report(real + real, [c.rgb for c in cells[8:]] * 2).grouped_cv_accuracy is None
    with pytest.raises(DisplasiaError, match="one group"):
        grouped_cv_accuracy(np.zeros((4, 2)), np.zeros((4, 2)), ["a"] * 4, ["b"] * 3)
