"""Import the earlier annotation tool's ``<image stem>_json.txt`` files.

That tool stored, beside each image, a JSON document with Plotly ``shapes`` (closed paths
``"M x,y L x,y ... Z"`` in original image pixels whose ``line.color`` tells the region and
its state), ``priorities`` (the magnitudes ``[[cytoplasm, chromatin, lobes]]``, in some
files not nested), ``lobes`` (``["Hyposegmented"]``, ``["Normal"]``, ...) and
``cellstatus`` (``["DYSPLASTIC"]`` or ``["HEALTHY"]``).

A file is converted completely in memory before anything is written, so a broken file is
skipped as a whole with a reason, and the other files still import.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from core.errors import DisplasiaError

from .schema import (
    MAX_POINTS_PER_SHAPE,
    MAX_SHAPES,
    Annotation,
    ChromatinState,
    Condition,
    CytoplasmState,
    Graded,
    LobeState,
    Shape,
    ShapeLabel,
    state_of_colour,
)

LEGACY_SUFFIX = "_json.txt"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
MAX_LEGACY_BYTES = 5 * 1024 * 1024
MAX_IMAGE_BYTES = 50 * 1024 * 1024
#: Deepest JSON nesting read (the format needs 4); deeper files are refused before parsing.
MAX_LEGACY_DEPTH = 32
#: Outline points may lie at most this many image sizes outside the image (then clipped).
_MAX_OUTSIDE = 1.0

_TOKEN = re.compile(r"[A-Za-z]|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_LOBES = {"hyposegmented": LobeState.HYPOSEGMENTED, "normal": LobeState.NORMAL,
          "hypersegmented": LobeState.HYPERSEGMENTED}
_STATUS = {"dysplastic": Condition.DYSPLASTIC, "healthy": Condition.NORMAL,
           "normal": Condition.NORMAL}


@dataclass(frozen=True)
class LegacyImportReport:
    """What :func:`import_legacy_dir` did, file by file."""

    imported: tuple[tuple[str, str, int], ...] = ()    # (legacy file, image, version)
    unchanged: tuple[str, ...] = ()                     # already in the store
    skipped: tuple[tuple[str, str], ...] = ()           # (legacy file, reason)
    warnings: tuple[tuple[str, str], ...] = ()          # (legacy file, note)

    def lines(self) -> list[str]:
        out = [f"imported {f} -> {img} (version {v})" for f, img, v in self.imported]
        out += [f"unchanged {f} (already imported)" for f in self.unchanged]
        out += [f"skipped {f}: {why}" for f, why in self.skipped]
        out += [f"warning {f}: {note}" for f, note in self.warnings]
        out.append(f"{len(self.imported)} imported, {len(self.unchanged)} unchanged, "
                   f"{len(self.skipped)} skipped")
        return out


def parse_plotly_path(path: str) -> list[list[tuple[float, float]]]:
    """Sub-paths of a Plotly SVG path made of absolute M, L, H, V and Z commands.

    >>> parse_plotly_path("M 1,2 L 5,2 L 5,6 Z")
    [[(1.0, 2.0), (5.0, 2.0), (5.0, 6.0)]]
    """
    if not isinstance(path, str):
        raise DisplasiaError("a shape's path is not text")
    tokens = _TOKEN.findall(path.replace(",", " "))
    if not tokens:
        raise DisplasiaError("a shape has an empty path")
    if tokens[0] != "M":
        raise DisplasiaError("a shape path does not start with M")
    leftover = _TOKEN.sub("", path).replace(",", "").strip()
    if leftover:
        raise DisplasiaError(f"a shape path has unreadable text {leftover[:20]!r}")
    subpaths: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    command, i = None, 0

    def number() -> float:
        nonlocal i
        if i >= len(tokens) or tokens[i].isalpha():
            raise DisplasiaError(f"a shape path command {command} lacks a number")
        value = float(tokens[i])
        i += 1
        if not math.isfinite(value):
            raise DisplasiaError("a shape path has a coordinate that is not a number")
        return value

    while i < len(tokens):
        if tokens[i].isalpha():
            command = tokens[i]
            i += 1
            if command == "Z":
                if current:
                    subpaths.append(current)
                current = []
                continue
            if command not in "MLHV":
                raise DisplasiaError(f"unsupported path command {command!r} "
                                     "(only M, L, H, V and Z are read)")
        elif command is None:
            raise DisplasiaError("a shape path does not start with M")
        if command == "M":
            if current:
                subpaths.append(current)
            current = [(number(), number())]
            command = "L"      # SVG: extra pairs after M are line-tos
        elif command == "L":
            current.append((number(), number()))
        elif command == "H":
            current.append((number(), current[-1][1] if current else 0.0))
        elif command == "V":
            current.append((current[-1][0] if current else 0.0, number()))
        elif command == "Z":
            raise DisplasiaError("a shape path has numbers after Z")
        if sum(len(p) for p in subpaths) + len(current) > MAX_POINTS_PER_SHAPE:
            raise DisplasiaError(f"a shape path has more than {MAX_POINTS_PER_SHAPE} points")
    if current:
        subpaths.append(current)
    return subpaths


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _ellipse(x0: float, y0: float, x1: float, y1: float, n: int = 72) -> list[tuple[float, float]]:
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, abs(x1 - x0) / 2, abs(y1 - y0) / 2
    return [(cx + rx * math.cos(2 * math.pi * k / n), cy + ry * math.sin(2 * math.pi * k / n))
            for k in range(n)]


def _shape_polygons(item: Mapping[str, Any]) -> list[list[tuple[float, float]]]:
    kind = item.get("type", "path")
    if kind == "path":
        return parse_plotly_path(item.get("path"))
    if kind in ("rect", "circle"):
        try:
            x0, y0, x1, y1 = (float(item[k]) for k in ("x0", "y0", "x1", "y1"))
        except (KeyError, TypeError, ValueError, OverflowError):
            raise DisplasiaError(f"a {kind} shape lacks numeric x0, y0, x1, y1") from None
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
            raise DisplasiaError(f"a {kind} shape has a coordinate that is not a finite number")
        if kind == "rect":
            return [[(x0, y0), (x1, y0), (x1, y1), (x0, y1)]]
        return [_ellipse(x0, y0, x1, y1)]
    raise DisplasiaError(f"unsupported shape type {kind!r}")


def _magnitudes(priorities: Any) -> tuple[int, int, int]:
    """(cytoplasm, chromatin, lobes) magnitudes from nested or flat ``priorities``."""
    flat = priorities
    if isinstance(flat, list) and len(flat) == 1 and isinstance(flat[0], list):
        flat = flat[0]
    if not isinstance(flat, list) or len(flat) != 3:
        raise DisplasiaError(f"priorities must be [[cytoplasm, chromatin, lobes]] or "
                             f"[cytoplasm, chromatin, lobes], got {_short(priorities)}")
    out = []
    for value in flat:
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3:
            raise DisplasiaError(f"priorities must hold whole numbers 0-3, got {_short(priorities)}")
        out.append(value)
    return out[0], out[1], out[2]


def _single(doc: Mapping[str, Any], key: str, table: dict) -> Any:
    value = doc.get(key)
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, str):
        raise DisplasiaError(f"{key} must be one text value, got {_short(value)}")
    text = value.strip().lower()
    for name, result in table.items():
        if text == name or text.startswith(name + " "):
            return result
    raise DisplasiaError(f"{key} value {_short(value)} is not one of {', '.join(table)}")


def legacy_to_annotation(doc: Any, *, image: str, image_sha256: str, image_size: tuple[int, int],
                         annotator: str = "legacy", updated: str | None = None
                         ) -> tuple[Annotation, list[str]]:
    """Convert one parsed legacy document; return the annotation and warnings.

    Raises :class:`DisplasiaError` when the document cannot be read as a whole.
    """
    if not isinstance(doc, Mapping):
        raise DisplasiaError("the file is not a JSON object")
    for key in ("shapes", "priorities", "lobes", "cellstatus"):
        if key not in doc:
            raise DisplasiaError(f"the file lacks '{key}'")
    raw_shapes = doc["shapes"]
    if not isinstance(raw_shapes, list):
        raise DisplasiaError("'shapes' is not a list")
    c_mag, ch_mag, l_mag = _magnitudes(doc["priorities"])
    lobes = _single(doc, "lobes", _LOBES)
    condition = _single(doc, "cellstatus", _STATUS)
    width, height = image_size
    warnings: list[str] = []
    shapes: list[Shape] = []
    states: dict[ShapeLabel, set] = {ShapeLabel.CYTOPLASM: set(), ShapeLabel.NUCLEUS: set()}
    clipped = 0
    for n, item in enumerate(raw_shapes):
        if not isinstance(item, Mapping):
            raise DisplasiaError(f"shape {n} is not an object")
        line = item.get("line")
        colour = line.get("color") if isinstance(line, Mapping) else None
        meaning = state_of_colour(colour)
        if meaning is None:
            warnings.append(f"shape {n} has colour {_short(colour, 30)} that names no region; ignored")
            continue
        label, state = meaning
        states[label].add(state)
        for points in _shape_polygons(item):
            if len(points) < 3:
                warnings.append(f"shape {n} has fewer than 3 points; ignored")
                continue
            far = [(x, y) for x, y in points
                   if not (-_MAX_OUTSIDE * width <= x <= (1 + _MAX_OUTSIDE) * width
                           and -_MAX_OUTSIDE * height <= y <= (1 + _MAX_OUTSIDE) * height)]
            if far:
                raise DisplasiaError(f"shape {n} lies far outside the {width}x{height} image "
                                     f"(point {far[0][0]:.4g},{far[0][1]:.4g})")
            inside = [(min(max(x, 0.0), width), min(max(y, 0.0), height)) for x, y in points]
            clipped += sum(p != q for p, q in zip(points, inside))
            if _area(inside) < 1.0:
                raise DisplasiaError(f"shape {n} has no area inside the image (under one pixel)")
            shapes.append(Shape(label, tuple(inside)))
    if len(shapes) > MAX_SHAPES:
        raise DisplasiaError(f"the file has more than {MAX_SHAPES} outlines")
    if clipped:
        warnings.append(f"{clipped} outline point(s) outside the image were moved to its edge")
    cyto_state = _state(states[ShapeLabel.CYTOPLASM], c_mag, "cytoplasm", CytoplasmState.GRANULAR,
                        warnings)
    chroma_state = _state(states[ShapeLabel.NUCLEUS], ch_mag, "chromatin", ChromatinState.HOMOGENIC,
                          warnings)
    if (l_mag > 0) != (lobes is not LobeState.NORMAL):
        warnings.append(f"lobe magnitude {l_mag} and lobe state {lobes.value} disagree; "
                        "the lobe state is used")
    annotation = Annotation(image=image, image_sha256=image_sha256, annotator=annotator,
                            image_size=(width, height), cytoplasm=Graded(cyto_state, c_mag),
                            chromatin=Graded(chroma_state, ch_mag), lobes=lobes,
                            condition=condition, shapes=tuple(shapes), note="", updated=updated)
    return annotation, warnings


def _area(points) -> float:
    """Shoelace area of a polygon, in square pixels."""
    total = 0.0
    for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1]):
        total += x0 * y1 - x1 * y0
    return abs(total) / 2.0


def _state(found: set, degree: int, what: str, neutral, warnings: list[str]):
    if len(found) > 1:
        raise DisplasiaError(f"outline colours give conflicting {what} states: "
                             + ", ".join(sorted(s.value for s in found)))
    if found:
        return next(iter(found))
    if degree == 0:
        warnings.append(f"no outline colour gives the {what} state; degree is 0, "
                        f"recorded as {neutral.value}")
        return neutral
    raise DisplasiaError(f"no outline colour gives the {what} state (degree {degree})")


def image_beside(legacy_file: Path, listing: dict[Path, list[Path]] | None = None) -> Path:
    """The image file that a ``<stem>_json.txt`` file describes, from the same folder.

    ``listing`` caches folder contents across calls (folder -> image files).
    """
    stem = legacy_file.name[: -len(LEGACY_SUFFIX)]
    folder = legacy_file.parent
    if listing is None:
        listing = {}
    if folder not in listing:
        listing[folder] = [p for p in folder.iterdir()
                           if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.is_symlink()]
    candidates = {p.suffix.lower(): p for p in listing[folder] if p.stem == stem}
    for suffix in IMAGE_SUFFIXES:
        if suffix in candidates:
            return candidates[suffix]
    raise DisplasiaError(f"no image named {stem}.jpg (or .png, .tif, .bmp) beside it")


def image_identity(data: bytes) -> tuple[str, tuple[int, int]]:
    """(sha256 of the file bytes, (width, height)) of an encoded image."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            size = img.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise DisplasiaError(f"the image cannot be read ({exc.__class__.__name__})") from None
    return hashlib.sha256(data).hexdigest(), (int(size[0]), int(size[1]))


