"""Datasets: a folder of cell images with an optional known class per image.

Where the class comes from, first match wins:
1. a labels CSV (``labels.csv`` in the folder, or one given explicitly) with columns
   ``image`` and ``label`` (``normal``/``dysplastic``; empty = unknown);
2. a class subfolder (``normal/``, ``dysplastic/`` and a few synonyms);
3. the study prefix of the file name: TN/ZN/WN = normal, TD/ZD/WD = dysplastic, where W
   marks cells the published model got wrong.
Cells with no class are kept as unlabelled. Only images in the folder itself and in class
subfolders are read, so side folders (ground-truth masks, exports) are not taken for cells.

Every image is checked when the folder is scanned: a file that cannot be decoded (corrupt,
truncated, not an image, too many pixels, unreadable) or whose real path (after symbolic
links) leaves the dataset folder and the configured data roots is skipped and listed in
``Dataset.skipped`` with the reason, and the other cells stay usable.
"""
from __future__ import annotations

import csv
import os
import re
import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from core.config import IMAGE_SUFFIXES
from core.errors import DisplasiaError

FOLDER_CLASSES = {
    "normal": "normal", "normals": "normal", "healthy": "normal", "normales": "normal",
    "dysplastic": "dysplastic", "dysplasia": "dysplastic", "displasia": "dysplastic",
    "displasicos": "dysplastic", "abnormal": "dysplastic",
}
_PREFIX = re.compile(r"^(?P<group>[TZW][ND])_", re.IGNORECASE)
_LABEL_WORDS = {"normal": "normal", "healthy": "normal", "1": "normal",
                "dysplastic": "dysplastic", "displasia": "dysplastic", "0": "dysplastic", "": None}
GROUPS = ("normal", "dysplastic", "misclassified normal", "misclassified dysplastic", "unlabelled")


@dataclass(frozen=True)
class Cell:
    """One image of a dataset."""

    path: Path
    name: str  # path relative to the dataset folder, '/'-separated: the cell's id
    label: str | None  # "normal", "dysplastic" or None
    label_source: str | None  # "csv", "folder", "prefix"
    study_group: str | None  # "TN", "ZD", "WN"... when the name carries a study prefix

    @property
    def group(self) -> str:
        """Display group: the class, with the study's misclassified sets apart."""
        if self.label is None:
            return "unlabelled"
        if self.study_group and self.study_group.startswith("W") and self.label_source == "prefix":
            return f"misclassified {self.label}"
        return self.label


@dataclass(frozen=True)
class Dataset:
    root: Path
    cells: tuple
    #: ``(name, reason)`` of every image file that was skipped (unreadable, outside the roots).
    skipped: tuple = ()
    #: True while the images are listed but not yet decoded once: an unreadable one is still
    #: among ``cells`` (the dashboard's scoring job checks them and the listing is redone).
    unchecked: bool = False

    def __len__(self) -> int:
        return len(self.cells)

    @cached_property
    def _names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.cells)     # built once per dataset (20,000 cells: every rerun)

    def names(self) -> list[str]:
        return list(self._names)

    def cell(self, name: str) -> Cell:
        for c in self.cells:
            if c.name == name:
                return c
        raise DisplasiaError(f"No cell named '{name}' in {self.root.name}.")


def scan_dataset(folder, labels_csv=None, *, roots=None, check_images: bool = True) -> Dataset:
    """List the cells of a folder with their known class.

    Parameters
    ----------
    folder : str or Path
    labels_csv : str or Path, optional
        Overrides ``folder/labels.csv``.
    roots : list of Path, optional
        Folders an image's real path may lie in besides the dataset folder itself
        (default: the ``data.roots`` setting).
    check_images : bool
        Decode every image once and skip the ones that fail (default True).
    """
    root = Path(folder)
    try:
        if not root.is_dir():
            raise DisplasiaError(f"Image folder not found: {root}")
        real_root = root.resolve()
    except (OSError, ValueError):
        raise DisplasiaError(f"Image folder not readable: {root}") from None
    if roots is None:
        from core.config import data_roots

        roots = data_roots()
    allowed = [real_root] + [Path(r).resolve() for r in roots]
    csv_path = Path(labels_csv) if labels_csv else root / "labels.csv"
    csv_labels = read_labels_csv(csv_path) if (labels_csv or csv_path.is_file()) else {}

    skipped: list[tuple[str, str]] = []
    cells = []
    folders = [(root, "", None)] + [(sub, sub.name + "/", FOLDER_CLASSES[sub.name.lower()]) for sub in _subfolders(root)]
    for folder, prefix, folder_class in folders:
        # One resolve per folder, not per file: a file that is not a symbolic link lies
        # where its folder really is (20,000 realpath calls took seconds).
        folder_problem = confinement_problem(folder, allowed)
        for path, is_link in _images_in(folder, root, skipped):
            name = prefix + path.name
            reason = (confinement_problem(path, allowed) if is_link else folder_problem) or (
                image_problem(path) if check_images else None)
            if reason:
                skipped.append((name, reason))
                continue
            if name in csv_labels or path.name in csv_labels:
                label = csv_labels.get(name, csv_labels.get(path.name))
                cells.append(cell_for_file(path, name=name, label=label, source="csv" if label else None))
            elif folder_class:
                cells.append(cell_for_file(path, name=name, label=folder_class, source="folder"))
            else:
                cells.append(cell_for_file(path, name=name))
    if not cells:
        if skipped:
            raise DisplasiaError(f"No readable images in {root}: {len(skipped)} skipped "
                                 f"(first: {skipped[0][0]}: {skipped[0][1]}).")
        raise DisplasiaError(f"No images ({', '.join(IMAGE_SUFFIXES)}) in {root}.")
    return Dataset(root=root, cells=tuple(cells), skipped=tuple(sorted(skipped)))


