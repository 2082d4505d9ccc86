"""Real capture canvases for generator 4.0: a real smear, a synthetic neutrophil.

Five rounds of calibrating a fully drawn capture (generators 2.0-3.3, docs/REALISM.md)
left the two-sample test at 0.97: background, red cells and the edges between them
each still gave the synthetic cells away. Generator 4.0 stops drawing them. Each cell
is drawn *into* a real capture of a normal neutrophil from the tuning half of the PBC
calibration set (``data/synth/canvases``, CC BY 4.0, see its NOTICE.md): background,
red cells, platelets and the neutrophil's outline are the capture's own pixels. Inside
the outline everything is drawn: the cytoplasm with its granulation and the nucleus
with its shape, lobes and chromatin, in the colours of that capture's stain. So the
class evidence (granularity, chromatin, lobes) and its masks stay the generator's,
known exactly, and what the model may learn from the surroundings is real.

The real neutrophil is erased, never kept: every pixel of its nucleus is covered by the
drawn cytoplasm or nucleus, and only a band of about two pixels inside its outline (the
edge seen against the background) is the capture's.

A canvas is a tuning cell (never one of the 50 held-out cells the realism measure
judges on) whose neutrophil the segmentation below outlines cleanly. Each is used as
is or mirrored left to right (which keeps the JPEG's 8 x 8 block grid in place).
"""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

CANVAS_DIR = Path(__file__).resolve().parents[2] / "data" / "synth" / "canvases"
MANIFEST = "canvases.json"
#: A canvas' neutrophil outline must be this convex (area over convex hull area) to be
#: used: lower values are outlines that leaked into a touching red cell or missed a
#: pale part of the cytoplasm.
MIN_SOLIDITY = 0.9


def _disk(r: int) -> np.ndarray:
    y, x = np.ogrid[-r:r + 1, -r:r + 1]
    return x * x + y * y <= r * r


