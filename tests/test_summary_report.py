"""Dataset and cell reports, and ``python -m core report``: sections, self-containment, escaping."""
from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest
from PIL import Image

from core.summary.report import CELL_SECTIONS, DATASET_SECTIONS

EVIL = "TN_<img src=x onerror=alert(1)>.png"
NAMES = ["TD_SNE_0000001.png", "TN_SNE_0000002.png", "WN_SNE_0000003.png", "ZD_SNE_0000004.png", EVIL]
CHEAP = {"smoothgrad": {"samples": 3}, "lime": {"samples": 30}, "occlusion": {"patch": 4}}


def _disc(size, radius):
    yy, xx = np.mgrid[0:size, 0:size]
    return np.hypot(yy - size / 2 + 0.5, xx - size / 2 + 0.5) < radius


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Five 20x20 cells with ground-truth masks, four with a project-schema annotation."""
    root = tmp_path_factory.mktemp("cells")
    (root / "truth").mkdir()
    (root / "annotations").mkdir()
    rng = np.random.default_rng(0)
    cell, nucleus = _disc(20, 7), _disc(20, 3)
    for k, name in enumerate(NAMES):
        rgb = (rng.random((20, 20, 3)) * 80 + 150).astype(np.uint8)
        rgb[cell] = [200, 150, 200]
        rgb[nucleus] = [80, 40, 120 + 20 * k]
        path = root / name
        Image.fromarray(rgb).save(path)
        stem = path.stem
        for part, mask in (("cell", cell), ("nucleus", nucleus), ("cytoplasm", cell & ~nucleus),
                           ("granules", cell & ~nucleus & (np.arange(20)[:, None] % 3 == 0))):
            Image.fromarray(mask.astype(np.uint8) * 255).save(root / "truth" / f"{stem}_{part}.png")
        if k == 4:
            continue
        doc = {"schema": "displasia-annotation/1", "image": name,
               "image_sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "annotator": "dr O'Brien",
               "image_size": [20, 20], "cytoplasm": {"state": "granular" if k % 2 else "transparent", "degree": k % 4},
               "chromatin": {"state": "homogenic", "degree": 1}, "lobes": {"state": "normal"},
               "condition": "normal" if k % 2 else "dysplastic",
               "shapes": [{"label": "cytoplasm", "points": [[3, 3], [17, 3], [17, 17], [3, 17]]},
                          {"label": "nucleus", "points": [[7, 7], [13, 7], [13, 13], [7, 13]]}],
               "note": "<script>alert(2)</script>"}
        (root / "annotations" / f"{stem}.json").write_text(json.dumps(doc), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from core.explain.testing import tiny_cnn

    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    tiny_cnn(16, seed=1).save(path)
    return path


@pytest.fixture(scope="module")
def study(dataset, model_file):
    from core.model_io import load_model
    from core.summary.study import load_study

    return load_study(dataset, load_model(model_file))


@pytest.fixture(scope="module")
def summary(study, tmp_path_factory):
    from core.cache import ExplanationCache
    from core.summary.engine import summarise_dataset

    calls = []
    result = summarise_dataset(study, params=CHEAP, cache=ExplanationCache(tmp_path_factory.mktemp("cache")),
                               patches=(4, 8), steps=4, randomisation_cells=2, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (1000, 1000) and all(b >= a for (a, _), (b, _) in zip(calls, calls[1:]))
    return result


def _external_references(text: str) -> list:
    """Tags of the page (script bodies, e.g. the inlined plotly.js, left out) that load or link outside."""
    scripts = re.findall(r"<script[^>]*>", text, flags=re.I)
    assert not [tag for tag in scripts if "src" in tag.lower()], "a script is loaded from elsewhere"
    text = re.sub(r"<script[^>]*>.*?</script>", "", text, flags=re.I | re.S)
    return re.findall(r"<[a-z]+[^>]*\s(?:src|href)\s*=\s*[\"']?(?:https?:)?//[^>]*>", text, flags=re.I)


def test_study_reads_annotations_and_masks(study):
    assert len(study) == 5
    i = study.index("TD_SNE_0000001.png")
    assert study.annotations[i].annotator == "dr O'Brien"
    assert study.regions[i].source == "annotation: dr O'Brien"
    assert study.truth[i].granules is not None and study.truth[i].granules.any()
    evil = study.index(EVIL)
    assert study.annotations[evil] is None and study.regions[evil].source == "ground truth"


def test_summary_tables_are_filled(summary):
    assert len(summary.per_image) == 5
    assert set(summary.localisation["method"]) == set(summary.maps)
    truth = summary.localisation_truth
    assert truth["share_granules"].notna().any()
    assert (truth["share_granules"].notna() == truth["share_nucleus"].notna()).all()  # NaN only for empty maps
    assert set(summary.faithfulness["method"]) == set(summary.maps) | {"random"}
    assert len(summary.randomisation) == 2 * len(summary.maps)
    assert sorted(summary.occlusion_summary["patch"].unique()) == [4, 8]
    assert len(summary.background) == 5
    assert set(summary.timings) >= {"maps", "occlusion", "deletion/insertion", "randomisation"}


def test_dataset_report_is_complete_self_contained_and_escaped(study, summary):
    from core.summary.report import dataset_report_html

    text = dataset_report_html(study, summary)
    for sid, _ in DATASET_SECTIONS:
        assert f'<section id="{sid}">' in text, sid
    assert _external_references(text) == []
    assert text.count("plotly.js v") == 1  # plotly.js inlined once, not per figure
    assert "data:image/png;base64," in text
    assert "<img src=x onerror" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text


def test_cell_report(study, summary):
    from core.summary.report import cell_report_html

    text = cell_report_html(study, study.index("TN_SNE_0000002.png"), maps=summary.maps, steps=4)
    for sid, _ in CELL_SECTIONS:
        assert f'<section id="{sid}">' in text, sid
    assert text.count("data:image/png;base64,") == 2 + len(summary.maps)
    assert "<script>alert(2)" not in text and "&lt;script&gt;alert(2)&lt;/script&gt;" in text
    assert _external_references(text) == []


def test_cli_writes_a_report(dataset, model_file, tmp_path, capsys):
    from core.cli import main

    out = tmp_path / "report.html"
    code = main(["report", "--model", str(model_file), str(dataset), "--methods", "saliency", "gradcam",
                 "--patches", "4", "--steps", "3", "--randomisation-cells", "2", "--cache", str(tmp_path / "c"),
                 "--tables", str(tmp_path), "--out", str(out)])
    assert code == 0 and out.is_file()
    assert (tmp_path / "per_image.csv").is_file() and (tmp_path / "faithfulness_summary.csv").is_file()
    text = out.read_text(encoding="utf-8")
    assert all(f'id="{sid}"' in text for sid, _ in DATASET_SECTIONS)
    assert "wrote" in capsys.readouterr().err
    one = tmp_path / "cell.html"
    assert main(["report", "--model", str(model_file), str(dataset), "--image", "ZD_SNE_0000004.png",
                 "--methods", "gradcam", "--steps", "2", "--no-cache", "--out", str(one)]) == 0
    assert all(f'id="{sid}"' in one.read_text(encoding="utf-8") for sid, _ in CELL_SECTIONS)


@pytest.mark.parametrize("extra, message", [
    (["--methods", "nonsense"], "Unknown explanation method"),
    (["--methods", "background"], "one map per cell"),
    (["--image", "missing.png"], "No cell named"),
    (["--steps", "-1"], "must not be negative"),
    (["--threshold", "2"], "outside (0, 1)"),
    (["--db", "nonsense://x"], "annotation database"),
])
def test_cli_bad_input_exits_2_with_one_line(dataset, model_file, tmp_path, capsys, extra, message):
    from core.cli import main

    code = main(["report", "--model", str(model_file), str(dataset), "--out", str(tmp_path / "r.html"), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("error: ") and message in err[-1]
    assert not (tmp_path / "r.html").exists()


def test_cli_bad_paths(dataset, model_file, tmp_path, capsys):
    from core.cli import main

    assert main(["report", "--model", str(model_file), str(tmp_path / "nowhere"), "--out", str(tmp_path / "r.html")]) == 2
    assert main(["report", "--model", str(model_file), str(dataset), "--out", str(tmp_path / "r.txt")]) == 2
    assert main(["report", "--model", str(tmp_path / "none.keras"), str(dataset), "--out", str(tmp_path / "r.html")]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 3


def test_summary_modules_import_without_tensorflow_or_streamlit():
    import subprocess
    import sys

    code = ("import sys, core.cli, core.summary.cli, core.summary.report, core.summary.figures, "
            "core.summary.localisation, core.summary.faithfulness, core.summary.tables; "
            "print('tensorflow' in sys.modules, 'streamlit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
