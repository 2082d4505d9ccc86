"""Hostile corpus, annotation files: every crafted legacy ``_json.txt`` or project JSON file
is refused with one line, the valid files beside it still import, and nothing else is saved."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from core.annotations.legacy import import_legacy_dir, read_legacy_bytes
from core.annotations.store import AnnotationStore, read_annotation_file
from core.errors import DisplasiaError


def jpeg(size=(120, 100), seed=0) -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


IMAGE = jpeg()


def shape(path="M10,10L90,10L90,80L10,80Z", colour="#e67e22", **extra):
    return {"type": "path", "path": path, "line": {"color": colour}, **extra}


def doc(**changes):
    base = {"shapes": [shape(), shape("M30,30L60,30L60,60L30,60Z", "#76d7c4")],
            "priorities": [[2, 1, 0]], "lobes": ["Normal"], "cellstatus": ["HEALTHY"]}
    base.update(changes)
    return base


def text(value) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value).encode()


# (case id, legacy file content, words expected in the message)
LEGACY_CASES = [
    ("nested-100000", b"[" * 100_000 + b"]" * 100_000, "nested 100000 levels"),
    ("nested-object-40", b'{"a":' * 40 + b"1" + b"}" * 40, "nested 40 levels"),
    ("larger-than-5-mb", b" " * (5 * 1024 * 1024 + 1), "larger than 5 MB"),
    ("not-json", b"shapes: none", "not valid JSON"),
    ("utf16", json.dumps(doc()).encode("utf-16"), "not valid JSON"),
    ("nul-bytes", b"\0" * 100, "not valid JSON"),
    ("json-array", b"[1, 2]", "not a JSON object"),
    ("json-null", b"null", "not a JSON object"),
    ("missing-shapes", text({k: v for k, v in doc().items() if k != "shapes"}), "lacks 'shapes'"),
    ("shapes-not-list", text(doc(shapes={"a": 1})), "'shapes' is not a list"),
    ("shape-not-object", text(doc(shapes=[7])), "shape 0 is not an object"),
    ("circle-at-1e308", text(doc(shapes=[{"type": "circle", "x0": 0, "y0": 0, "x1": 1e308, "y1": 1e308,
                                          "line": {"color": "#cb4335"}}])), "far outside"),
    ("circle-at-1e400-is-inf", b'{"shapes": [{"type": "circle", "x0": 0, "y0": 0, "x1": 1e400, "y1": 5, '
                               b'"line": {"color": "#cb4335"}}], "priorities": [[2,1,0]], "lobes": ["Normal"], '
                               b'"cellstatus": ["HEALTHY"]}', "not a finite number"),
    ("rect-nan-literal", b'{"shapes": [{"type": "rect", "x0": NaN, "y0": 0, "x1": 5, "y1": 5, '
                         b'"line": {"color": "#cb4335"}}], "priorities": [[2,1,0]], "lobes": ["Normal"], '
                         b'"cellstatus": ["HEALTHY"]}', "not a finite number"),
    ("rect-strings", text(doc(shapes=[{"type": "rect", "x0": "a", "y0": 0, "x1": 5, "y1": 5,
                                       "line": {"color": "#cb4335"}}])), "lacks numeric"),
    ("rect-zero-area", text(doc(shapes=[{"type": "rect", "x0": 5, "y0": 5, "x1": 5, "y1": 50,
                                         "line": {"color": "#cb4335"}}])), "no area"),
    ("path-far-outside", text(doc(shapes=[shape("M-1e9,-1e9L1e9,-1e9L1e9,1e9Z")])), "far outside"),
    ("path-outside-clipped-to-nothing", text(doc(shapes=[shape("M-50,-50L-10,-50L-10,-10Z")])), "no area"),
    ("path-inf", text(doc(shapes=[shape("M1e999,1L5,5L6,9Z")])), "not a number"),
    ("path-bezier", text(doc(shapes=[shape("M1,1C5,5 6,6 7,7Z")])), "unsupported path command"),
    ("path-not-text", text(doc(shapes=[shape(path=[1, 2, 3])])), "not text"),
    ("path-empty", text(doc(shapes=[shape(path="")])), "empty path"),
    ("path-letters", text(doc(shapes=[shape(path="M1,1L2,2;rm -rf /")])), "unreadable text"),
    ("path-too-many-points", text(doc(shapes=[shape("M1,1" + "L2,2" * 20_001 + "Z")])), "more than 20000 points"),
    ("shape-type-unknown", text(doc(shapes=[{"type": "script", "line": {"color": "#cb4335"}}])), "unsupported shape type"),
    ("too-many-shapes", text(doc(shapes=[shape()] * 100)), "more than 64 outlines"),
    ("priorities-strings", text(doc(priorities=[["a", "b", "c"]])), "whole numbers 0-3"),
    ("priorities-huge-list", text(doc(priorities=list(range(100_000)))), "priorities must be"),
    ("priorities-out-of-range", text(doc(priorities=[[9, 1, 0]])), "whole numbers 0-3"),
    ("priorities-1e308", text(doc(priorities=[[1e308, 1, 0]])), "whole numbers 0-3"),
    ("lobes-dict", text(doc(lobes={"$gt": ""})), "lobes must be one text value"),
    ("lobes-unknown", text(doc(lobes=["Trilobed<script>"])), "not one of"),
    ("cellstatus-list-of-many", text(doc(cellstatus=["HEALTHY", "DYSPLASTIC"])), "one text value"),
    ("conflicting-colours", text(doc(shapes=[shape(), shape(colour="#cb4335")])), "conflicting cytoplasm"),
]


@pytest.mark.parametrize("case, content, words", LEGACY_CASES, ids=[c[0] for c in LEGACY_CASES])
def test_hostile_legacy_files_are_refused_with_one_line(case, content, words):
    with pytest.raises(DisplasiaError) as info:
        read_legacy_bytes(content, IMAGE, "TN_1.jpg")
    message = str(info.value)
    assert words in message and "\n" not in message and len(message) < 300, message


@pytest.mark.parametrize("case, image", [
    ("image-empty", b""), ("image-text", b"not an image"), ("image-truncated", IMAGE[:200]),
], ids=lambda v: v if isinstance(v, str) else "")
def test_legacy_file_with_a_bad_image(case, image):
    with pytest.raises(DisplasiaError, match="image cannot be read"):
        read_legacy_bytes(text(doc()), image, "TN_1.jpg")


def test_bad_legacy_files_are_skipped_the_good_ones_import_nothing_else_changes(tmp_path):
    """All hostile files of the corpus in one folder: each skipped, the one good file imported once."""
    for i, (case, content, _) in enumerate(LEGACY_CASES):
        if case == "larger-than-5-mb":
            continue  # the size check runs on stat() before reading; covered above
        (tmp_path / f"B{i:02d}.jpg").write_bytes(IMAGE)
        (tmp_path / f"B{i:02d}_json.txt").write_bytes(content)
    (tmp_path / "ZZ_good.jpg").write_bytes(IMAGE)
    (tmp_path / "ZZ_good_json.txt").write_bytes(text(doc()))
    (tmp_path / "orphan_json.txt").write_bytes(text(doc()))  # no image beside it
    store = AnnotationStore(f"sqlite:///{tmp_path / 'a.sqlite'}")
    report = import_legacy_dir(store, tmp_path)
    assert [f for f, _, _ in report.imported] == ["ZZ_good_json.txt"]
    assert len(report.skipped) == len(LEGACY_CASES) - 1 + 1
    assert all("\n" not in why for _, why in report.skipped)
    assert store.count_versions() == 1
    again = import_legacy_dir(store, tmp_path)  # idempotent: nothing new saved
    assert again.imported == () and store.count_versions() == 1


# ------------------------------------------------------------------ project JSON annotation files

def project_doc(**changes):
    base = {"schema": "displasia-annotation/1", "image": "TN_1.jpg", "image_sha256": "0" * 64,
            "annotator": "dr-a", "image_size": [120, 100],
            "cytoplasm": {"state": "granular", "degree": 2}, "chromatin": {"state": "homogenic", "degree": 1},
            "lobes": {"state": "normal"}, "condition": "normal",
            "shapes": [{"label": "cytoplasm", "points": [[10, 10], [90, 10], [90, 80]]}]}
    base.update(changes)
    return base


PROJECT_CASES = [
    ("deep", b"[" * 100_000 + b"]" * 100_000),
    ("not-json", b"{schema"),
    ("wrong-schema", text(project_doc(schema="displasia-annotation/99"))),
    ("unknown-field", text(project_doc(__proto__={"admin": True}))),
    ("degree-9", text(project_doc(cytoplasm={"state": "granular", "degree": 9}))),
    ("degree-nan", text(project_doc(cytoplasm={"state": "granular", "degree": float("nan")}))),
    ("state-unknown", text(project_doc(chromatin={"state": "plaid", "degree": 1}))),
    ("image-size-negative", text(project_doc(image_size=[-5, 100]))),
    ("image-size-huge", text(project_doc(image_size=[10**9, 10**9]))),
    ("points-inf", b'{"schema": "displasia-annotation/1", "image": "a.jpg", "image_sha256": "' + b"0" * 64 +
     b'", "annotator": "x", "image_size": [10, 10], "cytoplasm": {"state": "granular", "degree": 1}, '
     b'"chromatin": {"state": "homogenic", "degree": 1}, "lobes": {"state": "normal"}, "condition": "normal", '
     b'"shapes": [{"label": "cytoplasm", "points": [[1e999, 1], [2, 2], [3, 1]]}]}'),
    ("shapes-too-many", text(project_doc(shapes=[{"label": "nucleus", "points": [[1, 1], [5, 1], [5, 5]]}] * 100))),
    ("annotator-empty", text(project_doc(annotator=""))),
    ("note-huge", text(project_doc(note="x" * 100_000))),
]


@pytest.mark.parametrize("case, content", PROJECT_CASES, ids=[c[0] for c in PROJECT_CASES])
def test_hostile_project_annotation_files(tmp_path, case, content):
    path = tmp_path / "a.json"
    path.write_bytes(content)
    with pytest.raises(DisplasiaError) as info:
        read_annotation_file(path)
    message = str(info.value)
    assert "\n" not in message and len(message) < 400, message[:500]