def neutrophil_masks(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(cell, nucleus)`` masks of the neutrophil of a real capture.

    The nucleus is the realism measure's (:func:`core.synth.realism.part_masks`). The
    cytoplasm is told from touching red cells by texture, not colour (both are pale
    mauve; in some captures their Lab colours overlap): granulated cytoplasm has several
    times the fine-scale (0.6-1.5 px) energy of a red cell. The threshold is the
    geometric mean of the energy next to the nucleus and far from it, per capture.
    """
    cell, nucleus, _, _ = _outline(rgb)
    return cell, nucleus


def _outline(rgb: np.ndarray):
    """:func:`neutrophil_masks` with what it computed on the way: ``(cell, nucleus, parts,
    lab)``, ``parts`` being :func:`core.synth.realism.part_masks` of the capture."""
    from skimage.color import rgb2lab

    from .realism import background_levels, part_masks

    lab = rgb2lab(rgb)
    parts = part_masks(rgb, lab)
    nucleus = parts["nucleus"]
    # A platelet lying against the cell is as dark and blue as chromatin but smaller than
    # any lobe: it stays part of the capture.
    labels, n = ndi.label(nucleus)
    if n > 1:
        sizes = ndi.sum(nucleus, labels, index=np.arange(1, n + 1))
        nucleus = np.isin(labels, 1 + np.flatnonzero(sizes >= 400))
    L = lab[..., 0]
    not_bg = ndi.gaussian_filter(L, 1.5) < background_levels(lab)[0] - 5.0
    band = ndi.gaussian_filter(L, 0.6) - ndi.gaussian_filter(L, 1.5)
    energy = np.sqrt(ndi.gaussian_filter(band * band, 3.0))
    dn = ndi.distance_transform_edt(~nucleus)
    near, far = not_bg & (dn > 4) & (dn < 10), not_bg & (dn > 70)
    if not near.any() or not far.any():
        return nucleus.copy(), nucleus, parts, lab
    threshold = float(np.sqrt(np.median(energy[near]) * np.median(energy[far])))
    cand = (not_bg & (energy > threshold) & (dn < 50)) | nucleus
    cand = ndi.binary_opening(cand, structure=_disk(3)) | nucleus
    cell = _largest_touching(cand, nucleus)
    cell = ndi.binary_fill_holes(ndi.binary_closing(cell, structure=_disk(4)))
    cell = ndi.binary_opening(cell, structure=_disk(6)) | (nucleus & cell)
    cell &= not_bg | ndi.binary_erosion(cell, iterations=3)
    cell = _largest_touching(cell, nucleus)
    return cell, nucleus & cell, parts, lab


def _measure(rgb: np.ndarray) -> dict:
    """What canvases and drawn cells are compared on, measured alike: the neutrophil's
    masks, the background's median RGB, the optical density over it, and the median
    density (R, G, B) of the cytoplasm (3 px clear of the nucleus and of the outline)
    and of the nucleus (2 px inside its edge)."""
    cell, nucleus, parts, lab = _outline(rgb)
    bg = np.median(rgb[parts["background"]].astype(np.float64), axis=0)
    od = -np.log(np.clip(rgb.astype(np.float64), 1.0, None) / bg)
    cyto = ndi.binary_erosion(cell & ~ndi.binary_dilation(nucleus, iterations=3), iterations=3)
    return {"cell": cell, "nucleus": nucleus, "parts": parts, "lab": lab, "background": bg, "od": od,
            "cytoplasm_od": np.median(od[cyto], axis=0),
            "nucleus_od": np.median(od[ndi.binary_erosion(nucleus, iterations=2)], axis=0)}


def _largest_touching(mask: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """The largest connected component of ``mask`` that holds part of ``seed``."""
    labels, _ = ndi.label(mask)
    ids, counts = np.unique(labels[seed & mask], return_counts=True)
    keep = ids > 0
    if not keep.any():
        return np.zeros_like(mask)
    sizes = ndi.sum(mask, labels, index=ids[keep])
    return labels == ids[keep][int(np.argmax(sizes))]


def canvas_defect(cell: np.ndarray, nucleus: np.ndarray) -> str | None:
    """Why a capture cannot be a canvas (its outline is not trustworthy), or None."""
    from skimage.morphology import convex_hull_image

    if nucleus.sum() < 1500:
        return "no nucleus found"
    if cell[0].any() or cell[-1].any() or cell[:, 0].any() or cell[:, -1].any():
        return "the cell touches the image border"
    share = nucleus.sum() / cell.sum()
    if not 0.22 <= share <= 0.75:
        return f"nucleus covers {share:.0%} of the outlined cell"
    solidity = cell.sum() / convex_hull_image(cell).sum()
    if solidity < MIN_SOLIDITY:
        return f"outline solidity {solidity:.2f} < {MIN_SOLIDITY}"
    return None


def build_canvases(real_dir, out_dir=CANVAS_DIR, *, log=print) -> dict:
    """Copy the tuning cells of ``real_dir`` whose neutrophil outlines cleanly into
    ``out_dir``, byte for byte, with a manifest: name, SHA-256, how many red cells, touching
    red cells and platelets each holds (:func:`_confounders`), and why others were left."""
    from .realism import image_paths, is_held_out, load_capture

    out_dir = Path(out_dir)
    paths = image_paths(real_dir)
    used, left = [], {}
    for i, path in enumerate(paths):
        if is_held_out(i):
            continue
        rgb = load_capture(path)
        if rgb.shape[:2] != (363, 360) or _image_size(path) != (360, 363):
            left[path.name] = "not 360 x 363 (cropping would move the JPEG block grid)"
            continue
        cell, nucleus, parts, lab = _outline(rgb)
        why = canvas_defect(cell, nucleus)
        if why:
            left[path.name] = why
            continue
        used.append((path, _confounders(lab, parts, cell)))
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.jpg"):
        old.unlink()
    entries = []
    for path, (red_cells, touching, platelets) in used:
        shutil.copyfile(path, out_dir / path.name)
        entries.append({"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                        "red_cells": red_cells, "touching": touching, "platelets": platelets})
    manifest = {"canvases": entries, "left_out": left,
                "note": "tuning cells only (never the held-out quarter); see NOTICE.md"}
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    log(f"{len(entries)} canvases written to {out_dir}; {len(left)} tuning cells left out")
    return manifest


def _image_size(path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size


@lru_cache(maxsize=1)
def canvas_entries(folder: str = str(CANVAS_DIR)) -> tuple[dict, ...]:
    """The bundled canvases' manifest entries, in order; a one-line error if absent."""
    from core.errors import DisplasiaError

    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
        return tuple(dict(e) for e in manifest["canvases"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DisplasiaError(f"generator 4.0 needs its canvases in {folder}: rebuild them with "
                             f"`python -m core synth canvases REAL_DIR` ({exc})") from None


def canvas_names(folder: str = str(CANVAS_DIR)) -> tuple[str, ...]:
    """File names of the bundled canvases, in manifest order."""
    return tuple(e["file"] for e in canvas_entries(folder))


def wants_touching(rbc_overlap: int) -> bool:
    """Whether a cell's latent ``rbc_overlap`` asks for a canvas whose neutrophil real red
    cells touch: two or more. The latent draw gives that to 55 % of cells, as many as the
    canvases whose neutrophil is touched by one or more (75 of 136), so the mix of captures
    stays real's (with "one or more" for the latent draw too, 85 %, the pixel-block
    two-sample test rose from 0.53 to 0.60). The latent value stays in the cell's features;
    its truth adds the touching red cells counted on the canvas."""
    return int(rbc_overlap) >= 2


def pick_canvas(seed: int, touching_red_cells: bool, folder: str = str(CANVAS_DIR)) -> tuple[int, bool]:
    """``(index, mirrored)`` of the canvas a cell of ``seed`` is drawn into: one whose real
    neutrophil is (or is not) touched by red cells (:func:`wants_touching`), so that
    confounder stays a property of the image; mirrored for half of the seeds."""
    entries = canvas_entries(folder)
    pool = [i for i, e in enumerate(entries) if (e.get("touching", 0) > 0) == bool(touching_red_cells)]
    pool = pool or list(range(len(entries)))
    rng = np.random.default_rng([int(seed), 36])
    return pool[int(rng.integers(len(pool)))], bool(rng.integers(2))


@dataclass(frozen=True)
class Canvas:
    """One real capture ready to draw a neutrophil into (all arrays ``(363, 360)``)."""

    name: str
    mirrored: bool
    rgb: np.ndarray          # uint8 (363, 360, 3)
    cell: np.ndarray         # the real neutrophil's outline, filled
    nucleus: np.ndarray      # the real nucleus (to be covered)
    background: np.ndarray   # RGB of the background, median
    cytoplasm_od: np.ndarray  # optical density of the real cytoplasm, median per channel
    nucleus_od: np.ndarray   # optical density of the real nucleus, median per channel
    centre: tuple[float, float]
    radius: float            # equivalent radius of the outline, pixels
    reach: float             # farthest outline pixel from the centre, pixels
    red_cells: int = 0       # red cells in the capture (segmented, so approximate)
    touching: int = 0        # of them, touching or under the neutrophil's outline
    platelets: int = 0       # small dark-violet specks away from the neutrophil


@lru_cache(maxsize=512)
def load_canvas(index: int, mirrored: bool = False, folder: str = str(CANVAS_DIR)) -> Canvas:
    """Canvas ``index`` (modulo their number) of the bundled set, optionally mirrored."""
    from PIL import Image

    from core.errors import DisplasiaError

    names = canvas_names(folder)
    name = names[index % len(names)]
    try:
        with Image.open(Path(folder) / name) as im:
            rgb = np.asarray(im.convert("RGB"))
    except OSError as exc:
        raise DisplasiaError(f"cannot read canvas {name}: {exc}") from None
    if mirrored:
        rgb = np.ascontiguousarray(rgb[:, ::-1])
    m = _measure(rgb)
    cell = m["cell"]
    counts = canvas_entries(folder)[index % len(names)]
    ys, xs = np.nonzero(cell)
    cy, cx = float(ys.mean()), float(xs.mean())
    return Canvas(
        name=name, mirrored=bool(mirrored), rgb=rgb, cell=cell, nucleus=m["nucleus"], background=m["background"],
        cytoplasm_od=m["cytoplasm_od"], nucleus_od=m["nucleus_od"],
        centre=(cy, cx), radius=float(np.sqrt(cell.sum() / np.pi)),
        reach=float(np.hypot(ys - cy, xs - cx).max()), red_cells=int(counts.get("red_cells", 0)),
        touching=int(counts.get("touching", 0)), platelets=int(counts.get("platelets", 0)))


def _confounders(lab: np.ndarray, parts: dict, cell: np.ndarray) -> tuple[int, int, int]:
    """How many red cells a capture holds, how many touch the neutrophil, and how many
    platelets lie away from it: what generator 4.0 records instead of drawing them.
    Platelets: dark, blue specks of 15-400 px (the nucleus thresholds of the realism measure)."""
    red = ndi.binary_opening(parts["red_cells"] & ~cell, iterations=3)
    labels, n = ndi.label(red)
    sizes = ndi.sum(red, labels, index=np.arange(1, n + 1)) if n else np.zeros(0)
    big = 1 + np.flatnonzero(sizes >= 800)
    ring = ndi.binary_dilation(cell, iterations=4) & ~cell
    touching = len(set(np.unique(labels[ring])) & set(big.tolist()))
    from .realism import background_levels, chromatin_like

    specks = chromatin_like(ndi.gaussian_filter(lab[..., 0], 1.0), ndi.gaussian_filter(lab[..., 2], 1.0),
                            background_levels(lab)) & ~ndi.binary_dilation(cell, iterations=6)
    speck_labels, m = ndi.label(specks)
    platelets = 0
    if m:
        areas = ndi.sum(specks, speck_labels, index=np.arange(1, m + 1))
        platelets = int(((areas >= 15) & (areas <= 400)).sum())
    return int(len(big)), int(touching), platelets


def canvas_count(folder: str = str(CANVAS_DIR)) -> int:
    return len(canvas_names(folder))


# --------------------------------------------------------------------------- stain fit

STAIN_STATS = Path(__file__).parent / "canvas_stats.json"
#: Quantiles of the nucleus' density that the tone curve matches.
TONE_QUANTILES = np.linspace(0.02, 0.98, 25)
FIT_SEED = 9300


def part_densities(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median optical density (R, G, B) of the cytoplasm and of the nucleus of a capture,
    and quantiles (:data:`TONE_QUANTILES`) of the nucleus' total density over its median.
    Measured alike on canvases and on drawn cells (:func:`_measure`)."""
    m = _measure(rgb)
    total = m["od"][ndi.binary_erosion(m["nucleus"], iterations=1)].sum(-1)
    return m["cytoplasm_od"], m["nucleus_od"], np.quantile(total, TONE_QUANTILES) / np.median(total)


@lru_cache(maxsize=4)
def stain_statistics(version: str, path: str = str(STAIN_STATS)) -> dict:
    """The fitted stain of generator ``version`` (see :func:`fit_stain`), as arrays."""
    from core.errors import DisplasiaError

    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))[version]
    except (OSError, ValueError, KeyError) as exc:
        raise DisplasiaError(f"no fitted stain for generator {version} in {path}: run "
                             f"`python -m core synth canvases --fit-only` ({exc})") from None
    return {k: np.asarray(v, np.float32) if isinstance(v, list) else v for k, v in d.items()}


def fit_stain(version: str = "4.0", *, n: int = 40, n_canvases: int | None = None, path=STAIN_STATS,
              log=print) -> dict:
    """Fit how generator ``version`` takes a canvas' stain, from the canvases alone.

    1. ``n`` NORMAL cells drawn without stain matching give the reference densities of the
       drawn cytoplasm and nucleus (a canvas' stain is its real densities over these);
    2. drawn with matching, their nucleus' density quantiles against the canvases' give a
       monotone tone curve; 3. one more round corrects the curve for the camera's blur.
    ``n_canvases`` limits the real side to the first canvases (all by default). Writes the
    numbers (no pixels) under ``version`` in ``path``.
    """
    from . import cell_features
    from .render import _render_on_canvas, capture_model

    cm = capture_model(version)
    real = np.array([part_densities(load_canvas(i).rgb)[2] for i in range(n_canvases or canvas_count())])
    target = np.median(real, axis=0)

    def measure(stain):
        rows = [part_densities(_render_on_canvas(cell_features(FIT_SEED, i, "normal"), cm, stain=stain).rgb)
                for i in range(n)]
        return [np.median(np.array([r[k] for r in rows]), axis=0) for k in range(3)]

    cyto, nucleus, _ = measure("raw")
    stats = json.loads(Path(path).read_text(encoding="utf-8")) if Path(path).exists() else {}
    entry = {"cytoplasm_od": cyto.round(4).tolist(), "nucleus_od": nucleus.round(4).tolist(),
             "tone_before": target.round(4).tolist(), "tone_after": target.round(4).tolist()}

    def save():
        stats[version] = dict(entry, note=f"fitted by core.synth.canvas.fit_stain on {n} normal cells "
                                          f"(seed {FIT_SEED}) and {len(real)} canvases")
        Path(path).write_text(json.dumps(stats, indent=1) + "\n", encoding="utf-8")
        stain_statistics.cache_clear()

    save()
    drawn = measure("untoned")[2]
    entry["tone_before"] = drawn.round(4).tolist()
    save()
    toned = measure("fitted")[2]
    after = np.interp(target, toned, target)
    # Beyond the measured range the correction is a proportional one.
    after = np.where(target < toned[0], target * target[0] / toned[0], after)
    after = np.where(target > toned[-1], target * target[-1] / toned[-1], after)
    entry["tone_after"] = np.round(after, 4).tolist()
    save()
    log(f"generator {version}: reference cytoplasm OD {entry['cytoplasm_od']}, nucleus OD {entry['nucleus_od']}; "
        f"nucleus 98th percentile over median: real {target[-1]:.3f}, drawn {drawn[-1]:.3f}, toned {toned[-1]:.3f}")
    return stats[version]
