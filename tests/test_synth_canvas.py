"""Generator 4.0: a drawn neutrophil inside a real capture.

What must hold: the capture outside the neutrophil is the canvas' own; the real nucleus is
covered; the drawn cell takes the canvas' stain yet keeps the class differences (a
hypogranular or clumped twin stays paler); the canvases come from tuning cells only and
are read from the repository; the same features give the same bytes.
"""
from __future__ import annotations

import builtins
import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from core.errors import DisplasiaError
from core.synth import cell_features, generate_cell, render_cell
from core.synth.canvas import (
    CANVAS_DIR,
    MANIFEST,
    build_canvases,
    canvas_count,
    canvas_defect,
    canvas_entries,
    canvas_names,
    load_canvas,
    neutrophil_masks,
    part_densities,
    pick_canvas,
    stain_statistics,
    wants_touching,
)
from core.synth.realism import image_paths, is_held_out
from tests.real_cells_support import REAL_DIR, needs_real

REPO = Path(__file__).resolve().parents[1]


def _canvas_of(cell):
    return load_canvas(*pick_canvas(cell.features.seed, wants_touching(cell.features.rbc_overlap)))


@pytest.fixture(scope="module")
def pairs():
    """Normal cells of generator 4.0 with their canvases (four cells, two seeds)."""
    cells = [generate_cell(seed, i, "normal", version="4.0") for seed in (41, 42) for i in range(2)]
    return [(c, _canvas_of(c)) for c in cells]


def _lab(rgb):
    from skimage.color import rgb2lab

    return rgb2lab(rgb)


# --------------------------------------------------------------------------- what is kept, what is drawn

def test_the_capture_outside_the_neutrophil_is_the_canvas_own(pairs):
    for cell, canvas in pairs:
        outside = ~ndi.binary_dilation(canvas.cell, iterations=4)
        diff = np.abs(cell.rgb.astype(int) - canvas.rgb.astype(int))[outside]
        # Re-encoded at the capture's own quality on the same block grid: JPEG rounding only.
        assert np.median(diff) <= 1 and np.percentile(diff, 99) <= 6, canvas.name
        assert cell.cell.sum() == canvas.cell.sum() and (cell.cell == canvas.cell).all()


def test_the_real_nucleus_is_painted_over(pairs):
    for cell, canvas in pairs:
        L_real = _lab(canvas.rgb)[..., 0]
        L_cell = _lab(cell.rgb)[..., 0]
        uncovered = ndi.binary_erosion(canvas.nucleus, iterations=2) & ~ndi.binary_dilation(cell.nucleus, iterations=4)
        assert uncovered.sum() > 200, canvas.name   # the two nuclei differ somewhere
        # Where the real chromatin was and no drawn nucleus is, the pixels are cytoplasm-pale now.
        assert np.median(L_real[uncovered]) < 45
        assert np.median(L_cell[uncovered]) > 60, canvas.name


def test_drawn_nucleus_stays_inside_the_real_outline(pairs):
    for cell, _ in pairs:
        depth = ndi.distance_transform_edt(cell.cell)
        assert cell.nucleus.any()
        assert depth[cell.nucleus].min() >= 3.0
        assert not (cell.cytoplasm & cell.nucleus).any()
        assert (cell.cytoplasm | cell.nucleus == cell.cell).all()


def test_drawn_cell_takes_its_canvas_stain(pairs):
    # The stain fit makes a drawn normal cytoplasm and nucleus as dense as the canvas' real ones.
    ratios = []
    for cell, canvas in pairs:
        cyto, nucleus, _ = part_densities(cell.rgb)
        ratios.append(np.r_[cyto / canvas.cytoplasm_od, nucleus / canvas.nucleus_od])
    ratio = np.median(ratios, axis=0)
    assert np.all(np.abs(ratio[1:2] - 1.0) < 0.2), ratio      # cytoplasm, green (its strongest channel)
    assert np.all(np.abs(ratio[3:5] - 1.0) < 0.15), ratio     # nucleus, red and green


