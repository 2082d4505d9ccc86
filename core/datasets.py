"""Datasets: a folder of cell images with an optional known class per image.

Where the class comes from, first match wins:
1. a labels CSV (``labels.csv`` in the folder, or one given explicitly) with columns
   ``image`` and ``label`` (``normal``/``dysplastic``; empty = unknown);
2. a class subfolder (``normal/``, ``dysplastic/`` and a few synonyms);
3. the study prefix of the file name: TN/ZN/WN = normal, TD/ZD/WD = dysplastic, where W
   marks cells the published model got wrong.
Cells with no class are kept as unlabelled. Only images in the folder itself and in class
subfolders are read, so side folders (ground-truth masks, exports) are not taken for cells.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
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

    def __len__(self) -> int:
        return len(self.cells)

    def names(self) -> list[str]:
        return [c.name for c in self.cells]

    def cell(self, name: str) -> Cell:
        for c in self.cells:
            if c.name == name:
                return c
        raise DisplasiaError(f"No cell named '{name}' in {self.root.name}.")


def scan_dataset(folder, labels_csv=None) -> Dataset:
    """List the cells of a folder with their known class.

    Parameters
    ----------
    folder : str or Path
    labels_csv : str or Path, optional
        Overrides ``folder/labels.csv``.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DisplasiaError(f"Image folder not found: {root}")
    csv_path = Path(labels_csv) if labels_csv else root / "labels.csv"
    csv_labels = read_labels_csv(csv_path) if (labels_csv or csv_path.is_file()) else {}

    found: list[tuple[Path, str | None]] = [(p, None) for p in _images_in(root)]
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        cls = FOLDER_CLASSES.get(sub.name.lower())
        if cls:
            found.extend((p, cls) for p in _images_in(sub))
    cells = []
    for path, folder_class in found:
        name = path.relative_to(root).as_posix()
        if name in csv_labels or path.name in csv_labels:
            label = csv_labels.get(name, csv_labels.get(path.name))
            cells.append(cell_for_file(path, name=name, label=label, source="csv" if label else None))
        elif folder_class:
            cells.append(cell_for_file(path, name=name, label=folder_class, source="folder"))
        else:
            cells.append(cell_for_file(path, name=name))
    if not cells:
        raise DisplasiaError(f"No images ({', '.join(IMAGE_SUFFIXES)}) in {root}.")
    return Dataset(root=root, cells=tuple(cells))


def cell_for_file(path: Path, *, name: str | None = None, label=..., source: str | None = None) -> Cell:
    """A cell for one image file; without an explicit ``label`` the study prefix gives it."""
    path = Path(path)
    match = _PREFIX.match(path.name)
    study_group = match.group("group").upper() if match else None
    if label is ...:
        label = None if study_group is None else ("normal" if study_group[1] == "N" else "dysplastic")
        source = "prefix" if label else None
    return Cell(path, name or path.name, label, source, study_group)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


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
