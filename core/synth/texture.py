"""Real fine texture for generated captures (generator 3.3): a bank of high-pass residual
patches of real CellaVision captures, and its transplant into a generated image.

Generators up to 3.2 matched colours, sizes and shapes of real captures part by part, but
the fine texture (sensor noise as the camera's demosaicing and JPEG leave it, the
blotchiness of the plasma film, the grain of red cells and cytoplasm) stayed the
generator's own, and the two-sample test kept finding it (docs/REALISM.md). Generator
3.3 keeps 3.2's drawing and low-frequency colour and swaps, part by part, its residual
above a low-pass for residual patches cut from real captures.

* **The bank** (:func:`build_texture_bank`, ``python -m core synth texture-bank REAL_DIR``)
  reads the TUNING real cells only (never the held-out ones,
  :func:`core.synth.realism.is_held_out`), segments them with the realism measure's own
  colour thresholds (:func:`core.synth.realism.part_masks`) and keeps, per part, square
  patches of ``image - low-pass`` that lie wholly inside that part. The low-pass is a
  normalised convolution inside the part (a Gaussian of the part's pixels divided by a
  Gaussian of its mask), so a patch next to a red cell carries no trace of the red
  cell's edge. Patches sit on the 8-pixel JPEG block grid of the real file.
* **The transplant** (:func:`transplant_texture`) does the same split on the generated
  image with the generator's own part masks, tiles the part with bank patches (random
  patch, one of the eight flips and quarter turns, which map the block grid onto
  itself) and replaces the generated residual by them, fading over a few pixels at the
  part's edge, where the generator's own edges stay.

The bank is ``data/synth/texture_bank.npz``; the product reads only that file, never
the real cells.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from core.errors import DisplasiaError

#: The bank the generator reads (built by ``python -m core synth texture-bank``).
BANK_PATH = Path(__file__).resolve().parents[2] / "data" / "synth" / "texture_bank.npz"
#: Transplanted parts, in the order of the realism measure.
BANK_PARTS = ("background", "red_cells", "cytoplasm", "nucleus")
#: JPEG block size: bank patches are cut, and laid, on this grid.
_BLOCK = 8


@dataclass(frozen=True)
class PartSpec:
    """How one part's residual is cut: square patches of ``patch`` pixels above a
    Gaussian low-pass of ``sigma`` pixels; at most ``per_cell`` patches per real cell."""

    patch: int
    sigma: float
    per_cell: int


#: Background: the plasma film's blotches reach 5 px (DoG 2.4-4.8 px was real > 3.2);
#: red cells, cytoplasm and nucleus: pixel-scale grain only, so the drawn pale centre,
#: granules and chromatin (the ground truth) stay where the generator put them.
DEFAULT_SPECS = {
    "background": PartSpec(32, 5.0, 2),
    "red_cells": PartSpec(16, 1.5, 6),
    "cytoplasm": PartSpec(8, 1.0, 12),
    "nucleus": PartSpec(8, 1.0, 12),
}


def masked_lowpass(image: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian low-pass of ``image`` ``(M, N, C)`` over the pixels of ``mask`` ``(M, N)``
    only (normalised convolution); defined where ``mask`` is true.

    >>> img = np.zeros((20, 20, 1)); img[:, 10:] = 100.0
    >>> m = np.zeros((20, 20), bool); m[:, :10] = True
    >>> float(abs(masked_lowpass(img, m, 3.0)[10, 9, 0])) < 1e-9
    True
    """
    m = mask.astype(np.float32)
    weight = ndi.gaussian_filter(m, sigma, mode="nearest")
    out = np.empty(image.shape, np.float32)
    for c in range(image.shape[-1]):
        out[..., c] = ndi.gaussian_filter(image[..., c] * m, sigma, mode="nearest")
    return out / np.maximum(weight, 1e-6)[..., None]


