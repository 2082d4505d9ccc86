"""``python -m core predict`` on good and bad input, as a user runs it."""
from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from core.config import REPO_ROOT


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "core", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=300)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, tiny_model):
    folder = tmp_path_factory.mktemp("model")
    tiny_model.save(folder / "tiny.keras")
    return folder / "tiny.keras"


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(5)
    folder = tmp_path / "cells"
    folder.mkdir()
    for name in ["TN_SNE_1.jpg", "TD_SNE_2.jpg", "other.png"]:
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(folder / name)
    return folder


def test_predict_writes_one_row_per_image(model_file, images, tmp_path):
    extra = tmp_path / "WD_BNE_9.jpg"
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(extra)
    out = tmp_path / "scores.csv"
    result = run_cli("predict", "--model", model_file, "--threshold", "0.5", images, extra, "--csv", out)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(out.open()))
    assert [r["image"] for r in rows] == ["TD_SNE_2.jpg", "TN_SNE_1.jpg", "other.png", "WD_BNE_9.jpg"]
    for row in rows:
        assert row["prediction"] == ("dysplastic" if float(row["score"]) < 0.5 else "normal")
    assert rows[2]["label"] == "" and rows[3]["label"] == "dysplastic"


@pytest.mark.parametrize("args, message", [
    (["--threshold", "2"], "Threshold 2.0 is outside"),
    (["--interpolation", "cubic"], "invalid choice"),
    (["MISSING"], "Input not found"),
    (["--model", "nowhere.keras"], "Model file not found"),
    (["BROKEN"], "is not a readable image"),
])
def test_bad_input_is_one_line_and_exit_2(model_file, images, tmp_path, args, message):
    (images / "TN_broken.jpg").write_bytes(b"garbage")
    out = tmp_path / "scores.csv"
    out.write_text("precious,previous,results\n")
    args = [str(images / "TN_broken.jpg") if a == "BROKEN" else str(tmp_path / "missing.jpg") if a == "MISSING" else a
            for a in args]
    base = ["predict"] + (["--model", str(model_file)] if "--model" not in args else [])
    inputs = [] if ("MISSING" in args or any(a.endswith((".jpg",)) for a in args) or str(images) in args) else [str(images)]
    result = run_cli(*base, *args, *inputs, "--csv", out)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    if "invalid choice" not in message:
        assert len(result.stderr.strip().splitlines()) == 1
    assert out.read_text() == "precious,previous,results\n"  # nothing already saved is lost


def test_a_broken_file_in_a_folder_is_skipped_and_listed(model_file, images, tmp_path):
    (images / "TN_broken.jpg").write_bytes(b"garbage")
    out = tmp_path / "scores.csv"
    result = run_cli("predict", "--model", model_file, images, "--csv", out)
    assert result.returncode == 0, result.stderr
    assert "skipped TN_broken.jpg: not an image" in result.stdout and "1 files skipped" in result.stdout
    assert [r["image"] for r in csv.DictReader(out.open())] == ["TD_SNE_2.jpg", "TN_SNE_1.jpg", "other.png"]