@pytest.mark.parametrize("change", ["granularity", "chromatin"])
def test_a_dysplastic_twin_stays_paler_on_the_same_canvas(change):
    f = cell_features(43, 0, "normal")
    if change == "granularity":
        twin = dataclasses.replace(f, kind="dysplastic", granule_density=0.05, abnormal_features=("granularity",))
    else:
        twin = dataclasses.replace(f, kind="dysplastic", chromatin_heterogeneity=0.95, abnormal_features=("chromatin",))
    a, b = render_cell(f, version="4.0"), render_cell(twin, version="4.0")
    assert (a.cell == b.cell).all()                      # same canvas, same outline
    L_a, L_b = _lab(a.rgb)[..., 0], _lab(b.rgb)[..., 0]
    if change == "granularity":
        inner = ndi.binary_erosion(a.cytoplasm & b.cytoplasm, iterations=4)
        assert L_b[inner].mean() > L_a[inner].mean() + 2.0
        # and the granulation is gone: less fine texture
        band = lambda L: (L - ndi.gaussian_filter(L, 1.5))[inner].std()  # noqa: E731
        assert band(L_b) < 0.7 * band(L_a)
    else:
        inner = ndi.binary_erosion(a.nucleus & b.nucleus, iterations=2)
        assert L_b[inner].mean() > L_a[inner].mean() + 2.0


def test_generator_4_is_deterministic_and_keeps_the_features():
    f = cell_features(44, 3, "dysplastic")
    a, b = render_cell(f, version="4.0"), render_cell(f, version="4.0")
    assert a.jpeg == b.jpeg and a.version == "4.0"
    # The cell's radius is its canvas' outline's; the latent class features are untouched.
    assert a.features.granule_density == f.granule_density and a.features.nucleus_shape == f.nucleus_shape
    assert abs(a.features.cell_radius - np.sqrt(a.cell.sum() / np.pi)) < 0.01
    # Rendering the recorded features again gives the same bytes (what a truth file holds is enough).
    assert render_cell(a.features, version="4.0").jpeg == a.jpeg


def test_generators_before_4_do_not_change():
    digest = hashlib.sha256(generate_cell(7, 0, "normal", version="3.3").jpeg).hexdigest()[:8]
    assert digest == hashlib.sha256(generate_cell(7, 0, "normal", version="3.3").jpeg).hexdigest()[:8]
    assert hashlib.sha1(generate_cell(7, 0, "normal", version="2.0").jpeg).hexdigest()[:8] == "77ebc5bf"
    assert hashlib.sha1(generate_cell(7, 0, "normal", version="3.3").jpeg).hexdigest()[:8] == "e520d33f"


# --------------------------------------------------------------------------- the canvases

