"""`python -m core annotations ...`: seed, agreement, segment-eval, registration."""
from __future__ import annotations

import numpy as np
from PIL import Image

from core.annotations.cli import main as annotations_cli
from tests.test_annotations_schema import make_annotation
from tests.test_annotations_segment import drawn_cell


def test_registered_in_the_project_cli():
    from core.cli import COMMAND_MODULES
    assert "core.annotations.cli" in COMMAND_MODULES


def test_seed_twice_then_agreement(tmp_path, capsys):
    folder = tmp_path / "json"
    folder.mkdir()
    (folder / "a.json").write_text(make_annotation(annotator="ana").to_json_text())
    (folder / "b.json").write_text(make_annotation(annotator="ben", condition="dysplastic").to_json_text())
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert annotations_cli(["annotations", "seed", str(folder), "--db", url]) == 0
    assert annotations_cli(["annotations", "seed", str(folder), "--db", url]) == 0
    out = capsys.readouterr().out
    assert "2 imported, 0 unchanged, 0 skipped" in out and "0 imported, 2 unchanged, 0 skipped" in out
    assert annotations_cli(["annotations", "agreement", "--db", url, "--csv", str(tmp_path / "k.csv")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("annotator_a\tannotator_b\tn_images")
    assert "ana\tben\t1\t0.000" in out
    assert (tmp_path / "k.csv").read_text().startswith("annotator_a,annotator_b")


def test_segment_eval_prints_mean_and_min(tmp_path, capsys):
    rgb, cell, nucleus = drawn_cell(0)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    (tmp_path / "truth").mkdir()
    Image.fromarray(cell.astype(np.uint8) * 255).save(tmp_path / "truth" / "c_cell.png")
    Image.fromarray(nucleus.astype(np.uint8) * 255).save(tmp_path / "truth" / "c_nucleus.png")
    assert annotations_cli(["annotations", "segment-eval", str(tmp_path), "--truth", str(tmp_path / "truth")]) == 0
    assert "n=1  cell IoU mean 0.9" in capsys.readouterr().out


def test_missing_folder_is_a_clean_error(tmp_path, capsys):
    code = annotations_cli(["annotations", "import-legacy", str(tmp_path / "nope"),
                            "--db", f"sqlite:///{tmp_path / 'db.sqlite'}"])
    assert code == 2 and capsys.readouterr().err.startswith("error: folder not found")