def residual_patches(rgb: np.ndarray, mask: np.ndarray, spec: PartSpec, rng: np.random.Generator) -> np.ndarray:
    """Up to ``spec.per_cell`` patches ``(K, P, P, 3) float32`` of ``rgb`` minus its
    masked low-pass, each on the 8-pixel block grid and wholly inside ``mask``."""
    p = spec.patch
    h, w = mask.shape
    # A patch lies wholly inside the mask where the mask's p x p box sum is p * p
    # (box sums from the summed-area table).
    table = np.pad(mask.astype(np.int32).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    ys, xs = np.meshgrid(np.arange(0, h - p + 1, _BLOCK), np.arange(0, w - p + 1, _BLOCK), indexing="ij")
    inside = table[ys + p, xs + p] - table[ys, xs + p] - table[ys + p, xs] + table[ys, xs]
    ok = inside == p * p
    ys, xs = ys[ok], xs[ok]
    if not len(ys):
        return np.zeros((0, p, p, 3), np.float32)
    pick = rng.choice(len(ys), size=min(spec.per_cell, len(ys)), replace=False)
    x = rgb.astype(np.float32)
    res = x - masked_lowpass(x, mask, spec.sigma)
    return np.stack([res[ys[k]:ys[k] + p, xs[k]:xs[k] + p] for k in sorted(pick)])


def build_texture_bank(real_dir, *, specs: dict | None = None, seed: int = 0, log=print) -> dict:
    """The texture bank of the TUNING cells of ``real_dir`` (held-out cells are never read).

    Returns ``{part: (K, P, P, 3) float32 residual patches, part + "_sigma": float,
    "sources": file names read}``.
    """
    from .realism import image_paths, is_held_out, load_capture, part_masks

    specs = DEFAULT_SPECS if specs is None else specs
    paths = [p for i, p in enumerate(image_paths(real_dir)) if not is_held_out(i)]
    rng = np.random.default_rng(seed)
    patches: dict[str, list] = {part: [] for part in specs}
    for path in paths:
        rgb = load_capture(path)
        masks = part_masks(rgb)
        for part, spec in specs.items():
            patches[part].append(residual_patches(rgb, masks[part], spec, rng))
    bank: dict = {"sources": [p.name for p in paths]}
    for part, spec in specs.items():
        bank[part] = np.concatenate(patches[part])
        bank[part + "_sigma"] = spec.sigma
        log(f"{part}: {len(bank[part])} patches of {spec.patch} x {spec.patch} px above a {spec.sigma} px low-pass, "
            f"residual SD {bank[part].std():.2f}")
    log(f"{len(paths)} tuning real cells read (held-out cells not read)")
    return bank


def save_texture_bank(bank: dict, path) -> int:
    """Write ``bank`` as a compressed ``.npz``: residuals as int8 with one scale per part
    (the 99.9th percentile of its magnitude maps to 127). Returns the file's size in bytes."""
    arrays = {"sources": np.asarray(bank["sources"])}
    for part in BANK_PARTS:
        if part not in bank:
            continue
        res = np.asarray(bank[part], np.float32)
        scale = max(float(np.percentile(np.abs(res), 99.9)) / 127.0, 1e-3) if res.size else 1.0
        arrays[part] = np.clip(np.rint(res / scale), -127, 127).astype(np.int8)
        arrays[part + "_scale"] = np.float32(scale)
        arrays[part + "_sigma"] = np.float32(bank[part + "_sigma"])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path.stat().st_size


@lru_cache(maxsize=2)
def load_texture_bank(path=BANK_PATH) -> dict:
    """The bank as ``{part: ((K, P, P, 3) float32 residuals, low-pass sigma)}``."""
    try:
        with np.load(path) as z:
            return {part: (z[part].astype(np.float32) * float(z[part + "_scale"]), float(z[part + "_sigma"]))
                    for part in BANK_PARTS if part in z.files}
    except OSError as exc:
        raise DisplasiaError(f"texture bank not found or unreadable ({path}): build it with "
                             f"`python -m core synth texture-bank REAL_DIR` ({exc})") from None


def _dihedral(patch: np.ndarray, k: int) -> np.ndarray:
    """One of the eight flips and quarter turns of a square ``(P, P, C)`` patch."""
    patch = np.rot90(patch, k % 4)
    return patch[:, ::-1] if k >= 4 else patch


def tile_residual(patches: np.ndarray, shape, rng: np.random.Generator, origin=(0, 0)) -> np.ndarray:
    """A ``shape + (3,)`` field tiled with random patches (random flip or quarter turn),
    tiles on the block grid of the image whose pixel ``origin`` is the field's corner."""
    p = patches.shape[1]
    h, w = shape
    y0, x0 = origin[0] - origin[0] % p, origin[1] - origin[1] % p
    ny, nx = -(-(origin[0] + h - y0) // p), -(-(origin[1] + w - x0) // p)
    pick = rng.integers(0, len(patches), ny * nx)
    turn = rng.integers(0, 8, ny * nx)
    big = np.empty((ny * p, nx * p, patches.shape[-1]), np.float32)
    for k in range(ny * nx):
        i, j = divmod(k, nx)
        big[i * p:(i + 1) * p, j * p:(j + 1) * p] = _dihedral(patches[pick[k]], int(turn[k]))
    oy, ox = origin[0] - y0, origin[1] - x0
    return big[oy:oy + h, ox:ox + w]


def transplant_texture(image: np.ndarray, masks: dict, rng: np.random.Generator, bank: dict, *,
                       gain: float = 1.0, fade: float = 2.0) -> np.ndarray:
    """Replace the residual above each part's low-pass in ``image`` ``(M, N, 3) float``
    by tiled bank patches of that part, times ``gain``.

    ``masks``: part name -> ``(M, N) bool`` (parts absent from ``bank`` are left alone).
    The replacement fades in over ``fade`` pixels from the part's edge (real residuals
    are stronger near edges than inside, and the bank holds only inside patches), so
    edges between parts keep the generator's own profile. Returns a new float32 image.
    """
    out = np.asarray(image, np.float32).copy()
    for part, mask in masks.items():
        if part not in bank or not mask.any():
            continue
        patches, sigma = bank[part]
        if not len(patches):
            continue
        ys, xs = np.nonzero(mask)
        pad = int(np.ceil(3 * sigma)) + 2
        y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, mask.shape[0])
        x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, mask.shape[1])
        m = mask[y0:y1, x0:x1]
        src = np.asarray(image, np.float32)[y0:y1, x0:x1]
        own = src - masked_lowpass(src, m, sigma)
        field = tile_residual(patches, m.shape, rng, origin=(y0, x0))
        # Cross-fade of two independent textures with weights cos and sin keeps their
        # variance (a linear fade would dip to half of it mid-way).
        turn = np.clip(ndi.distance_transform_edt(m) / fade, 0.0, 1.0) if fade else m.astype(np.float64)
        turn = (turn * (np.pi / 2))[..., None].astype(np.float32)
        out[y0:y1, x0:x1] += (np.cos(turn) - 1.0) * own + np.sin(turn) * gain * field
    return out
