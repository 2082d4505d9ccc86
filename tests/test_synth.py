"""The synthetic neutrophil generator: determinism, ground truth, class features."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage as ndi

from core.synth import (
    HYPOGRANULAR_DENSITY,
    IMAGE_SHAPE,
    cell_features,
    generate_cell,
    render_cell,
    sample_features,
)
from core.synth.demo import mask_polygons, rate_cell
from core.synth.store import read_masks, read_truth


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


@pytest.fixture(scope="module")
def cells():
    """Six cells of each class from one seed."""
    return [generate_cell(11, i, kind) for i in range(6) for kind in ("normal", "dysplastic")]


def test_same_seed_same_bytes():
    a, b = generate_cell(3, 5), generate_cell(3, 5)
    assert _sha(a.jpeg) == _sha(b.jpeg)
    assert np.array_equal(a.nucleus, b.nucleus) and np.array_equal(a.granules, b.granules)


def test_other_seed_or_index_other_image():
    base = _sha(generate_cell(3, 5).jpeg)
    assert _sha(generate_cell(4, 5).jpeg) != base
    assert _sha(generate_cell(3, 6).jpeg) != base


def test_generator_3_is_deterministic_and_keeps_the_ground_truth():
    # Generator 3.0 changes stain and capture only: same features, same masks, other pixels.
    old, new, again = generate_cell(3, 5, version="2.0"), generate_cell(3, 5, version="3.0"), generate_cell(3, 5, version="3.0")
    assert _sha(new.jpeg) == _sha(again.jpeg) != _sha(old.jpeg)
    assert (old.version, new.version) == ("2.0", "3.0")
    for name in ("cell", "nucleus", "cytoplasm", "granules"):
        assert np.array_equal(getattr(old, name), getattr(new, name)), name
    assert np.abs(old.rgb.astype(int) - new.rgb.astype(int)).mean() > 1.0


def test_generator_2_bytes_do_not_drift():
    # Generator 2.0 drew the demo model and demo set until generator 4.0 replaced it; its
    # bytes must not drift. This hash was taken from generator 2.0 before 3.0 was added.
    assert hashlib.sha1(generate_cell(3, 5, version="2.0").jpeg).hexdigest().startswith("5b208417b0")


def test_generator_4_is_the_default():
    assert generate_cell(3, 5).jpeg == generate_cell(3, 5, version="4.0").jpeg
    assert generate_cell(3, 5).version == "4.0"


def test_generator_3_0_bytes_do_not_drift():
    # Generator 3.1 was added next to 3.0 without touching it: hash taken before 3.1.
    assert hashlib.sha1(generate_cell(3, 5, version="3.0").jpeg).hexdigest().startswith("5d9b873763")


def test_generator_3_1_is_deterministic_and_keeps_the_geometry():
    # 3.1 draws its extra texture and noise from a stream of its own: same masks, granule
    # count and latent features as 2.0 and 3.0 for the same seed; other pixels.
    old, new, again = generate_cell(3, 5, version="2.0"), generate_cell(3, 5, version="3.1"), generate_cell(3, 5, version="3.1")
    assert _sha(new.jpeg) == _sha(again.jpeg) != _sha(generate_cell(3, 5, version="3.0").jpeg)
    assert new.version == "3.1" and new.truth() == old.truth()
    for name in ("cell", "nucleus", "cytoplasm", "granules"):
        assert np.array_equal(getattr(old, name), getattr(new, name)), name
    dys = generate_cell(3, 6, "dysplastic", version="3.1")
    assert np.array_equal(dys.nucleus, generate_cell(3, 6, "dysplastic", version="2.0").nucleus)


def test_generator_3_1_bytes_do_not_drift():
    # Generator 3.2 was added next to 3.1 without touching it: hash taken before 3.2.
    assert hashlib.sha1(generate_cell(3, 5, version="3.1").jpeg).hexdigest().startswith("9d52059e3e")


@pytest.mark.parametrize("seed,index,kind", [(3, 5, "normal"), (3, 6, "dysplastic"), (11, 2, "normal"),
                                             (7, 1, "dysplastic"), (21, 4, "normal")])
def test_generator_3_2_is_deterministic_and_keeps_the_outline_and_nucleus(seed, index, kind):
    # 3.2 draws its red cells (larger, fewer) from a stream of their own and the main
    # stream skips exactly 2.0's red-cell draws: the same cell outline and the same nucleus
    # as 2.0, only with lobes 10 % wider (so it covers 2.0's nucleus), in both classes.
    old = generate_cell(seed, index, kind, version="2.0")
    new, again = generate_cell(seed, index, kind, version="3.2"), generate_cell(seed, index, kind, version="3.2")
    assert _sha(new.jpeg) == _sha(again.jpeg) != _sha(generate_cell(seed, index, kind, version="3.1").jpeg)
    assert new.version == "3.2" and new.features == old.features and new.centre == old.centre
    assert np.array_equal(new.cell, old.cell)
    assert not (old.nucleus & ~new.nucleus).any()
    assert 1.05 < new.nucleus.sum() / old.nucleus.sum() < 1.3
    assert np.array_equal(new.cytoplasm, new.cell & ~new.nucleus)


def test_generator_3_2_red_cells_have_a_pale_centre():
    # Real red cells (tuning cells): L* about 11 higher in the centre than at 0.7 of the
    # radius; 3.1's soft, narrow pallor gave about 3. Drawn with 3.2's pallor shape.
    from core.synth.render import CAPTURE_MODELS, _draw_red_cell

    for version, ratio in (("3.1", 0.45), ("3.2", 0.45)):
        cm = CAPTURE_MODELS[version]
        field = np.zeros((120, 120), np.float32)
        _draw_red_cell(field, np.random.default_rng(0), 60, 60, 36, 0.7, 2.0, cm.red_cell_rim, (1.0, 1.0),
                       cm.red_cell_pallor_soft, cm.red_cell_ramp, (0.0, 1.0), None, cm.red_cell_pallor_width)
        centre, ring = field[60, 60], field[60, 60 + 25]
        assert (centre < ratio * ring) == (version == "3.2"), (version, centre, ring)


def test_generator_3_2_darkest_chromatin_stays_above_the_floor():
    # Real nuclei: the 2nd percentile of L* is 18-20 in most captures, whatever the
    # stain; 3.1 reached L* 14 in its darkest captures.
    from skimage.color import rgb2lab

    def darkest(version):
        out = []
        for i in range(6):
            c = generate_cell(23, i, "normal", version=version)
            out.append(np.percentile(rgb2lab(c.rgb)[..., 0][c.nucleus], 2))
        return min(out)

    assert darkest("3.2") > 15.5 and darkest("3.2") > darkest("3.1")


def test_unknown_generator_version_is_a_user_error():
    from core.errors import DisplasiaError

    with pytest.raises(DisplasiaError, match="unknown generator version"):
        generate_cell(3, 5, version="9.9")


def test_generator_3_decorrelates_nucleus_texture_from_blue():
    # Real nuclei: fine-scale residuals of red and blue correlate about 0.3; a single
    # stain along one optical-density direction gives about 0.8 (generator 2.0).
    from scipy import ndimage as ndi

    def red_blue_correlation(cell):
        x = cell.rgb.astype(np.float64)
        res = x - ndi.gaussian_filter(x, (1.5, 1.5, 0))
        m = ndi.binary_erosion(cell.nucleus, iterations=3)
        return np.corrcoef(res[m][:, 0], res[m][:, 2])[0, 1]

    old = np.mean([red_blue_correlation(generate_cell(21, i, "normal", version="2.0")) for i in range(3)])
    new = np.mean([red_blue_correlation(generate_cell(21, i, "normal", version="3.0")) for i in range(3)])
    assert old > 0.7 and new < old - 0.1


@pytest.mark.parametrize("version", ["3.0", "3.1", "3.2", "3.3"])
def test_generator_3_dysplastic_cells_keep_their_features(version):
    # The same capture pipeline for both classes: hypogranular cytoplasm stays paler and
    # clumped chromatin keeps its lighter patches.
    normal = generate_cell(5, 0, "normal", version=version)
    f = dataclasses.replace(normal.features, kind="dysplastic", granule_density=0.02,
                            abnormal_features=("granularity",))
    agranular = render_cell(f, version=version)
    light = lambda c: c.rgb[c.cytoplasm].mean()  # noqa: E731
    assert light(agranular) > light(normal) + 3
    f = dataclasses.replace(normal.features, kind="dysplastic", chromatin_heterogeneity=0.9,
                            abnormal_features=("chromatin",))
    clumped = render_cell(f, version=version)
    assert clumped.rgb[clumped.nucleus].mean() > normal.rgb[normal.nucleus].mean() + 3


def test_cell_does_not_depend_on_set_size():
    # Cell i of a seed is a function of (seed, i) only.
    assert cell_features(9, 3) == cell_features(9, 3)
    assert cell_features(9, 3, "normal").kind == "normal"


def test_image_is_cellavision_sized_jpeg(cells):
    cell = cells[0]
    assert cell.jpeg[:2] == b"\xff\xd8"
    with Image.open(__import__("io").BytesIO(cell.jpeg)) as im:
        assert im.size == (360, 363) and im.mode == "RGB"
    assert cell.rgb.shape == IMAGE_SHAPE + (3,) and cell.rgb.dtype == np.uint8


def test_masks_are_consistent(cells):
    for c in cells:
        assert not (c.nucleus & ~c.cell).any(), "nucleus leaks outside the cell"
        assert np.array_equal(c.cytoplasm, c.cell & ~c.nucleus)
        assert not (c.granules & ~c.cytoplasm).any(), "granules outside the cytoplasm"
        assert c.nucleus.sum() > 0.12 * c.cell.sum()


def test_neutrophil_is_central_and_sized_like_real_captures(cells):
    # Real DM96 neutrophils (PBC set) cover about 12-13 % of the 360 x 363 image.
    fractions = [c.cell.mean() for c in cells]
    assert 0.07 < min(fractions) and max(fractions) < 0.19
    assert 0.10 < np.mean(fractions) < 0.15
    for c in cells:
        ys, xs = np.nonzero(c.cell)
        assert abs(ys.mean() - IMAGE_SHAPE[0] / 2) < 25 and abs(xs.mean() - IMAGE_SHAPE[1] / 2) < 25


def test_nucleus_pixels_darker_and_bluer_than_cytoplasm(cells):
    for c in cells:
        rgb = c.rgb.astype(np.float64)
        nuc, cyto = rgb[c.nucleus], rgb[c.cytoplasm]
        assert nuc.mean() < cyto.mean() - 40
        blue_share = lambda px: (px[:, 2] / px.sum(1)).mean()  # noqa: E731
        assert blue_share(nuc) > blue_share(cyto)


def test_background_is_cream_and_cytoplasm_lilac(cells):
    c = cells[0]
    outside = c.rgb[~c.cell].astype(np.float64)
    bright = outside[outside.sum(1) > np.percentile(outside.sum(1), 80)].mean(0)
    assert bright[0] > bright[2] and bright[1] > bright[2] and bright.min() > 190  # cream: R, G > B
    cyto = np.median(c.rgb[c.cytoplasm].astype(np.float64), axis=0)
    assert cyto[2] > cyto[1]  # lilac: blue above green


def test_granule_count_tracks_density():
    base = cell_features(21, 0, "normal")
    counts, areas, texture = [], [], []
    for density in (0.0, 0.15, 0.5, 1.0):
        c = render_cell(dataclasses.replace(base, granule_density=density))
        counts.append(c.granule_count)
        areas.append(c.granules.sum())
        green = c.rgb[..., 1].astype(np.float64)
        # Fine texture inside the cytoplasm (away from its edges, whose ramps are not granules).
        inner = ndi.binary_erosion(c.cytoplasm, iterations=3)
        texture.append((green - ndi.gaussian_filter(green, 2.0))[inner].std())
    assert counts[0] == 0 and areas[0] == 0
    assert counts == sorted(counts) and len(set(counts)) == 4
    assert areas == sorted(areas)
    assert texture[-1] > texture[0] * 1.5  # granules are visible, not only in the mask
    # Hypogranular (<= 1/3 density) means at least two thirds of the granules are missing.
    assert counts[1] < counts[3] / 3 * 1.2


def test_drumstick_adds_nuclear_material_only():
    base = cell_features(5, 2, "normal")
    plain = render_cell(dataclasses.replace(base, drumstick=False))
    stick = render_cell(dataclasses.replace(base, drumstick=True))
    assert stick.nucleus.sum() > plain.nucleus.sum()
    assert np.array_equal(stick.cell, plain.cell)
    assert stick.features.kind == "normal"


@pytest.mark.parametrize("version,factor", [("2.0", 1.5), ("4.0", 1.35)])
def test_chromatin_heterogeneity_shows_in_the_nucleus(version, factor):
    # 4.0's tone curve saturates the darkest chromatin as real captures do, which narrows
    # the spread of both (1.47x on this cell; 2.0: over 1.5x).
    base = cell_features(8, 0, "normal")
    spread = []
    for h in (0.0, 1.0):
        c = render_cell(dataclasses.replace(base, chromatin_heterogeneity=h), version=version)
        inner = c.nucleus & ~np.logical_xor(c.nucleus, np.roll(c.nucleus, 3, 0))
        spread.append(c.rgb[..., 0][inner].astype(np.float64).std())
    assert spread[1] > factor * spread[0]


@pytest.mark.parametrize("shape,lobes", [("dumbbell", 2), ("round", 1), ("ring", 1), ("hypersegmented", 7)])
def test_abnormal_nucleus_shapes_render(shape, lobes):
    f = dataclasses.replace(cell_features(2, 1, "dysplastic"), nucleus_shape=shape, lobe_count=lobes)
    c = render_cell(f)
    assert c.nucleus.sum() > 800
    assert f.lobe_state in ("hyposegmented", "hypersegmented")


def test_band_nucleus_is_a_normal_maturation_stage():
    f = dataclasses.replace(cell_features(2, 0, "normal"), nucleus_shape="band", lobe_count=1)
    assert f.lobe_state == "normal" and f.is_band
    c = render_cell(f)
    assert c.nucleus.sum() > 0.25 * c.cell.sum()
    rng = np.random.default_rng(3)
    normal = [sample_features(rng, "normal") for _ in range(400)]
    dysplastic = [sample_features(rng, "dysplastic") for _ in range(400)]
    # About half of real normal blood neutrophils in the calibration set are bands.
    assert 0.3 < np.mean([f.nucleus_shape == "band" for f in normal]) < 0.6
    assert not any(f.nucleus_shape == "band" and "lobes" in f.abnormal_features for f in dysplastic)


def test_jpeg_is_written_like_cellavision():
    from PIL import JpegImagePlugin

    with Image.open(__import__("io").BytesIO(generate_cell(1, 0).jpeg)) as im:
        assert JpegImagePlugin.get_sampling(im) == 0  # 4:4:4, no chroma subsampling
        assert 70 <= _estimated_quality(im) <= 80


def _estimated_quality(im) -> int:
    """The libjpeg quality whose luminance table matches ``im``'s (nearest)."""
    import io

    target = np.array(im.quantization[0])
    best = None
    for q in range(50, 100):
        buf = io.BytesIO()
        Image.new("RGB", (8, 8)).save(buf, "JPEG", quality=q)
        diff = np.abs(np.array(Image.open(buf).quantization[0]) - target).sum()
        best = (diff, q) if best is None or diff < best[0] else best
    return best[1]


