"""The bundled demo set: 56 generated cells mirroring the study set, with annotations.

The study set had 23 normal and 23 dysplastic cells the model classified correctly
(prefixes TN/ZN and TD/ZD) and 5 + 5 it got wrong (WN: normal called dysplastic,
WD: dysplastic called normal), at the study threshold (score = P(normal) < 0.979
means dysplastic). :func:`build_demo` rebuilds that set from generated cells and the
demo model, so every prefix agrees with the demo model's prediction.

Demo annotations are what a careful but human rater would record: outlines traced
from the ground-truth masks, and cytoplasm/chromatin/lobe readings derived from the
latent features through seeded perception noise, so the rater sometimes disagrees
with the generator's class, as pathologists disagree with labels.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from core import config
from core.errors import DisplasiaError

from . import GENERATOR_VERSION, CellFeatures, cell_features, render_cell
from .cli import capture_id
from .store import capture_name, write_cell

#: Seeds of the candidate pools the demo set is drawn from.
DEMO_SEED = 5601
HARD_SEED = 5602
RATER_SEED = 5603
RATER = "demo-rater"
#: Annotations carry a fixed time stamp so the build is reproducible byte for byte.
ANNOTATION_TIME = "2026-11-26T00:00:00+00:00"
N_CORRECT = 23
N_WRONG = 5
N_REFERENCE = 12  # of the 23 correct per class, T-prefixed; the rest Z-prefixed
MAX_POOL = 4000


# --------------------------------------------------------------------------- rater

def _graded(signed: float):
    """Round a continuous signed reading to (sign, degree 0..3)."""
    value = int(np.clip(np.rint(signed), -3, 3))
    return value, abs(value)


def rate_cell(features: CellFeatures, rng: np.random.Generator) -> dict:
    """A rater's reading of one cell from its latent features, with perception noise.

    Granularity reads transparent below ~0.55 of normal density (the hypogranular
    cut-off is 1/3; raters see borderline cells both ways), chromatin reads
    heterogenic above ~0.42, lobes are counted with occasional miscounts of two- or
    six-lobed nuclei. Signed scores and total follow the study's rules.
    """
    g = features.granule_density * float(np.exp(rng.normal(0.0, 0.15))) - 0.15 * features.blur_sigma
    g_signed = 3.0 * (0.55 - g) / 0.55 if g < 0.55 else -3.0 * (g - 0.55) / 0.6
    g_value, g_degree = _graded(g_signed + rng.normal(0.0, 0.35))
    cytoplasm = {"state": "transparent" if (g_value > 0 or (g_value == 0 and g < 0.55)) else "granular",
                 "degree": g_degree}

    h = features.chromatin_heterogeneity + rng.normal(0.0, 0.08)
    c_signed = 3.0 * (h - 0.42) / 0.5 if h > 0.42 else -3.0 * (0.42 - h) / 0.42
    c_value, c_degree = _graded(c_signed + rng.normal(0.0, 0.35))
    chromatin = {"state": "heterogenic" if (c_value > 0 or (c_value == 0 and h > 0.42)) else "homogenic",
                 "degree": c_degree}

    lobe_state = features.lobe_state
    if features.lobe_count in (2, 6) and features.nucleus_shape in ("segmented", "hypersegmented") \
            and rng.random() < 0.2:
        lobe_state = "normal"  # overlapping lobes miscounted
    elif lobe_state == "normal" and features.lobe_count == 3 and rng.random() < 0.04:
        lobe_state = "hyposegmented"

    s_g = g_degree if cytoplasm["state"] == "transparent" else -g_degree
    s_c = c_degree if chromatin["state"] == "heterogenic" else -c_degree
    s_l = 0 if lobe_state == "normal" else 1
    total = s_g + s_c + s_l
    return {
        "cytoplasm": cytoplasm,
        "chromatin": chromatin,
        "lobes": {"state": lobe_state},
        "condition": "dysplastic" if total >= 1 else "normal",
        "total": total,
    }


def mask_polygons(mask: np.ndarray) -> list[list[list[float]]]:
    """Outline each region of ``mask`` as ``[x, y]`` points, in the annotation convention
    (pixel (r, c) has its centre at (c + 0.5, r + 0.5)), so the outlines rasterise back onto
    the ground-truth masks. The same tracing as the automatic outline suggestion."""
    from core.annotations.segment import mask_polygons as trace

    return [[[round(x, 1), round(y, 1)] for x, y in polygon] for polygon in trace(mask, min_area=12)]


def demo_annotation(image_name: str, jpeg: bytes, masks: dict, features: CellFeatures,
                    rng: np.random.Generator) -> dict:
    """The demo rater's annotation in the project schema (``displasia-annotation/1``)."""
    reading = rate_cell(features, rng)
    shapes = [{"label": "cytoplasm", "points": p} for p in mask_polygons(masks["cell"])[:1]]
    shapes += [{"label": "nucleus", "points": p} for p in mask_polygons(masks["nucleus"])]
    h, w = masks["cell"].shape
    return {
        "schema": "displasia-annotation/1",
        "image": image_name,
        "image_sha256": hashlib.sha256(jpeg).hexdigest(),
        "annotator": RATER,
        "image_size": [int(w), int(h)],
        "cytoplasm": reading["cytoplasm"],
        "chromatin": reading["chromatin"],
        "lobes": reading["lobes"],
        "condition": reading["condition"],
        "shapes": shapes,
        "note": "Synthetic demo annotation derived from the generator's latent features with rater noise.",
        "updated": ANNOTATION_TIME,
    }


