"""Generator 3.3's texture bank: built from tuning cells only, transplanted faithfully,
read from the repository (never from the real cells) and deterministic."""
from __future__ import annotations

import builtins
import hashlib
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from core.synth import generate_cell, texture
from core.synth.realism import image_paths, is_held_out
from core.synth.texture import (
    BANK_PATH,
    PartSpec,
    build_texture_bank,
    load_texture_bank,
    masked_lowpass,
    save_texture_bank,
    transplant_texture,
)
from tests.real_cells_support import REAL_DIR, needs_real

REPO = Path(__file__).resolve().parents[1]


def _write_jpegs(folder: Path, n: int) -> list[Path]:
    from PIL import Image

    folder.mkdir()
    paths = []
    for i in range(n):
        path = folder / f"SNE_{i:03d}.jpg"
        Image.fromarray(generate_cell(61, i, "normal").rgb).save(path, quality=75, subsampling=0)
        paths.append(path)
    return paths


def test_bank_build_never_reads_held_out_cells(tmp_path, monkeypatch):
    from core.synth import realism

    paths = _write_jpegs(tmp_path / "real", 8)
    read = []
    original = realism.load_capture
    monkeypatch.setattr(realism, "load_capture", lambda p: read.append(Path(p).name) or original(p))
    bank = build_texture_bank(tmp_path / "real", log=lambda *a: None)
    tuning = [p.name for i, p in enumerate(paths) if not is_held_out(i)]
    assert read == tuning == bank["sources"]
    assert "SNE_003.jpg" not in read and "SNE_007.jpg" not in read and len(read) == 6
    for part in texture.BANK_PARTS:
        patches = bank[part]
        spec = texture.DEFAULT_SPECS[part]
        assert patches.ndim == 4 and patches.shape[1:] == (spec.patch, spec.patch, 3), part
        assert len(patches) <= 6 * spec.per_cell
    assert len(bank["background"]) > 0 and len(bank["cytoplasm"]) > 0


def test_bank_command_writes_a_small_file(tmp_path, capsys):
    from core.cli import main

    _write_jpegs(tmp_path / "real", 4)
    out = tmp_path / "bank.npz"
    assert main(["synth", "texture-bank", str(tmp_path / "real"), "--out", str(out)]) == 0
    assert "tuning real cells read" in capsys.readouterr().out
    bank = load_texture_bank(out)
    assert set(bank) == set(texture.BANK_PARTS)
    assert all(sigma == texture.DEFAULT_SPECS[part].sigma for part, (_, sigma) in bank.items())


def test_saved_bank_keeps_residuals_within_half_a_step(tmp_path):
    rng = np.random.default_rng(0)
    bank = {"sources": ["a.jpg"], "cytoplasm": rng.normal(0, 4.0, (20, 8, 8, 3)).astype(np.float32),
            "cytoplasm_sigma": 1.0}
    save_texture_bank(bank, tmp_path / "b.npz")
    back, sigma = load_texture_bank(tmp_path / "b.npz")["cytoplasm"]
    step = np.percentile(np.abs(bank["cytoplasm"]), 99.9) / 127
    inside = np.abs(bank["cytoplasm"]) <= 127 * step
    assert sigma == 1.0 and np.abs(back - bank["cytoplasm"])[inside].max() <= step / 2 + 1e-6