def test_red_cells_are_opaque_where_they_overlap():
    from core.synth.render import _draw_red_cell

    one, two, both = (np.zeros((120, 160), np.float32) for _ in range(3))
    _draw_red_cell(one, np.random.default_rng(0), 60, 60, 34, 0.6, 2.5)
    _draw_red_cell(two, np.random.default_rng(1), 60, 100, 34, 0.6, 2.5)
    _draw_red_cell(both, np.random.default_rng(0), 60, 60, 34, 0.6, 2.5)
    _draw_red_cell(both, np.random.default_rng(1), 60, 100, 34, 0.6, 2.5)
    assert ((one > 0.3) & (two > 0.3)).any()  # they do overlap
    # The denser of the two, never their sum: no darker lens where discs overlap.
    np.testing.assert_array_equal(both, np.maximum(one, two))
    # A pale centre: the middle of a disc is lighter than its rim.
    assert one[60, 60] < 0.7 * one[60, 60 + 26]


def test_class_features_separate_as_the_domain_says():
    rng = np.random.default_rng(0)
    normal = [sample_features(rng, "normal") for _ in range(600)]
    dysplastic = [sample_features(rng, "dysplastic") for _ in range(600)]
    # Normal: granular, 3-5 lobes (rarely two visible), homogeneous chromatin.
    assert min(f.granule_density for f in normal) >= 0.5
    assert np.mean([f.granule_density >= 0.75 for f in normal]) > 0.85
    assert np.mean([f.lobe_state == "normal" for f in normal]) > 0.9
    assert max(f.chromatin_heterogeneity for f in normal) <= 0.5
    # Dysplastic: each carries at least one abnormal feature, as drawn.
    for f in dysplastic:
        assert f.abnormal_features
        if "granularity" in f.abnormal_features:
            assert f.granule_density <= HYPOGRANULAR_DENSITY
        if "chromatin" in f.abnormal_features:
            assert f.chromatin_heterogeneity >= 0.6
        if "lobes" in f.abnormal_features:
            assert f.lobe_state != "normal"
        else:
            assert f.lobe_state == "normal"
    assert np.mean([f.granule_density <= HYPOGRANULAR_DENSITY for f in dysplastic]) > 0.7
    # Overlap on purpose: some hard cells on both sides.
    single = np.mean([len(f.abnormal_features) == 1 for f in dysplastic])
    assert 0.05 < single < 0.35
    assert any(f.granule_density < 0.7 for f in normal)
    # Confounders appear in both classes.
    assert any(f.drumstick for f in normal) and any(f.drumstick for f in dysplastic)
    assert any(f.dohle_bodies for f in normal) and any(f.dohle_bodies for f in dysplastic)


