"""Hostile corpus, images and paths: a bad file in a dataset is skipped and listed, the rest
show; files whose real path leaves the shared folders are refused; degenerate deep features
(identical cells) no longer kill the process in t-SNE."""
from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from core.datasets import image_problem, scan_dataset
from core.errors import DisplasiaError
from core.preprocess import load_rgb


def jpeg_bytes(size=(40, 40), mode="RGB", seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "CMYK": 4}[mode]
    image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8), mode)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def png_bytes(array, **kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, **kwargs).save(buffer, "PNG")
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_declaring(width: int, height: int, *, bad_crc=False) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` pixels (decompression bomb)."""
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    if bad_crc:
        ihdr = ihdr[:-4] + b"\0\0\0\0"
    return b"\x89PNG\r\n\x1a\n" + ihdr + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")


def bmp_declaring(width: int, height: int) -> bytes:
    header = struct.pack("<2sIHHI", b"BM", 54, 0, 0, 54)
    dib = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return header + dib + b"\0" * 16


GOOD = jpeg_bytes()

# (case id, file name, bytes, words expected in the skip reason)
BAD_FILES = [
    ("empty-jpg", "empty.jpg", b"", "not an image"),
    ("text-as-jpg", "notes.jpg", b"hello, this is not an image\n" * 10, "not an image"),
    ("truncated-jpeg", "half.jpg", GOOD[: len(GOOD) // 2], "not a readable image"),
    ("jpeg-header-only", "head.jpg", GOOD[:120], "not a readable image"),
    ("png-signature-only", "sig.png", b"\x89PNG\r\n\x1a\n", "not"),
    ("png-truncated", "cut.png", png_bytes(np.zeros((40, 40, 3), np.uint8))[:60], "not a readable image"),
    ("png-declares-10-gigapixels", "bomb.png", png_declaring(100_000, 100_000), "too large"),
    ("png-bad-header-crc", "crc.png", png_declaring(40, 40, bad_crc=True), "not"),
    ("bmp-declares-2.5-gigapixels", "bomb.bmp", bmp_declaring(50_000, 50_000), "too large"),
    ("tiff-garbage-ifd", "junk.tif", b"II*\x00" + struct.pack("<I", 8) + b"\xff" * 64, "not"),
    ("html-as-png", "page.png", b"<html><img src='https://host/x'></html>", "not an image"),
    ("svg-as-png", "vector.png", b"<svg xmlns='http://www.w3.org/2000/svg'><image href='https://host'/></svg>", "not an image"),
    ("zip-as-jpg", "archive.jpg", b"PK\x03\x04" + b"\0" * 200, "not an image"),
    ("nul-bytes-as-bmp", "zeros.bmp", b"\0" * 4096, "not an image"),
    ("gif-bytes-huge-as-png", "gif.png", b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\0" * 20, "not"),
]


@pytest.mark.parametrize("case, name, data, words", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_a_bad_file_is_skipped_and_listed_the_rest_show(tmp_path, case, name, data, words):
    (tmp_path / "TN_good.jpg").write_bytes(GOOD)
    (tmp_path / "ZD_good.jpg").write_bytes(jpeg_bytes(seed=1))
    (tmp_path / name).write_bytes(data)
    ds = scan_dataset(tmp_path, roots=[])
    assert ds.names() == ["TN_good.jpg", "ZD_good.jpg"]
    assert len(ds.skipped) == 1 and ds.skipped[0][0] == name
    assert words in ds.skipped[0][1] and "\n" not in ds.skipped[0][1]
    with pytest.raises(DisplasiaError) as info:  # and opened directly, one line
        load_rgb(tmp_path / name)
    assert "\n" not in str(info.value)


GOOD_VARIANTS = [
    ("one-pixel", "one.png", png_bytes(np.zeros((1, 1, 3), np.uint8))),
    ("rgba", "alpha.png", png_bytes(np.zeros((8, 8, 4), np.uint8))),
    ("grey-16-bit", "wide.png", png_bytes(np.full((8, 8), 40000, np.uint16))),
    ("cmyk-jpeg", "cmyk.jpg", jpeg_bytes(mode="CMYK")),
    ("markdown-name", "![t](x).jpg", GOOD),
    ("formula-name", "=cmd|' -C calc'!A0.jpg", GOOD),
    ("html-name", "<img src=x onerror=alert(1)>.jpg", GOOD),
    ("newline-name", "two\nlines.jpg", GOOD),
    ("unicode-name", "célula_ñ_細胞.jpg", GOOD),
]


@pytest.mark.parametrize("case, name, data", GOOD_VARIANTS, ids=[c[0] for c in GOOD_VARIANTS])
def test_odd_but_valid_files_are_kept(tmp_path, case, name, data):
    (tmp_path / name).write_bytes(data)
    ds = scan_dataset(tmp_path, roots=[])
    assert ds.names() == [name] and ds.skipped == ()
    assert load_rgb(tmp_path / name).shape[-1] == 3


def test_oversized_image_setting(tmp_path, monkeypatch):
    from core.settings import reload_settings

    (tmp_path / "a.jpg").write_bytes(jpeg_bytes((100, 100)))
    (tmp_path / "b.jpg").write_bytes(GOOD)
    monkeypatch.setenv("DISPLASIA_UPLOADS_MAX_IMAGE_PIXELS", "5000")
    try:
        ds = scan_dataset(tmp_path, roots=[])
        assert ds.names() == ["b.jpg"] and ds.skipped == (("a.jpg", "too large (100x100 pixels)"),)
    finally:
        monkeypatch.undo()
        reload_settings()


def test_a_folder_of_only_bad_files_is_one_line(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "b.png").write_bytes(b"junk")
    with pytest.raises(DisplasiaError, match=r"No readable images in .*: 2 skipped \(first: a.jpg: not an image\)"):
        scan_dataset(tmp_path, roots=[])


def test_a_folder_named_like_an_image_is_not_a_cell(tmp_path):
    (tmp_path / "folder.jpg").mkdir()
    (tmp_path / "TN_1.jpg").write_bytes(GOOD)
    assert scan_dataset(tmp_path, roots=[]).names() == ["TN_1.jpg"]


@pytest.mark.parametrize("target", ["missing", "file"])
def test_dataset_folder_missing_or_a_file(tmp_path, target):
    path = tmp_path / "x"
    if target == "file":
        path.write_bytes(GOOD)
    with pytest.raises(DisplasiaError, match="Image folder not found"):
        scan_dataset(path, roots=[])


@pytest.mark.parametrize("content, words", [
    (b"image,label\nTN_1.jpg,maybe\n", "unknown label"),
    (b"\xff\xfe\x00\x00garbage", "not a readable CSV"),
    (b"name,score\nTN_1.jpg,1\n", "needs the columns"),
    (b"image,label\n" + b"x" * 200_000 + b",normal\n", "not a readable CSV"),
], ids=["unknown-label", "binary", "wrong-columns", "huge-field"])
def test_hostile_labels_csv(tmp_path, content, words):
    (tmp_path / "TN_1.jpg").write_bytes(GOOD)
    (tmp_path / "labels.csv").write_bytes(content)
    with pytest.raises(DisplasiaError) as info:
        scan_dataset(tmp_path, roots=[])
    assert words in str(info.value) and "\n" not in str(info.value)


# ------------------------------------------------------------------------------ confinement

@pytest.fixture
def shared(tmp_path):
    """A data root with a dataset, and a private folder outside it."""
    root, private = tmp_path / "root", tmp_path / "private"
    (root / "cells").mkdir(parents=True)
    private.mkdir()
    (root / "cells" / "TN_1.jpg").write_bytes(GOOD)
    (private / "patient.jpg").write_bytes(jpeg_bytes(seed=3))
    (root / "elsewhere.jpg").write_bytes(jpeg_bytes(seed=4))
    return root, private


def test_file_symlink_leaving_the_roots_is_refused(shared):
    root, private = shared
    (root / "cells" / "TD_2.jpg").symlink_to(private / "patient.jpg")
    ds = scan_dataset(root / "cells", roots=[root])
    assert ds.names() == ["TN_1.jpg"]
    assert ds.skipped == (("TD_2.jpg", "refused: links outside the shared folders"),)


def test_file_symlink_to_a_system_file_is_refused(shared):
    root, _ = shared
    (root / "cells" / "passwd.jpg").symlink_to("/etc/passwd")
    ds = scan_dataset(root / "cells", roots=[root])
    assert ("passwd.jpg", "refused: links outside the shared folders") in ds.skipped


def test_file_symlink_inside_the_roots_is_kept(shared):
    root, _ = shared
    (root / "cells" / "TD_3.jpg").symlink_to(root / "elsewhere.jpg")
    assert scan_dataset(root / "cells", roots=[root]).names() == ["TD_3.jpg", "TN_1.jpg"]


def test_class_folder_symlinked_outside_is_refused(shared):
    root, private = shared
    (root / "cells" / "dysplastic").symlink_to(private, target_is_directory=True)
    ds = scan_dataset(root / "cells", roots=[root])
    assert ds.names() == ["TN_1.jpg"]
    assert ds.skipped == (("dysplastic/patient.jpg", "refused: links outside the shared folders"),)


def test_broken_and_looping_links_are_listed(shared):
    root, _ = shared
    (root / "cells" / "gone.jpg").symlink_to(root / "nothing.jpg")
    (root / "cells" / "loop.jpg").symlink_to(root / "cells" / "loop.jpg")
    ds = scan_dataset(root / "cells", roots=[root])
    assert ds.names() == ["TN_1.jpg"]
    assert dict(ds.skipped) == {"gone.jpg": "broken symbolic link", "loop.jpg": "broken symbolic link"}


def test_default_roots_come_from_the_settings(shared, monkeypatch):
    from core.settings import reload_settings

    root, private = shared
    (root / "cells" / "TD_2.jpg").symlink_to(private / "patient.jpg")
    monkeypatch.setenv("DISPLASIA_DATA_ROOTS", f"{root}{os.pathsep}{private}")
    try:
        assert scan_dataset(root / "cells").names() == ["TD_2.jpg", "TN_1.jpg"]
    finally:
        monkeypatch.undo()
        reload_settings()


def test_image_problem_of_an_unreadable_file(tmp_path):
    path = tmp_path / "x.jpg"
    path.write_bytes(GOOD)
    assert image_problem(path) is None
    assert image_problem(tmp_path / "missing.jpg") in ("not readable (permissions)",) or \
        image_problem(tmp_path / "missing.jpg").startswith("not")


# ------------------------------------------------------------------ t-SNE on degenerate features

def test_tsne_on_four_identical_cells_does_not_kill_the_process():
    """scikit-learn's init='pca' segfaulted here (a web user uploading 4 identical cells);
    now the degenerate PCA start is replaced by a random one, and the fit runs in a child."""
    from core.explain._tsne import tsne_2d

    tsne, init = tsne_2d(np.ones((4, 4096)), perplexity=3.0, max_iter=250)  # project() uses the same call
    assert tsne.shape == (4, 2) and np.isfinite(tsne).all() and init == "random"


@pytest.mark.parametrize("case, features", [
    ("identical-rows", np.ones((4, 4096))),
    ("all-zero-features", np.zeros((6, 64))),
    ("huge-values", np.ones((5, 40)) * 1e30),
    ("one-row-differs-by-1e-300", np.vstack([np.zeros((4, 8)), np.full((1, 8), 1e-300)])),
], ids=lambda v: v if isinstance(v, str) else "")
def test_degenerate_pca_start_is_detected(case, features):
    """The starts that made the native Barnes-Hut tree segfault are never handed to it."""
    from core.explain._tsne import pca_start

    assert pca_start(features, 0) is None


def test_normal_features_keep_sklearns_pca_start():
    from core.explain._tsne import pca_start

    start = pca_start(np.random.default_rng(0).random((12, 20)), 0)
    assert start.shape == (12, 2) and np.isclose(np.std(start[:, 0]), 1e-4)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_features_are_one_line(bad):
    from core.explain.features import project

    features = np.ones((5, 8))
    features[2, 3] = bad
    with pytest.raises(DisplasiaError, match="NaN or infinite"):
        project(features)


@pytest.mark.parametrize("n", [1, 2, 3], ids=["one-cell", "two-cells", "three-cells"])
def test_too_few_cells_fall_back_to_pca(n):
    from core.explain.features import project

    tsne, pca, _, used = project(np.ones((n, 8)))
    assert used == 0.0 and np.array_equal(tsne, pca)


def test_a_crashing_tsne_child_costs_one_request():
    """If the native code dies anyway, the caller gets a one-line error, not a dead server."""
    from core.explain import _tsne

    with pytest.raises(DisplasiaError, match="t-SNE failed on these features"):
        _tsne._run_child(np.ones((4, 3)), {"perplexity": "not a number", "seed": 0, "init": "random"})


def test_guarded_tsne_equals_sklearn_on_normal_features():
    from sklearn.manifold import TSNE

    from core.explain._tsne import tsne_2d

    x = np.random.default_rng(0).random((8, 6))
    expected = TSNE(n_components=2, perplexity=3.0, init="pca", random_state=0, max_iter=250).fit_transform(x)
    got, init = tsne_2d(x, perplexity=3.0, seed=0, isolate=False, max_iter=250)
    assert init == "pca"
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_model_file_linking_outside_the_roots_is_refused(shared):
    """The dashboard's model picker offers only files whose real path stays in the roots."""
    from core.datasets import confinement_problem

    root, private = shared
    (private / "secret.keras").write_bytes(b"PK")
    (root / "evil.keras").symlink_to(private / "secret.keras")
    (root / "fine.keras").write_bytes(b"PK")
    assert confinement_problem(root / "evil.keras", [root.resolve()]) == "refused: links outside the shared folders"
    assert confinement_problem(root / "fine.keras", [root.resolve()]) is None


# ---------------------------------------------------------- every method on degenerate pixels

_FAST_METHODS = ["feature_maps", "saliency", "smoothgrad", "occlusion", "lime", "gradcam", "gradcam_pp", "scorecam",
                 "xgradcam", "layercam", "background"]


@pytest.fixture(scope="module")
def tiny_loaded():
    from core.model_io import from_keras
    from tests.conftest import tiny_cnn

    return from_keras(tiny_cnn(0))


@pytest.mark.parametrize("fill", [0.0, 1.0], ids=["black", "white"])
@pytest.mark.parametrize("method", _FAST_METHODS)
def test_every_method_survives_a_constant_image(tiny_loaded, method, fill):
    """Constant pixels (zero gradients, one superpixel, flat scores): a finite map or one line."""
    from core.explain import METHODS, compute

    if method not in METHODS:
        pytest.skip(f"{method} is not registered here")
    image = np.full((1, 16, 16, 3), fill, np.float32)
    mask = np.zeros((1, 16, 16), bool)
    mask[:, 4:12, 4:12] = True
    try:
        exp = compute(method, tiny_loaded, image, "dysplastic", params={},
                      cell_mask=mask if method == "background" else None)
    except DisplasiaError as exc:
        assert "\n" not in str(exc)
        return
    assert np.isfinite(exp.maps).all() and np.isfinite(exp.baseline).all()