# --------------------------------------------------------------------------- selection

def _is_hard(f: CellFeatures) -> bool:
    if f.kind == "dysplastic":
        return len(f.abnormal_features) == 1
    return (f.granule_density < 0.7 or f.chromatin_heterogeneity > 0.3 or f.lobe_count == 2
            or f.drumstick or f.blur_sigma > 0.7)


def _score_cells(loaded, cells) -> np.ndarray:
    from core.predict import predict_scores
    from core.preprocess import to_model_input

    h, w = loaded.description.input_shape[:2]
    batch = np.stack([to_model_input(c.rgb, size=(h, w), interpolation="nearest") for c in cells])
    return np.asarray(predict_scores(loaded, batch), dtype=np.float64)


def select_demo_cells(loaded, threshold: float = config.DEFAULT_THRESHOLD, *, log=print):
    """Pick the 56 demo cells by the model's call at ``threshold``.

    Returns a dict group -> list of ``(group, cell, score, pool_seed, index)`` with
    groups TN (normal, called normal; split into TN/ZN later), TD, WN (normal called
    dysplastic) and WD (dysplastic called normal). Cells come from the demo pool in
    index order; if the misclassified groups are short, from a pool of hard cells
    (borderline normal cells, dysplastic cells with a single abnormal feature).
    """
    want = {"TN": N_CORRECT, "TD": N_CORRECT, "WN": N_WRONG, "WD": N_WRONG}
    found: dict[str, list] = {k: [] for k in want}

    def take(pool_seed, index_iter, kinds, hard_only):
        batch = []
        for i in index_iter:
            kind = kinds(i)
            f = cell_features(pool_seed, i, kind)
            if hard_only and not _is_hard(f):
                continue
            needed = ("WN",) if f.kind == "normal" else ("WD",)
            if not hard_only:
                needed = ("TN", "WN") if f.kind == "normal" else ("TD", "WD")
            if all(len(found[g]) >= want[g] for g in needed):
                continue
            batch.append((i, render_cell(f)))
            if len(batch) == 32:
                _place(batch, pool_seed)
                batch = []
            if all(len(found[g]) >= want[g] for g in want):
                break
        if batch:
            _place(batch, pool_seed)

    def _place(batch, pool_seed):
        scores = _score_cells(loaded, [c for _, c in batch])
        for (i, cell), s in zip(batch, scores):
            called_normal = s >= threshold
            normal = cell.features.kind == "normal"
            group = ("TN" if called_normal else "WN") if normal else ("WD" if called_normal else "TD")
            if len(found[group]) < want[group]:
                found[group].append((group, cell, float(s), pool_seed, i))

    take(DEMO_SEED, range(MAX_POOL), lambda i: "normal" if i % 2 == 0 else "dysplastic", False)
    log(f"demo pool: {', '.join(f'{g} {len(v)}/{want[g]}' for g, v in found.items())}")
    if any(len(found[g]) < want[g] for g in want):
        take(HARD_SEED, range(MAX_POOL * 5), lambda i: "normal" if i % 2 == 0 else "dysplastic", True)
        log(f"after hard pool: {', '.join(f'{g} {len(v)}/{want[g]}' for g, v in found.items())}")
    missing = [g for g in want if len(found[g]) < want[g]]
    if missing:
        raise DisplasiaError(f"Could not find enough demo cells for {', '.join(missing)} "
                             f"with this model at threshold {threshold}.")
    return found


def _stem(group: str, position: int, cell, pool_seed: int, index: int) -> str:
    if group in ("TN", "TD"):
        prefix = group if position < N_REFERENCE else "Z" + group[1]
    else:
        prefix = group
    return f"{prefix}_{capture_name(cell, capture_id(pool_seed, index))}"


