"""Export annotations: the score table (CSV), project JSON, mask PNGs and overlay PNGs.

File names derive from the image name and the annotator through :func:`export_stem`,
which keeps only safe characters, so names read from imported files can never write
outside the chosen folder.
"""
from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from core.errors import DisplasiaError

from .masks import cell_masks, mask_png_bytes
from .schema import Annotation

CSV_COLUMNS = ("image", "annotator", "cytoplasm_state", "cytoplasm_score", "chromatin_state",
               "chromatin_score", "lobes_state", "lobes_score", "total", "condition", "updated",
               "annotator_verified")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def score_rows(annotations: Iterable[Annotation], identities: dict | None = None) -> list[dict]:
    """One dict per annotation with :data:`CSV_COLUMNS` (signed scores), for tables.

    ``identities`` (``store.latest_identities()``) fills ``annotator_verified``: "yes" when
    the annotator was logged in, "no" for a self-declared name or an import, "" if unknown.
    """
    from .store import VERIFIED_IDENTITIES

    rows = []
    for a in annotations:
        verified = "" if identities is None else \
            ("yes" if identities.get((a.image_sha256, a.annotator)) in VERIFIED_IDENTITIES else "no")
        s = a.scores
        rows.append({"image": a.image, "annotator": a.annotator,
                     "cytoplasm_state": a.cytoplasm.state.value, "cytoplasm_score": s.cytoplasm,
                     "chromatin_state": a.chromatin.state.value, "chromatin_score": s.chromatin,
                     "lobes_state": a.lobes.value, "lobes_score": s.lobes, "total": s.total,
                     "condition": a.condition.value, "updated": a.updated or "",
                     "annotator_verified": verified})
    return rows


def _csv_safe(value):
    # A cell starting with = + - @ (tab, CR) is run as a formula by spreadsheet programs.
    from core.io_utils import csv_safe

    return csv_safe(value)


def write_csv(annotations: Iterable[Annotation], out: str | Path, identities: dict | None = None) -> int:
    """Write the score table; return the number of rows."""
    rows = score_rows(annotations, identities)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_safe(v) for k, v in row.items()})
    return len(rows)


def export_stem(annotation: Annotation) -> str:
    """Safe file stem ``<image stem>__<annotator>`` (only letters, digits, . _ -).

    >>> from core.annotations.schema import Graded
    >>> a = Annotation("TN_SNE_1.jpg", "0" * 64, "Dr Ana", (10, 10), Graded("granular", 1),
    ...                Graded("homogenic", 1), "normal", "normal")
    >>> export_stem(a)
    'TN_SNE_1__Dr_Ana'
    """
    stem = Path(annotation.image).stem
    name = f"{_UNSAFE.sub('_', stem).strip('._') or 'image'}__{_UNSAFE.sub('_', annotation.annotator)}"
    return name[:200]


def _unique_stems(annotations: list[Annotation]) -> list[str]:
    stems = [export_stem(a) for a in annotations]
    seen: dict[str, int] = {}
    for s in stems:
        seen[s] = seen.get(s, 0) + 1
    return [s if seen[s] == 1 else f"{s}__{a.image_sha256[:8]}" for s, a in zip(stems, annotations)]


def write_json_files(annotations: Iterable[Annotation], folder: str | Path) -> list[Path]:
    """One project JSON file per annotation, ``<image stem>__<annotator>.json``."""
    annotations = list(annotations)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for a, stem in zip(annotations, _unique_stems(annotations)):
        path = folder / f"{stem}.json"
        path.write_text(a.to_json_text() + "\n", encoding="utf-8")
        written.append(path)
    return written


def write_mask_files(annotations: Iterable[Annotation], folder: str | Path) -> list[Path]:
    """``<stem>_cell.png``, ``_nucleus.png``, ``_cytoplasm.png`` (0/255) at image resolution."""
    annotations = list(annotations)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for a, stem in zip(annotations, _unique_stems(annotations)):
        masks = cell_masks(a)
        for part in ("cell", "nucleus", "cytoplasm"):
            path = folder / f"{stem}_{part}.png"
            path.write_bytes(mask_png_bytes(getattr(masks, part)))
            written.append(path)
    return written


def title_lines(annotation: Annotation) -> list[str]:
    """The overlay's title block: name, states and signed scores, total, condition."""
    a, s = annotation, annotation.scores
    verdict = f"total {s.total:+d} reads {s.reads_as.value}; condition {a.condition.value}"
    if a.disagrees:
        verdict += "  (DISAGREE)"
    return [f"{a.image}   annotator: {a.annotator}",
            f"cytoplasm {a.cytoplasm.state.value} {s.cytoplasm:+d}   "
            f"chromatin {a.chromatin.state.value} {s.chromatin:+d}   "
            f"lobes {a.lobes.value} {s.lobes:+d}",
            verdict]


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:          # Pillow built without FreeType
        return ImageFont.load_default()