def test_patches_lie_inside_the_part_and_on_the_block_grid():
    rgb = np.full((64, 64, 3), 200, np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[5:30, 9:50] = True           # holds 16 x 16 patches at y = 8, x = 16, 24, 32 only
    rgb[mask] = 150
    patches = texture.residual_patches(rgb, mask, PartSpec(16, 2.0, 10), np.random.default_rng(0))
    assert patches.shape == (3, 16, 16, 3)
    # Inside a flat part the residual above the masked low-pass is zero: nothing of the
    # edge between the part and its surroundings leaks in.
    assert np.abs(patches).max() < 1e-3


def test_masked_lowpass_ignores_pixels_outside_the_part():
    img = np.zeros((30, 30, 3), np.float32)
    img[:, 15:] = 255.0
    mask = np.zeros((30, 30), bool)
    mask[:, :15] = True
    assert np.abs(masked_lowpass(img, mask, 4.0)[mask]).max() < 1e-3


def test_transplanted_residual_has_the_bank_statistics():
    rng = np.random.default_rng(1)
    patches = (rng.normal(0, 1, (50, 8, 8, 3)) * (2.0, 4.0, 3.0)).astype(np.float32)
    bank = {"cytoplasm": (patches, 1.0)}
    image = np.full((120, 120, 3), 180.0, np.float32) + rng.normal(0, 9.0, (120, 120, 3)).astype(np.float32)
    mask = np.zeros((120, 120), bool)
    mask[10:110, 10:110] = True
    out = transplant_texture(image, {"cytoplasm": mask}, np.random.default_rng(2), bank, fade=6.0)
    deep = ndi.distance_transform_edt(mask) > 6
    residual = out - masked_lowpass(out, mask, 1.0)
    # The image's own noise (SD 9) is gone from the part's inside; the bank's, per channel, is there.
    np.testing.assert_allclose(residual[deep].std(0), patches.std((0, 1, 2)), rtol=0.12)
    assert np.array_equal(out[~mask], image[~mask])
    # Gain 0 keeps only the low-pass inside the part.
    flat = transplant_texture(image, {"cytoplasm": mask}, np.random.default_rng(2), bank, gain=0.0, fade=6.0)
    assert (flat - masked_lowpass(flat, mask, 1.0))[deep].std() < 0.35 * image[deep].std()


def test_committed_bank_is_small_and_attributed():
    assert BANK_PATH.is_file() and BANK_PATH.stat().st_size <= 3_000_000
    notice = (BANK_PATH.parent / "NOTICE.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in notice and "doi:10.17632/snkd93bnjr.1" in notice and "held-out" in notice
    with np.load(BANK_PATH) as z:
        sources = list(z["sources"])
    assert len(sources) == 150


@needs_real
def test_committed_bank_comes_from_the_tuning_cells_only():
    paths = image_paths(REAL_DIR)
    tuning = [p.name for i, p in enumerate(paths) if not is_held_out(i)]
    held = {p.name for i, p in enumerate(paths) if is_held_out(i)}
    with np.load(BANK_PATH) as z:
        sources = [str(s) for s in z["sources"]]
    assert sources == tuning and not held & set(sources)


def test_generator_3_3_reads_the_bank_from_the_repository_only(monkeypatch):
    opened = []
    real_open = builtins.open

    def spy(file, *args, **kwargs):
        opened.append(Path(file).resolve() if isinstance(file, str | Path) else None)
        return real_open(file, *args, **kwargs)

    load_texture_bank.cache_clear()
    monkeypatch.setattr(builtins, "open", spy)
    try:
        generate_cell(3, 5, version="3.3")
    finally:
        monkeypatch.undo()
    paths = [p for p in opened if p is not None]
    assert BANK_PATH.resolve() in paths
    assert all(REPO in p.parents for p in paths), paths
    assert not any("shared" in p.parts for p in paths)


@pytest.mark.parametrize("seed,index,kind", [(3, 5, "normal"), (3, 6, "dysplastic")])
def test_generator_3_3_is_deterministic_and_changes_only_the_cytoplasm(seed, index, kind):
    old = generate_cell(seed, index, kind, version="3.2")
    new, again = generate_cell(seed, index, kind, version="3.3"), generate_cell(seed, index, kind, version="3.3")
    assert new.jpeg == again.jpeg != old.jpeg and new.version == "3.3"
    assert new.truth() == old.truth()
    for name in ("cell", "nucleus", "cytoplasm", "granules"):
        assert np.array_equal(getattr(old, name), getattr(new, name)), name
    # The transplant touches the cytoplasm's pixels only (JPEG blocks are 8 x 8, 4:4:4):
    # every block away from the cell decodes to the same pixels as 3.2's.
    h, w = old.cell.shape
    near = ndi.binary_dilation(old.cell, iterations=10)
    blocks = np.add.reduceat(np.add.reduceat(near, np.arange(0, h, 8), 0), np.arange(0, w, 8), 1) > 0
    away = ~np.kron(blocks, np.ones((8, 8), bool))[:h, :w]
    assert away.mean() > 0.6
    assert np.array_equal(new.rgb[away], old.rgb[away])
    assert not np.array_equal(new.rgb[old.cytoplasm], old.rgb[old.cytoplasm])


def test_generator_3_3_cytoplasm_carries_the_bank_texture():
    # Measured on the decoded JPEG, deep inside the drawn cytoplasm: the fine residual has
    # the bank's strength, and its red and green move together as in the bank (real
    # cytoplasm 0.66; 3.2's own texture about 0.54).
    patches = load_texture_bank()["cytoplasm"][0].reshape(-1, 3)
    bank_sd, bank_rg = patches.std(0), np.corrcoef(patches.T)[0, 1]
    sds, rgs = {}, {}
    for version in ("3.2", "3.3"):
        sd, rg = [], []
        for i in range(4):
            c = generate_cell(63, i, "normal", version=version)
            x = c.rgb.astype(np.float32)
            deep = ndi.distance_transform_edt(c.cytoplasm) > 6
            residual = (x - masked_lowpass(x, c.cytoplasm, 1.0))[deep]
            sd.append(residual.std(0))
            rg.append(np.corrcoef(residual.T)[0, 1])
        sds[version], rgs[version] = np.mean(sd, 0), np.mean(rg)
    np.testing.assert_allclose(sds["3.3"], bank_sd, rtol=0.2)
    assert abs(rgs["3.3"] - bank_rg) < 0.05 < abs(rgs["3.2"] - bank_rg)


def test_generators_before_3_3_do_not_drift():
    # 3.3 was added next to 3.2 without touching it: hashes taken before 3.3.
    assert hashlib.sha1(generate_cell(3, 5, version="3.2").jpeg).hexdigest().startswith("dfd3f5a35a")
    assert hashlib.sha1(generate_cell(3, 6, "dysplastic", version="3.2").jpeg).hexdigest().startswith("d52649fe64")
    assert hashlib.sha1(generate_cell(3, 5, version="2.0").jpeg).hexdigest().startswith("5b208417b0")