def build_demo(model_dir, out_dir, *, contact_sheet=None, threshold: float = config.DEFAULT_THRESHOLD,
               log=print) -> list[dict]:
    """Write the demo set (images, truth, annotations, manifest) and the contact sheet."""
    from core.model_io import load_model

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    json_path = model_dir / config.DEMO_MODEL_JSON.name
    weights_path = model_dir / config.DEMO_MODEL_WEIGHTS.name
    if not json_path.exists() or not weights_path.exists():
        raise DisplasiaError(f"No demo model in {model_dir}: run `python -m core train-demo` first.")
    loaded = load_model(json_path, weights_path)
    found = select_demo_cells(loaded, threshold, log=log)

    # Start from an empty set so stale cells of an earlier build never linger.
    for old in list(out_dir.glob("*.jpg")) + list((out_dir / "truth").glob("*")) + \
            list((out_dir / "annotations").glob("*.json")):
        old.unlink()
    (out_dir / "annotations").mkdir(parents=True, exist_ok=True)
    manifest = []
    for group in ("TN", "TD", "WN", "WD"):
        for position, (_, cell, score, pool_seed, index) in enumerate(found[group]):
            stem = _stem(group, position, cell, pool_seed, index)
            prediction = "normal" if score >= threshold else "dysplastic"
            extra = {"set_seed": pool_seed, "set_index": index, "demo_group": stem[:2],
                     "model_score": round(score, 6), "model_prediction": prediction,
                     "threshold": threshold}
            image_path = write_cell(cell, out_dir, stem, extra=extra)
            rng = np.random.default_rng([RATER_SEED, pool_seed, index])
            masks = {"cell": cell.cell, "nucleus": cell.nucleus}
            annotation = demo_annotation(image_path.name, cell.jpeg, masks, cell.features, rng)
            (out_dir / "annotations" / f"{stem}.json").write_text(json.dumps(annotation, indent=1) + "\n",
                                                                   encoding="utf-8")
            manifest.append({"image": image_path.name, "group": stem[:2], "class": cell.features.kind,
                             "score": round(score, 6), "prediction": prediction,
                             "rater_condition": annotation["condition"]})
    manifest.sort(key=lambda m: m["image"])
    record = {"generator_version": GENERATOR_VERSION, "threshold": threshold,
              "model": {"json": json_path.name, "weights": weights_path.name}, "cells": manifest}
    (out_dir / "manifest.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    agree = sum(m["rater_condition"] == m["class"] for m in manifest)
    log(f"wrote {len(manifest)} demo cells to {out_dir}; the demo rater agrees with the generator class "
        f"on {agree}/{len(manifest)}")
    if contact_sheet is not None:
        write_contact_sheet(out_dir, manifest, Path(contact_sheet))
        log(f"contact sheet: {contact_sheet}")
    return manifest


# --------------------------------------------------------------------------- contact sheet

def write_contact_sheet(demo_dir: Path, manifest: list[dict], path: Path, *, thumb: int = 112,
                        columns: int = 4) -> None:
    """Normal cells (left) and dysplastic cells (right), each captioned with name and score."""
    caption = 14
    cell_w, cell_h = thumb, thumb + caption
    gap = 24
    groups = {"normal": [m for m in manifest if m["class"] == "normal"],
              "dysplastic": [m for m in manifest if m["class"] == "dysplastic"]}
    rows = max(-(-len(v) // columns) for v in groups.values())
    header = 22
    width = 2 * columns * cell_w + gap
    height = header + rows * cell_h
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for side, (kind, items) in enumerate(groups.items()):
        x0 = side * (columns * cell_w + gap)
        draw.text((x0 + 4, 4), f"{kind} (generator class): T/Z correct, W misclassified", fill=(0, 0, 0))
        # Correct ones first, misclassified (W) last.
        items = sorted(items, key=lambda m: (m["group"].startswith("W"), m["image"]))
        for k, m in enumerate(items):
            r, c = divmod(k, columns)
            with Image.open(demo_dir / m["image"]) as im:
                tile = im.convert("RGB").resize((thumb, thumb), Image.Resampling.BILINEAR)
            x, y = x0 + c * cell_w, header + r * cell_h
            sheet.paste(tile, (x, y))
            if m["group"].startswith("W"):
                draw.rectangle([x, y, x + thumb - 1, y + thumb - 1], outline=(200, 30, 30), width=2)
            stem = m["image"][:-4]
            draw.text((x + 2, y + thumb + 1), f"{stem[:2]} {stem[-7:]}  {m['score']:.3f}", fill=(0, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)