def test_classes_differ_in_pixels(cells):
    share = {"normal": [], "dysplastic": []}
    for c in cells:
        share[c.features.kind].append(c.granules.sum() / c.cytoplasm.sum())
    assert min(share["normal"]) > max(share["dysplastic"]) or \
        np.mean(share["normal"]) > 3 * np.mean(share["dysplastic"])


def test_rater_mostly_agrees_but_not_always():
    rng = np.random.default_rng(1)
    agree = []
    for kind in ("normal", "dysplastic") * 200:
        f = sample_features(rng, kind)
        reading = rate_cell(f, rng)
        s_g = reading["cytoplasm"]["degree"] * (1 if reading["cytoplasm"]["state"] == "transparent" else -1)
        s_c = reading["chromatin"]["degree"] * (1 if reading["chromatin"]["state"] == "heterogenic" else -1)
        s_l = 0 if reading["lobes"]["state"] == "normal" else 1
        assert reading["total"] == s_g + s_c + s_l and -6 <= reading["total"] <= 7
        assert reading["condition"] == ("dysplastic" if reading["total"] >= 1 else "normal")
        agree.append(reading["condition"] == kind)
    assert 0.8 < np.mean(agree) < 1.0


def test_mask_polygons_follow_the_mask():
    mask = np.zeros((60, 80), bool)
    mask[10:40, 20:70] = True
    mask[50:55, 5:10] = True
    polys = mask_polygons(mask)
    assert len(polys) == 2
    areas = []
    for p in polys:
        x, y = np.array(p).T
        areas.append(0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))
    assert sorted(areas)[-1] == pytest.approx(30 * 50, rel=0.08)
    xs = np.array(polys[0])[:, 0]
    assert xs.min() >= 19 and xs.max() <= 70  # x is the column: original pixel coordinates