def overlay_image(rgb: np.ndarray | Image.Image, annotation: Annotation, *, line_width: int = 2,
                  font_size: int = 12) -> Image.Image:
    """The image with the outlines in their state colours under a title block.

    Parameters
    ----------
    rgb : (H, W, 3) ndarray of uint8 or PIL image
        The annotated image at its original size.
    """
    img = rgb.convert("RGB") if isinstance(rgb, Image.Image) else Image.fromarray(np.asarray(rgb, np.uint8))
    if img.size != tuple(annotation.image_size):
        raise DisplasiaError(f"image is {img.size[0]}x{img.size[1]} but the annotation is for "
                             f"{annotation.image_size[0]}x{annotation.image_size[1]}")
    draw = ImageDraw.Draw(img)
    for shape in annotation.shapes:
        pts = list(shape.points) + [shape.points[0]]
        draw.line(pts, fill=annotation.colour_of(shape), width=line_width, joint="curve")
    font = _font(font_size)
    lines = title_lines(annotation)
    line_h = font_size + 4
    width = max(img.size[0], 8 + max(int(draw.textlength(t, font=font)) for t in lines))
    canvas = Image.new("RGB", (width, img.size[1] + line_h * len(lines) + 8), "white")
    text = ImageDraw.Draw(canvas)
    for k, line in enumerate(lines):
        colour = "#b03a2e" if "DISAGREE" in line else "black"
        text.text((4, 4 + k * line_h), line, fill=colour, font=font)
    canvas.paste(img, (0, line_h * len(lines) + 8))
    return canvas


def _hash_index(folder: Path) -> dict[str, Path]:
    index = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.suffix.lower() in (
                ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"):
            index.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), path)
    return index


def find_image(annotation: Annotation, images_dir: Path, index: dict | None = None) -> Path | None:
    """The file in ``images_dir`` with the annotation's content hash (name tried first)."""
    direct = images_dir / annotation.image      # image is a validated bare file name
    if direct.is_file() and hashlib.sha256(direct.read_bytes()).hexdigest() == annotation.image_sha256:
        return direct
    if index is None:
        index = _hash_index(images_dir)
    return index.get(annotation.image_sha256)


def write_overlays(annotations: Iterable[Annotation], folder: str | Path, images_dir: str | Path
                   ) -> tuple[list[Path], list[str]]:
    """``<stem>_overlay.png`` per annotation; returns (written, problems)."""
    annotations = list(annotations)
    folder, images_dir = Path(folder), Path(images_dir)
    if not images_dir.is_dir():
        raise DisplasiaError(f"image folder not found: {images_dir}")
    folder.mkdir(parents=True, exist_ok=True)
    written, problems, index = [], [], None
    for a, stem in zip(annotations, _unique_stems(annotations)):
        source = find_image(a, images_dir, index)
        if source is None and index is None:
            index = _hash_index(images_dir)
            source = index.get(a.image_sha256)
        if source is None:
            problems.append(f"{a.image} ({a.annotator}): no image with its content hash in {images_dir}")
            continue
        try:
            with Image.open(source) as im:
                picture = overlay_image(im.convert("RGB"), a)
        except DisplasiaError as exc:
            problems.append(f"{a.image} ({a.annotator}): {exc}")
            continue
        path = folder / f"{stem}_overlay.png"
        picture.save(path, format="PNG")
        written.append(path)
    return written, problems


@dataclass(frozen=True)
class ExportReport:
    rows: int = 0
    json_files: int = 0
    mask_files: int = 0
    overlays: int = 0
    problems: tuple[str, ...] = ()


def export_store(store, *, csv_path=None, json_dir=None, masks_dir=None, overlays_dir=None,
                 images_dir=None) -> ExportReport:
    """Export the latest reading of every (image, annotator) pair of ``store``."""
    if overlays_dir is not None and images_dir is None:
        raise DisplasiaError("overlays need the folder of the images (--images)")
    annotations = store.all_latest()
    rows = write_csv(annotations, csv_path, store.latest_identities()) if csv_path is not None else 0
    n_json = len(write_json_files(annotations, json_dir)) if json_dir is not None else 0
    n_masks = len(write_mask_files(annotations, masks_dir)) if masks_dir is not None else 0
    overlays, problems = ([], [])
    if overlays_dir is not None:
        overlays, problems = write_overlays(annotations, overlays_dir, images_dir)
    return ExportReport(rows, n_json, n_masks, len(overlays), tuple(problems))
