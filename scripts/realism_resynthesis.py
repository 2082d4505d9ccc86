"""Does texture copied from the capture itself pass the realism test? An experiment.

    .venv/bin/python scripts/realism_resynthesis.py REAL_DIR [--cells 150]

Generator 4.0 draws the neutrophil into a real capture, and the realism command's
two-sample test still tells its normal cells from real ones (hand features, 0.94 on the
held-out real cells). This script asks whether the drawing is the problem, by making the
normal cells of the same canvases three other ways and running the same test on each:

``copy``
    the canvas as it is (mirrored by the seed, like 4.0): the floor of the test.
``real-shape``
    the real nucleus keeps its outline; its chromatin, and the cytoplasm over and around
    where it was, are re-synthesised by image quilting (Efros & Freeman, SIGGRAPH 2001)
    from the same capture's own pixels. Nothing is drawn: only real pixels are moved.
``drawn-shape``
    4.0's drawn nucleus outline (lobes from the cell's latent features), filled the same way.

Results (docs/REALISM.md, seventh round) are printed as a table. The script reads real
cells only from REAL_DIR and is not used by the product.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VARIANTS = ("copy", "real-shape", "drawn-shape")


def min_cut(err: np.ndarray) -> np.ndarray:
    """The cheapest top-to-bottom path through ``err`` (h, w); True right of it."""
    h, w = err.shape
    cost, back = err.astype(np.float64).copy(), np.zeros((h, w), int)
    for i in range(1, h):
        prev = np.pad(cost[i - 1], 1, constant_values=np.inf)
        options = np.stack([prev[:-2], prev[1:-1], prev[2:]])
        k = options.argmin(0)
        back[i] = k - 1
        cost[i] += options[k, np.arange(w)]
    keep = np.zeros((h, w), bool)
    j = int(cost[-1].argmin())
    for i in range(h - 1, -1, -1):
        keep[i, j:] = True
        j = int(np.clip(j + back[i, j], 0, w - 1))
    return keep


def quilt(tex: np.ndarray, src: np.ndarray, target: np.ndarray, rng, *, block: int = 20, overlap: int = 5,
          candidates: int = 150) -> np.ndarray:
    """``tex`` (H, W, C) with ``target`` re-made from ``block``-square pieces lying inside ``src``.

    Pieces are laid in raster order; each is the best of ``candidates`` random source
    positions on the pixels already made (within 10 % of the best, picked at random), and
    joins them along the cheapest cut through the overlap. Pixels outside ``target`` are kept.
    """
    H, W = target.shape
    inside = ndi.minimum_filter(src.astype(np.uint8), size=block, origin=-(block // 2)) > 0
    sy_all, sx_all = np.nonzero(inside[:H - block + 1, :W - block + 1])
    out, made = tex.copy(), ~target
    ty, tx = np.nonzero(target)
    if not len(ty) or not len(sy_all):
        return out
    step = block - overlap
    for y in range(max(0, ty.min() - overlap), ty.max() + 1, step):
        for x in range(max(0, tx.min() - overlap), tx.max() + 1, step):
            y1, x1 = min(y + block, H), min(x + block, W)
            todo = target[y:y1, x:x1]
            if not todo.any():
                continue
            bh, bw = y1 - y, x1 - x
            known, here = made[y:y1, x:x1], out[y:y1, x:x1]
            pick = rng.integers(len(sy_all), size=candidates)
            sy, sx = sy_all[pick], sx_all[pick]
            pieces = tex[sy[:, None, None] + np.arange(bh)[None, :, None], sx[:, None, None] + np.arange(bw)[None, None, :]]
            err = (((pieces - here[None]) ** 2).sum(-1) * known[None]).sum((1, 2))
            k = int(rng.choice(np.flatnonzero(err <= err.min() * 1.1 + 1e-12)))
            piece = pieces[k]
            take = np.ones((bh, bw), bool)
            cost = ((piece - here) ** 2).sum(-1)
            if x > 0 and known[:, :overlap].all():
                take[:, :overlap] &= min_cut(cost[:, :overlap])
            if y > 0 and known[:overlap].all():
                take[:overlap] &= min_cut(cost[:overlap].T).T
            put = (take | ~known) & todo
            here[put] = piece[put]
            known |= put
    return out


#: Settings of the re-made parts, tuned on the tuning cells only (cross-validated test, 80 cells):
#: the nucleus' edge width (px), the blur of the re-made cytoplasm (px), how far the quilted
#: chromatin texture may go below (pale) and above (dark) its profile, in standard deviations,
#: its gain, and the depth (px) of the nucleus' outer rim kept free of pale specks.
EDGE_WIDTH, BLUR, PALE_CLIP, DARK_CLIP, GAIN, RIM_DEPTH = 1.2, 0.6, 2.5, 2.5, 1.3, 4.0


def capture_of(features):
    """The canvas generator 4.0 draws the cell of ``features`` into (the same pick)."""
    from core.synth.canvas import load_canvas, pick_canvas, wants_touching

    return load_canvas(*pick_canvas(features.seed, wants_touching(features.rbc_overlap)))


def resynthesised_cell(features, variant: str) -> np.ndarray:
    """One normal cell of ``features`` on its 4.0 canvas, made by ``variant``: decoded RGB."""
    from core.synth.render import _soft, _write_jpeg, canvas_drawing, capture_model

    canvas = capture_of(features)
    if variant == "copy":
        return _write_jpeg(canvas.rgb, 75)[1]
    cell, real_nucleus = canvas.cell, canvas.nucleus
    if variant == "drawn-shape":
        drawing = canvas_drawing(features, canvas, capture_model("4.0"))
        nucleus = drawing.box.full(drawing.layers[3])
    else:
        nucleus = real_nucleus
    rng = np.random.default_rng([features.seed, 41])
    background = canvas.background.astype(np.float32)
    od = -np.log((canvas.rgb.astype(np.float32) + 1.0) / (background + 1.0))
    inside = ndi.distance_transform_edt(cell)
    # The cytoplasm where the real nucleus (and its blur) was, from the cytoplasm's own pieces.
    hole = ndi.binary_dilation(real_nucleus, iterations=3) & cell
    cytoplasm = quilt(od, cell & ~hole & (inside > 4), hole, rng)
    # The chromatin: the real nucleus' median density by depth below its edge, plus quilted
    # pieces of its own texture around that profile.
    depth_real = np.clip(np.floor(ndi.distance_transform_edt(real_nucleus)), 1, 11).astype(int)
    source = real_nucleus & (depth_real >= 2)
    profile = np.array([np.median(od[real_nucleus & (depth_real == d)], axis=0) if (real_nucleus & (depth_real == d)).any()
                        else np.median(od[real_nucleus], axis=0) for d in range(1, 12)])
    # What the depth profile leaves (chromatin clumps, the nucleus' colour variation) is quilted.
    residual = np.where(source[..., None], od - profile[depth_real - 1], 0.0)
    spread = residual[source].std(0)
    # Pale specks (nuclear windows, granules over the nucleus) would be copied as isolated dots.
    residual = GAIN * np.clip(residual, -PALE_CLIP * spread, DARK_CLIP * spread)
    depth_new = np.clip(np.floor(ndi.distance_transform_edt(nucleus)), 1, 11).astype(int)
    texture = np.where(nucleus[..., None], quilt(residual, source, nucleus, rng, block=14, overlap=4), 0.0)
    # Real chromatin is condensed under the nuclear membrane: no pale specks in the outer rim.
    rim = np.clip((ndi.distance_transform_edt(nucleus) - 1.0) / RIM_DEPTH, 0.0, 1.0)[..., None]
    chromatin = profile[depth_new - 1] + np.where(texture < 0, texture * rim, texture)
    edge = ndi.distance_transform_edt(~nucleus) - ndi.distance_transform_edt(nucleus)
    alpha = (_soft(edge + 0.5, EDGE_WIDTH) * cell)[..., None]
    made_od = (1 - alpha) * cytoplasm + alpha * chromatin
    # Quilting leaves pixel-scale seams in the cytoplasm that the optics of a real capture
    # would have softened: blur the re-made cytoplasm only (blurring the chromatin too made
    # the test better at telling; the rest of the cell stays as captured).
    remade = (ndi.binary_dilation(hole & ~ndi.binary_erosion(nucleus, iterations=2), iterations=1) & cell)[..., None]
    made_od = np.where(remade, ndi.gaussian_filter(made_od, (BLUR, BLUR, 0)), made_od)
    made = (background + 1.0) * np.exp(-made_od) - 1.0
    keep_real = 1.0 - np.clip(inside - 1.5, 0.0, 1.0)[..., None]      # the outline's own thin band
    img = keep_real * canvas.rgb + (1.0 - keep_real) * made
    return _write_jpeg(np.clip(np.rint(img), 0, 255).astype(np.uint8), 75)[1]


def main(argv=None) -> int:
    from core.synth import cell_features
    from core.synth.realism import (
        REALISM_SEED,
        cross_validated_accuracy,
        grouped_cv_accuracy,
        image_paths,
        is_held_out,
        load_capture,
        measure_cell,
        two_sample_test,
    )

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("real_dir")
    parser.add_argument("--cells", type=int, default=150)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=VARIANTS)
    args = parser.parse_args(argv)
    paths = image_paths(args.real_dir)
    real = np.array([measure_cell(load_capture(p)).features for p in paths])
    held_real = np.array([is_held_out(i) for i in range(len(real))])
    held = np.array([is_held_out(i) for i in range(args.cells)])
    features = [cell_features(REALISM_SEED, i, "normal") for i in range(args.cells)]
    names = [p.name for p, h in zip(paths, held_real) if not h]
    captures = [capture_of(f).name for f, h in zip(features, held) if not h]
    print("| variant | classifier | held out | CV | CV grouped by capture |")
    print("|---|---|---|---|---|")
    for variant in args.variants:
        synth = np.array([measure_cell(resynthesised_cell(f, variant)).features for f in features])
        for kind in ("logistic", "boosting"):
            test = two_sample_test(real[~held_real], synth[~held], real[held_real], synth[held], classifier=kind)
            cv = cross_validated_accuracy(real[~held_real], synth[~held], classifier=kind)
            grouped = grouped_cv_accuracy(real[~held_real], synth[~held], names, captures, classifier=kind)
            print(f"| {variant} | {kind} | {test.accuracy:.3f} | {cv:.3f} | {grouped:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
