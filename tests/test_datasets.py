"""Dataset grouping: labels CSV > class subfolder > study prefix; side folders ignored."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.datasets import scan_dataset
from core.errors import DisplasiaError


def touch_image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(path)


def test_study_prefixes(tmp_path):
    for name in ["TN_SNE_1.jpg", "ZD_SNE_2.jpg", "WN_BNE_3.jpg", "WD_SNE_4.jpg", "cell_5.png", "notes.txt"]:
        (touch_image(tmp_path / name) if name.endswith(("jpg", "png")) else (tmp_path / name).write_text("x"))
    ds = scan_dataset(tmp_path)
    got = {c.name: (c.label, c.group, c.study_group) for c in ds.cells}
    assert got == {
        "TN_SNE_1.jpg": ("normal", "normal", "TN"),
        "ZD_SNE_2.jpg": ("dysplastic", "dysplastic", "ZD"),
        "WN_BNE_3.jpg": ("normal", "misclassified normal", "WN"),
        "WD_SNE_4.jpg": ("dysplastic", "misclassified dysplastic", "WD"),
        "cell_5.png": (None, "unlabelled", None),
    }


def test_class_subfolders_and_ignored_side_folders(tmp_path):
    touch_image(tmp_path / "Normal" / "a.jpg")
    touch_image(tmp_path / "dysplastic" / "b.tif")
    touch_image(tmp_path / "truth" / "a_cell.png")
    ds = scan_dataset(tmp_path)
    assert {c.name: c.label for c in ds.cells} == {"Normal/a.jpg": "normal", "dysplastic/b.tif": "dysplastic"}
    assert ds.cell("Normal/a.jpg").label_source == "folder"


def test_labels_csv_wins(tmp_path):
    touch_image(tmp_path / "TN_1.jpg")
    touch_image(tmp_path / "x.jpg")
    (tmp_path / "labels.csv").write_text("image,label\nTN_1.jpg,dysplastic\nx.jpg,\n")
    ds = scan_dataset(tmp_path)
    assert ds.cell("TN_1.jpg").label == "dysplastic" and ds.cell("TN_1.jpg").label_source == "csv"
    assert ds.cell("x.jpg").label is None


def test_bad_inputs(tmp_path):
    with pytest.raises(DisplasiaError, match="not found"):
        scan_dataset(tmp_path / "nope")
    with pytest.raises(DisplasiaError, match="No images"):
        scan_dataset(tmp_path)
    touch_image(tmp_path / "a.jpg")
    (tmp_path / "labels.csv").write_text("image,label\na.jpg,maybe\n")
    with pytest.raises(DisplasiaError, match="line 2: unknown label 'maybe'"):
        scan_dataset(tmp_path)
    (tmp_path / "labels.csv").write_text("file,kind\n")
    with pytest.raises(DisplasiaError, match="columns"):
        scan_dataset(tmp_path)