def cell_for_file(path: Path, *, name: str | None = None, label=..., source: str | None = None) -> Cell:
    """A cell for one image file; without an explicit ``label`` the study prefix gives it."""
    if not isinstance(path, Path):               # Path(Path) parses again: seconds on 20,000 cells
        path = Path(path)
    match = _PREFIX.match(path.name)
    study_group = match.group("group").upper() if match else None
    if label is ...:
        label = None if study_group is None else ("normal" if study_group[1] == "N" else "dysplastic")
        source = "prefix" if label else None
    return Cell(path, name or path.name, label, source, study_group)


def _subfolders(root: Path) -> list[Path]:
    """The class subfolders of ``root`` (names in :data:`FOLDER_CLASSES`), sorted."""
    try:
        with os.scandir(root) as listing:
            names = [e.name for e in listing if e.name.lower() in FOLDER_CLASSES and _safe(e.is_dir)]
    except OSError as exc:
        raise DisplasiaError(f"Image folder not readable: {root} ({exc.strerror or exc}).") from None
    return [root / name for name in sorted(names)]


def _safe(check) -> bool:
    try:
        return bool(check())
    except (OSError, ValueError):
        return False


def _images_in(folder: Path, root: Path, skipped: list) -> list[tuple[Path, bool]]:
    """``(path, is_symbolic_link)`` of the image files in ``folder``, sorted by name.

    One directory read; the file type comes from the listing, so 20,000 regular files
    cost no stat each (only links are followed).
    """
    try:
        with os.scandir(folder) as listing:
            entries = sorted((e for e in listing if os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES),
                             key=lambda e: e.name)
    except OSError as exc:
        skipped.append((folder.relative_to(root).as_posix() + "/", f"folder not readable ({exc.strerror or exc})"))
        return []
    out = []
    for entry in entries:
        is_link = _safe(entry.is_symlink)
        if _safe(entry.is_file):
            out.append((folder / entry.name, is_link))
        elif is_link and not _safe(Path(entry.path).exists):
            skipped.append(((folder / entry.name).relative_to(root).as_posix(), "broken symbolic link"))
    return out


def confinement_problem(path: Path, allowed: list[Path]) -> str | None:
    """Why ``path`` may not be read (its real path leaves every allowed folder), or None."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return "cannot be resolved (broken or looping link)"
    if not any(real == root or root in real.parents for root in allowed):
        return "refused: links outside the shared folders"
    return None


def image_problem(path, *, max_pixels: int | None = None) -> str | None:
    """Why an image file cannot be used (one short phrase), or None when it decodes."""
    from PIL import Image, UnidentifiedImageError

    if max_pixels is None:
        from core.settings import load_settings

        max_pixels = load_settings().uploads.max_image_pixels
    try:
        if not os.access(path, os.R_OK):
            return "not readable (permissions)"
        with Image.open(path) as image:
            if image.width * image.height > max_pixels:
                return f"too large ({image.width}x{image.height} pixels)"
            if image.width < 1 or image.height < 1:
                return "empty image"
            if image.format == "JPEG":
                image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
            image.load()
    except UnidentifiedImageError:
        return "not an image"
    except Image.DecompressionBombError:
        return "too large (decompression bomb)"
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, TypeError, IndexError,
            KeyError, ZeroDivisionError, struct.error) as exc:
        return f"not a readable image ({exc.__class__.__name__})"
    return None


def read_labels_csv(path) -> dict[str, str | None]:
    """Read ``image,label`` rows; unknown label words are an error naming the row."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            fields = {f.strip().lower(): f for f in (reader.fieldnames or [])}
            if "image" not in fields or not ({"label", "class", "group"} & fields.keys()):
                raise DisplasiaError(f"{path.name} needs the columns 'image' and 'label'.")
            label_field = fields.get("label") or fields.get("class") or fields["group"]
            labels = {}
            for line, row in enumerate(reader, start=2):
                word = (row[label_field] or "").strip().lower()
                if word not in _LABEL_WORDS:
                    raise DisplasiaError(f"{path.name} line {line}: unknown label '{row[label_field]}' (use normal or dysplastic).")
                labels[(row[fields["image"]] or "").strip()] = _LABEL_WORDS[word]
            return labels
    except FileNotFoundError:
        raise DisplasiaError(f"Labels file not found: {path}") from None
    except (UnicodeDecodeError, csv.Error):
        raise DisplasiaError(f"{path.name} is not a readable CSV file.") from None
