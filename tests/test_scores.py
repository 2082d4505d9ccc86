"""The persistent score store (core.scores) and the dataset zip upload (core.dataset_zip)."""
from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest

from core.dataset_zip import extract_dataset_zip
from core.errors import DisplasiaError
from core.preprocess import image_hash
from core.scores import ScoreStore, preprocessing_key, score_missing


def test_file_hashes_equal_image_hash_and_are_remembered(tmp_path):
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    a.write_bytes(b"first")
    b.write_bytes(b"second")
    store = ScoreStore(tmp_path / "s.sqlite")
    assert store.file_hashes([a, b]) == [image_hash(a), image_hash(b)]
    # Same size and time: the remembered hash is used (the file is not read again) ...
    stat = os.stat(a)
    a.write_bytes(b"FIRST")
    os.utime(a, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert store.file_hashes([a])[0] == image_hash(b"first")
    # ... a changed modification time makes it read the file again.
    os.utime(a, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert store.file_hashes([a])[0] == image_hash(b"FIRST")


def test_model_key_depends_on_every_file(tmp_path):
    arch, weights, other = tmp_path / "m.json", tmp_path / "w.h5", tmp_path / "w2.h5"
    arch.write_text("{}")
    weights.write_bytes(b"1")
    other.write_bytes(b"2")
    store = ScoreStore(tmp_path / "s.sqlite")
    assert store.model_key(arch, weights) != store.model_key(arch, other) != store.model_key(arch)
    assert store.model_key(arch, weights) == ScoreStore(tmp_path / "s.sqlite").model_key(arch, weights)


def test_scores_are_keyed_by_model_image_and_preprocessing(tmp_path):
    store = ScoreStore(tmp_path / "s.sqlite")
    store.put("m", ["i1", "i2"], "v1:nearest", [0.1, 0.9])
    again = ScoreStore(tmp_path / "s.sqlite")                        # another process / a restart
    assert again.get("m", ["i2", "i1"], "v1:nearest").tolist() == [0.9, 0.1]
    assert np.isnan(again.get("other", ["i1"], "v1:nearest")).all()
    assert np.isnan(again.get("m", ["i1"], "v1:bilinear")).all()
    again.remember_model("m", "content")
    assert again.content_hash("m") == "content" and again.content_hash("x") is None


def test_repeated_reads_are_served_from_memory_until_another_writer_commits(tmp_path):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.jpg")
        paths[-1].write_bytes(bytes([i]))
    store = ScoreStore(tmp_path / "s.sqlite")
    hashes = store.file_hashes(paths)
    store.put("m", hashes[:1], "v1:nearest", [0.5])
    assert np.isnan(store.get("m", hashes, "v1:nearest")).tolist() == [False, True, True]
    statements = []
    store._conn.set_trace_callback(statements.append)                # what SQLite really runs
    assert store.file_hashes(paths) == hashes and store.checked(paths, lambda p: None) == [None] * 3
    store.get("m", hashes, "v1:nearest")
    assert not [s for s in statements if "scores" in s or "FROM files" in s]   # only the checks were new
    other = ScoreStore(tmp_path / "s.sqlite")                        # another process's connection
    other.put("m", hashes[1:], "v1:nearest", [0.25, 0.75])
    assert store.get("m", hashes, "v1:nearest").tolist() == [0.5, 0.25, 0.75]
    store.put("m", hashes[:1], "v1:nearest", [0.125])                # and this store's own writes
    assert store.get("m", hashes, "v1:nearest").tolist() == [0.125, 0.25, 0.75]


def test_checked_runs_the_check_once_per_file_version(tmp_path):
    path = tmp_path / "a.jpg"
    path.write_bytes(b"x")
    calls = []

    def check(p):
        calls.append(p)
        return "broken"

    store = ScoreStore(tmp_path / "s.sqlite")
    assert store.checked([path], check) == ["broken"]
    assert store.checked([path], check) == ["broken"]
    assert len(calls) == 1


def test_unchecked_counts_files_never_checked_without_touching_them(tmp_path):
    store = ScoreStore(tmp_path / "s.sqlite")
    files = [tmp_path / f"{i}.jpg" for i in range(3)]
    for f in files:
        f.write_bytes(b"x")
    assert store.unchecked(files) == 3
    store.checked(files[:2], lambda p: None)
    assert store.unchecked(files) == 1
    files[0].unlink()                                   # by path only: a gone file still counts as checked
    assert ScoreStore(tmp_path / "s.sqlite").unchecked(files) == 1


def test_file_hashes_of_unreadable_files_use_the_fallback_and_are_not_remembered(tmp_path):
    store = ScoreStore(tmp_path / "s.sqlite")
    good, locked, gone = tmp_path / "a.jpg", tmp_path / "b.jpg", tmp_path / "c.jpg"
    good.write_bytes(b"a")
    locked.mkdir()                                      # a folder named like an image: open() fails
    with pytest.raises(OSError):
        store.file_hashes([good, locked])
    hashes = store.file_hashes([good, locked, gone], on_error=lambda path, exc: f"bad:{os.path.basename(path)}")
    assert hashes == [image_hash(good), "bad:b.jpg", "bad:c.jpg"]
    locked.rmdir()
    locked.write_bytes(b"b")
    assert store.file_hashes([locked]) == [image_hash(locked)]


def test_score_missing_scores_only_what_is_missing(tmp_path, tiny_model):
    from PIL import Image

    from core.model_io import from_keras
    from core.predict import predict_files

    loaded = from_keras(tiny_model)
    rng = np.random.default_rng(1)
    paths = []
    for i in range(5):
        path = tmp_path / f"c{i}.png"
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    store = ScoreStore(tmp_path / "s.sqlite")
    hashes = store.file_hashes(paths)
    store.put("m", hashes[:2], preprocessing_key("nearest"), [0.5, 0.5])      # pretend two are known
    seen = []
    assert score_missing(store, loaded, "m", paths, hashes, "nearest", batch_size=2,
                         progress=lambda d, t: seen.append((d, t))) == 3
    assert seen == [(2, 3), (3, 3)]
    stored = store.get("m", hashes, preprocessing_key("nearest"))
    assert stored[:2].tolist() == [0.5, 0.5]
    np.testing.assert_allclose(stored[2:], predict_files(loaded, paths[2:]), atol=1e-6)
    assert score_missing(store, loaded, "m", paths, hashes, "nearest") == 0


def _zip(members: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buffer.getvalue()


def test_zip_keeps_class_folders_and_labels_and_nothing_escapes(tmp_path):
    from PIL import Image

    from core.datasets import scan_dataset

    def jpeg():
        out = io.BytesIO()
        Image.new("RGB", (8, 8), (200, 100, 50)).save(out, format="JPEG")
        return out.getvalue()

    data = _zip({"set/normal/a.jpg": jpeg(), "set/dysplastic/b.jpg": jpeg(), "set/c.jpg": jpeg(),
                 "set/labels.csv": "image,label\nc.jpg,dysplastic\n", "/etc/../../x.jpg": jpeg(), "set/readme.md": "no"})
    folder = tmp_path / "out"
    names = extract_dataset_zip(data, folder, max_bytes=10**6)
    assert names == ["c.jpg", "dysplastic/b.jpg", "labels.csv", "normal/a.jpg", "x.jpg"]
    assert all(p.resolve().is_relative_to(folder.resolve()) for p in folder.rglob("*"))
    labels = {c.name: c.label for c in scan_dataset(folder, roots=[tmp_path]).cells}
    assert labels == {"c.jpg": "dysplastic", "dysplastic/b.jpg": "dysplastic", "normal/a.jpg": "normal", "x.jpg": None}


@pytest.mark.parametrize("members, limit, message", [
    ({"a.jpg": b"x" * 5000}, 1000, "MiB"),
    ({"notes.txt": b"x"}, 1000, "no cell images"),
])
def test_zip_limits_are_one_line_errors(tmp_path, members, limit, message):
    with pytest.raises(DisplasiaError, match=message):
        extract_dataset_zip(_zip(members), tmp_path / "out", max_bytes=limit)


def test_not_a_zip_is_one_line(tmp_path):
    with pytest.raises(DisplasiaError, match="not a valid zip"):
        extract_dataset_zip(b"PK nope", tmp_path / "out", max_bytes=1000)


def test_zip_too_many_files(tmp_path):
    with pytest.raises(DisplasiaError, match="at most 2"):
        extract_dataset_zip(_zip({"a.jpg": b"1", "b.jpg": b"2", "c.jpg": b"3"}), tmp_path / "out", max_bytes=100, max_files=2)