def test_committed_canvases_match_their_manifest_and_are_attributed():
    manifest = json.loads((CANVAS_DIR / MANIFEST).read_text(encoding="utf-8"))
    files = sorted(p.name for p in CANVAS_DIR.glob("*.jpg"))
    assert files == sorted(e["file"] for e in manifest["canvases"]) and len(files) == canvas_count() >= 100
    for e in manifest["canvases"]:
        assert hashlib.sha256((CANVAS_DIR / e["file"]).read_bytes()).hexdigest() == e["sha256"]
    notice = (CANVAS_DIR / "NOTICE.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in notice and "Acevedo" in notice and "10.17632/snkd93bnjr.1" in notice
    assert sum(p.stat().st_size for p in CANVAS_DIR.glob("*.jpg")) < 4_000_000


@needs_real
def test_committed_canvases_are_tuning_cells_only():
    names = [p.name for p in image_paths(REAL_DIR)]
    held = {n for i, n in enumerate(names) if is_held_out(i)}
    assert held and not held & set(canvas_names())
    for name in canvas_names():
        assert (CANVAS_DIR / name).read_bytes() == (REAL_DIR / name).read_bytes()


def test_generator_4_reads_its_canvases_from_the_repository_only(monkeypatch):
    opened = []
    real_open = builtins.open

    def spy(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    load_canvas.cache_clear()
    monkeypatch.setattr(builtins, "open", spy)
    render_cell(cell_features(45, 0, "normal"), version="4.0")
    assert not [p for p in opened if "shared" in Path(p).parts]


def test_build_canvases_skips_held_out_cells_and_bad_outlines(tmp_path, monkeypatch):
    from PIL import Image

    from core.synth import realism

    real = tmp_path / "real"
    real.mkdir()
    for i in range(8):
        Image.fromarray(generate_cell(46, i, "normal", version="2.0").rgb).save(real / f"SNE_{i:03d}.jpg", quality=75)
    Image.fromarray(np.full((369, 366, 3), 230, np.uint8)).save(real / "SNE_008.jpg")   # wrong size, tuning
    read = []
    original = realism.load_capture
    monkeypatch.setattr(realism, "load_capture", lambda p: read.append(Path(p).name) or original(p))
    manifest = build_canvases(real, tmp_path / "out", log=lambda *a: None)
    assert "SNE_003.jpg" not in read and "SNE_007.jpg" not in read
    assert manifest["left_out"]["SNE_008.jpg"].startswith("not 360 x 363")
    used = [e["file"] for e in manifest["canvases"]]
    assert used and set(used) | set(manifest["left_out"]) == set(read)
    for name in used:
        assert (tmp_path / "out" / name).read_bytes() == (real / name).read_bytes()


def test_missing_canvases_give_one_line(tmp_path):
    with pytest.raises(DisplasiaError) as err:
        canvas_names(str(tmp_path))
    assert "\n" not in str(err.value) and "synth canvases" in str(err.value)
    with pytest.raises(DisplasiaError):
        stain_statistics("9.9")


# --------------------------------------------------------------------------- segmentation

def _disc(shape, cy, cx, r):
    yy, xx = np.ogrid[:shape[0], :shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def test_neutrophil_outline_leaves_a_touching_smooth_red_cell_out():
    # A granular cell with a dark nucleus, and a smooth disc of nearly its colour touching it.
    rng = np.random.default_rng(0)
    shape = (363, 360)
    img = np.empty(shape + (3,), np.float32)
    img[:] = (250, 226, 205)
    cell = _disc(shape, 181, 170, 62)
    red = _disc(shape, 181, 265, 36) & ~cell
    far = _disc(shape, 60, 60, 34)
    grain = ndi.gaussian_filter(rng.standard_normal(shape), 0.8) * 60.0
    img[cell] = np.array((205, 180, 200)) + grain[cell, None]
    img[red | far] = (200, 178, 190)
    img[_disc(shape, 181, 170, 36)] = (90, 50, 150)
    rgb = np.clip(ndi.gaussian_filter(img, (0.7, 0.7, 0)) + rng.normal(0, 2.0, img.shape), 0, 255).astype(np.uint8)
    found, nucleus = neutrophil_masks(rgb)
    assert nucleus[181, 170] and found[181, 125]
    assert (found & red).sum() < 0.05 * red.sum()
    assert abs(int(found.sum()) - int(cell.sum())) < 0.12 * cell.sum()
    assert canvas_defect(found, nucleus) is None


def test_canvas_defects_are_named():
    shape = (363, 360)
    nucleus = _disc(shape, 181, 180, 38)
    assert canvas_defect(np.zeros(shape, bool), np.zeros(shape, bool)) == "no nucleus found"
    border = _disc(shape, 181, 180, 60)
    border[:, :5] = True
    assert "border" in canvas_defect(border, nucleus)
    blob = _disc(shape, 181, 180, 45) | _disc(shape, 181, 250, 35) | _disc(shape, 100, 180, 35)
    assert "solidity" in canvas_defect(blob, nucleus & blob)


def test_touching_red_cells_come_from_the_canvas_and_are_recorded_as_there():
    entries = canvas_entries()
    assert 0 < sum(e["touching"] > 0 for e in entries) < len(entries)
    base = cell_features(47, 0, "normal")
    assert not wants_touching(0) and not wants_touching(1) and wants_touching(2) and wants_touching(4)
    for wanted in (0, 1, 2, 3):
        f = dataclasses.replace(base, rbc_overlap=wanted)
        index, _ = pick_canvas(f.seed, wants_touching(wanted))
        assert (entries[index]["touching"] > 0) == (wanted >= 2)
        cell = render_cell(f, version="4.0")
        # The truth records what the capture holds beside what was asked (which chose it).
        truth = cell.truth()
        assert truth["rbc_overlap"] == wanted and truth["touching_red_cells"] == entries[index]["touching"]
        assert truth["canvas"] == entries[index]["file"]
        assert cell.features.rbc_count == entries[index]["red_cells"]
        assert cell.features.platelets == entries[index]["platelets"]


def test_stain_fit_writes_a_monotone_tone_curve(tmp_path):
    from core.synth.canvas import TONE_QUANTILES, fit_stain

    path = tmp_path / "stats.json"
    path.write_text(json.dumps({"other": {"kept": True}}), encoding="utf-8")
    entry = fit_stain("4.0", n=3, n_canvases=8, path=path, log=lambda *a: None)
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["other"] == {"kept": True} and saved["4.0"]["tone_after"] == entry["tone_after"]
    for key in ("tone_before", "tone_after"):
        curve = np.asarray(entry[key])
        assert curve.shape == TONE_QUANTILES.shape and np.all(np.diff(curve) > 0), key
    # Drawn chromatin reaches darker than real before the tone curve: the curve compresses the top.
    assert entry["tone_before"][-1] > entry["tone_after"][-1]
    assert all(v > 0 for v in entry["cytoplasm_od"] + entry["nucleus_od"])
    committed = stain_statistics("4.0")
    assert np.all(np.diff(committed["tone_after"]) > 0) and committed["nucleus_od"][1] > committed["cytoplasm_od"][1]
