"""Write and read synthetic cells with their ground truth.

Layout (the same for ``python -m core synth`` output and for the bundled demo set)::

    DIR/<stem>.jpg                      the image, exactly the generated JPEG bytes
    DIR/truth/<stem>_cell.png           whole-cell mask (8-bit, 0 or 255)
    DIR/truth/<stem>_nucleus.png        nucleus mask
    DIR/truth/<stem>_cytoplasm.png      cell minus nucleus
    DIR/truth/<stem>_granules.png       granule pixels inside the cytoplasm
    DIR/truth/<stem>.json               latent features, class and measured geometry
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from .render import SyntheticCell

MASK_NAMES = ("cell", "nucleus", "cytoplasm", "granules")


def capture_name(cell: SyntheticCell, capture_id: int) -> str:
    """CellaVision-style capture name: ``BNE_`` for a band nucleus, ``SNE_`` otherwise."""
    return f"{'BNE' if cell.features.is_band else 'SNE'}_{int(capture_id):07d}"


def write_cell(cell: SyntheticCell, out_dir, stem: str, *, extra: dict | None = None) -> Path:
    """Write the image and its ground truth under ``out_dir``; returns the image path."""
    out_dir = Path(out_dir)
    truth_dir = out_dir / "truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    image_path = out_dir / f"{stem}.jpg"
    image_path.write_bytes(cell.jpeg)
    for name in MASK_NAMES:
        mask = getattr(cell, name)
        Image.fromarray(mask.astype(np.uint8) * 255, "L").save(truth_dir / f"{stem}_{name}.png", optimize=True)
    record = {"image": image_path.name, "generator_version": cell.version, **cell.truth()}
    if extra:
        record.update(extra)
    (truth_dir / f"{stem}.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return image_path


def read_masks(out_dir, stem: str) -> dict[str, np.ndarray]:
    """The four ground-truth masks of ``stem`` as ``(H, W) bool`` arrays."""
    truth_dir = Path(out_dir) / "truth"
    return {name: np.asarray(Image.open(truth_dir / f"{stem}_{name}.png")) > 127 for name in MASK_NAMES}


def read_truth(out_dir, stem: str) -> dict:
    """The ground-truth JSON record of ``stem``."""
    return json.loads((Path(out_dir) / "truth" / f"{stem}.json").read_text(encoding="utf-8"))