def read_legacy_bytes(text: bytes, image_bytes: bytes, image_name: str, *,
                      annotator: str = "legacy", updated: str | None = None
                      ) -> tuple[Annotation, list[str]]:
    """Convert an uploaded legacy file and its image (for the dashboard's import)."""
    if len(text) > MAX_LEGACY_BYTES:
        raise DisplasiaError("the legacy file is larger than 5 MB")
    from core.model_check import json_depth

    depth = json_depth(text) if text.count(b"[") + text.count(b"{") > MAX_LEGACY_DEPTH else 0
    if depth > MAX_LEGACY_DEPTH:
        raise DisplasiaError(f"the JSON is nested {depth} levels deep (at most {MAX_LEGACY_DEPTH})")
    try:
        doc = json.loads(text.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DisplasiaError(f"not valid JSON ({_short(str(exc), 80)})") from None
    sha, size = image_identity(image_bytes)
    return legacy_to_annotation(doc, image=Path(image_name).name, image_sha256=sha, image_size=size,
                                annotator=annotator, updated=updated)


def find_legacy_files(folder: Path) -> list[Path]:
    """Every ``*_json.txt`` under ``folder`` (sub-folders too, symlinks not followed)."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(LEGACY_SUFFIX) and len(name) > len(LEGACY_SUFFIX):
                path = Path(root) / name
                if not path.is_symlink():
                    found.append(path)
    return found


def import_legacy_dir(store, folder: str | Path, *, annotator: str = "legacy") -> LegacyImportReport:
    """Import every legacy file under ``folder`` into ``store`` (idempotent).

    Each file is read and converted completely, then saved in one transaction; a file
    that fails at any step is skipped with its reason and nothing of it is written.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DisplasiaError(f"folder not found: {folder}")
    imported, unchanged, skipped, warned = [], [], [], []
    listing: dict[Path, list[Path]] = {}
    for file in find_legacy_files(folder):
        rel = str(file.relative_to(folder))
        try:
            if file.stat().st_size > MAX_LEGACY_BYTES:
                raise DisplasiaError("larger than 5 MB")
            image_path = image_beside(file, listing)
            if image_path.stat().st_size > MAX_IMAGE_BYTES:
                raise DisplasiaError(f"image {image_path.name} is larger than 50 MB")
            updated = datetime.fromtimestamp(file.stat().st_mtime, UTC).isoformat(
                timespec="seconds")
            annotation, notes = read_legacy_bytes(file.read_bytes(), image_path.read_bytes(),
                                                  image_path.name, annotator=annotator,
                                                  updated=updated)
            version = store.import_annotation(annotation, path=str(image_path))
        except DisplasiaError as exc:
            skipped.append((rel, str(exc)))
            continue
        except OSError as exc:
            skipped.append((rel, f"cannot read ({exc.strerror or exc})"))
            continue
        warned.extend((rel, n) for n in notes)
        if version is None:
            unchanged.append(rel)
        else:
            imported.append((rel, annotation.image, version))
    return LegacyImportReport(tuple(imported), tuple(unchanged), tuple(skipped), tuple(warned))