def test_synth_command_writes_images_and_truth(tmp_path):
    from core.cli import main

    out = tmp_path / "cells"
    assert main(["synth", "--out", str(out), "--n", "3", "--seed", "4", "--kind", "dysplastic"]) == 0
    images = sorted(out.glob("*.jpg"))
    assert len(images) == 3 and all(p.name.startswith("ZD_") for p in images)
    stem = images[0].stem
    truth = read_truth(out, stem)
    assert truth["kind"] == "dysplastic" and truth["label"] == 0 and truth["generator_version"]
    masks = read_masks(out, stem)
    again = generate_cell(4, truth["set_index"], "dysplastic")
    assert images[0].read_bytes() == again.jpeg
    assert np.array_equal(masks["nucleus"], again.nucleus)
    assert np.array_equal(masks["granules"], again.granules)
    json.loads((out / "truth" / f"{stem}.json").read_text())


def test_synth_command_rejects_bad_arguments(tmp_path, capsys):
    from core.cli import main

    assert main(["synth", "--out", str(tmp_path), "--n", "0"]) == 2
    assert capsys.readouterr().err.startswith("error:")


def test_generator_imports_neither_tensorflow_nor_streamlit():
    code = "import sys, core.synth, core.synth.cli; print('tensorflow' in sys.modules, 'streamlit' in sys.modules)"
    from core.config import REPO_ROOT

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    assert out.stdout.split() == ["False", "False"]
