"""Import of the earlier tool's <image stem>_json.txt files."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from core.annotations.cli import main as annotations_cli
from core.annotations.legacy import import_legacy_dir, legacy_to_annotation, parse_plotly_path
from core.annotations.store import AnnotationStore
from core.errors import DisplasiaError


def _image(path, size=(360, 363), seed=0):
    rgb = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path, quality=90)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _legacy_doc(*, nested=True, cyto_colour="#e67e22", nucleus_colour="#76d7c4",
                priorities=(2, 1, 0), lobes="Normal", status="HEALTHY"):
    return {
        "shapes": [
            {"type": "path", "path": "M100,100L260,100L260,260L100,260Z",
             "line": {"color": cyto_colour, "width": 2}, "fillrule": "evenodd"},
            {"type": "path", "path": "M150,150L210,150L210,200L150,200Z",
             "line": {"color": nucleus_colour, "width": 2}},
        ],
        "priorities": [list(priorities)] if nested else list(priorities),
        "lobes": [lobes],
        "cellstatus": [status],
    }


def _write(folder, stem, doc, *, image=True, seed=0):
    sha = _image(folder / f"{stem}.jpg", seed=seed) if image else None
    text = doc if isinstance(doc, str) else json.dumps(doc)
    (folder / f"{stem}_json.txt").write_text(text)
    return sha


@pytest.fixture
def store(tmp_path):
    s = AnnotationStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield s
    s.close()


def test_plotly_paths_with_commas_spaces_and_several_subpaths():
    assert parse_plotly_path("M 1,2 L 5,2 L 5,6 Z") == [[(1, 2), (5, 2), (5, 6)]]
    assert parse_plotly_path("M1 2L5 2L5 6ZM10,10L20,10L20,20Z")[1] == [(10, 10), (20, 10), (20, 20)]
    with pytest.raises(DisplasiaError, match="unsupported path command"):
        parse_plotly_path("M1,2 C 3,4 5,6 7,8")


def test_nested_priorities_granular_homogenic_normal(tmp_path, store):
    sha = _write(tmp_path, "TN_SNE_1", _legacy_doc(nested=True))
    report = import_legacy_dir(store, tmp_path, annotator="dr-old")
    assert report.skipped == () and len(report.imported) == 1
    a = store.latest(sha, "dr-old")
    assert a.image == "TN_SNE_1.jpg" and a.image_size == (360, 363)
    assert (a.cytoplasm.state.value, a.cytoplasm.degree) == ("granular", 2)
    assert (a.chromatin.state.value, a.chromatin.degree) == ("homogenic", 1)
    assert a.lobes.value == "normal" and a.condition.value == "normal"
    assert a.total == -3
    assert [s.label.value for s in a.shapes] == ["cytoplasm", "nucleus"]
    assert a.shapes[0].points == ((100, 100), (260, 100), (260, 260), (100, 260))


def test_flat_priorities_transparent_heterogenic_hyposegmented(tmp_path, store):
    doc = _legacy_doc(nested=False, cyto_colour="#CB4335", nucleus_colour="#5dade2",
                      priorities=(3, 2, 1), lobes="Hyposegmented", status="DYSPLASTIC")
    sha = _write(tmp_path, "TD_SNE_2", doc)
    import_legacy_dir(store, tmp_path)
    a = store.latest(sha, "legacy")
    assert a.scores.cytoplasm == 3 and a.scores.chromatin == 2 and a.scores.lobes == 1
    assert a.total == 6 and a.condition.value == "dysplastic" and not a.disagrees


@pytest.mark.parametrize("content, reason", [
    ("{not json", "not valid JSON"),
    (json.dumps({"shapes": []}), "lacks 'priorities'"),
    (json.dumps(_legacy_doc(priorities=(2, 7, 0))), "whole numbers 0-3"),
    (json.dumps({**_legacy_doc(), "priorities": [[1, 2]]}), "priorities must be"),
    (json.dumps(_legacy_doc(lobes="Trilobed")), "lobes value"),
    (json.dumps(_legacy_doc(status="MAYBE")), "cellstatus value"),
    (json.dumps({**_legacy_doc(), "shapes": [{"type": "path", "path": "M1,1 Q 2,2 3,3",
                                              "line": {"color": "#e67e22"}}]}), "unsupported"),
    (json.dumps({**_legacy_doc(), "shapes": _legacy_doc()["shapes"] + [
        {"type": "path", "path": "M1,1L9,1L9,9Z", "line": {"color": "#cb4335"}}]}), "conflicting cytoplasm"),
])
def test_broken_file_is_skipped_with_reason_and_nothing_written(tmp_path, store, content, reason):
    _write(tmp_path, "ZN_bad", content, seed=1)
    good_sha = _write(tmp_path, "ZN_good", _legacy_doc(), seed=2)
    report = import_legacy_dir(store, tmp_path)
    assert [f for f, _ in report.skipped] == ["ZN_bad_json.txt"]
    assert reason in report.skipped[0][1]
    assert "\n" not in report.skipped[0][1]
    assert [f for f, _, _ in report.imported] == ["ZN_good_json.txt"]
    assert [e.image_sha256 for e in store.annotated_images()] == [good_sha]
    assert store.count_versions() == 1


def test_missing_image_is_skipped(tmp_path, store):
    _write(tmp_path, "WN_SNE_3", _legacy_doc(), image=False)
    report = import_legacy_dir(store, tmp_path)
    assert report.imported == () and "no image named WN_SNE_3.jpg" in report.skipped[0][1]
    assert store.count_versions() == 0


def test_reimport_is_idempotent_and_subfolders_are_read(tmp_path, store):
    sub = tmp_path / "TD"
    sub.mkdir()
    _write(sub, "TD_SNE_4", _legacy_doc())
    assert len(import_legacy_dir(store, tmp_path).imported) == 1
    again = import_legacy_dir(store, tmp_path)
    assert again.imported == () and again.unchanged == ("TD/TD_SNE_4_json.txt",)
    assert store.count_versions() == 1


def test_points_outside_the_image_are_clipped_with_a_warning():
    doc = _legacy_doc()
    doc["shapes"][0]["path"] = "M-5,100L400,100L400,260L-5,260Z"
    a, notes = legacy_to_annotation(doc, image="x.jpg", image_sha256="0" * 64, image_size=(360, 363))
    assert a.shapes[0].points[0] == (0, 100) and a.shapes[0].points[1] == (360, 100)
    assert any("moved to its edge" in n for n in notes)


def test_unknown_colour_is_ignored_and_zero_degree_state_defaults():
    doc = _legacy_doc(priorities=(0, 1, 0))
    doc["shapes"][0]["line"]["color"] = "#000000"
    a, notes = legacy_to_annotation(doc, image="x.jpg", image_sha256="0" * 64, image_size=(360, 363))
    assert [s.label.value for s in a.shapes] == ["nucleus"]
    assert a.cytoplasm.state.value == "granular" and a.cytoplasm.degree == 0
    assert any("names no region" in n for n in notes)


def test_cli_import_legacy_reports_and_exits_nonzero_on_skips(tmp_path, capsys):
    _write(tmp_path, "TN_SNE_5", _legacy_doc(), seed=3)
    _write(tmp_path, "TN_SNE_6", "[]", seed=4)
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    code = annotations_cli(["annotations", "import-legacy", str(tmp_path), "--db", url,
                            "--annotator", "dr-x"])
    out = capsys.readouterr().out
    assert code == 1
    assert "imported TN_SNE_5_json.txt -> TN_SNE_5.jpg (version 1)" in out
    assert "skipped TN_SNE_6_json.txt: the file is not a JSON object" in out
    assert "1 imported, 0 unchanged, 1 skipped" in out
    assert AnnotationStore(url).annotators() == ["dr-x"]


def test_uploaded_pair_converts_without_touching_disk(tmp_path):
    from core.annotations.legacy import read_legacy_bytes
    sha = _image(tmp_path / "up.jpg")
    a, notes = read_legacy_bytes(json.dumps(_legacy_doc()).encode(), (tmp_path / "up.jpg").read_bytes(),
                                 "../../up.jpg", annotator="dr-up")
    assert a.image == "up.jpg" and a.image_sha256 == sha and a.annotator == "dr-up" and notes == []
    with pytest.raises(DisplasiaError, match="image cannot be read"):
        read_legacy_bytes(json.dumps(_legacy_doc()).encode(), b"not an image", "x.jpg")
