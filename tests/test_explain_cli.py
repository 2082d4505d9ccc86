"""``python -m core explain | methods | precompute``: good input works, bad input exits 2 with one line."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from core.explain.testing import random_cells, tiny_cnn

    folder = tmp_path_factory.mktemp("cli")
    model_path = folder / "tiny.keras"
    tiny_cnn(16, seed=0).save(model_path)
    cells = folder / "cells"
    cells.mkdir()
    for i, image in enumerate(random_cells(2, 16, seed=2)):
        Image.fromarray((image * 255).astype(np.uint8)).save(cells / f"TN_SNE_{i}.png")
    mask = np.zeros((16, 16), np.uint8)
    mask[3:13, 3:13] = 255
    Image.fromarray(mask).save(folder / "mask.png")
    return folder, model_path, cells


def test_explain_writes_the_raw_map_and_a_png(files, capsys):
    folder, model_path, cells = files
    out = folder / "map.npy"
    rc = main(["explain", "--model", str(model_path), str(cells / "TN_SNE_0.png"), "--method", "occlusion",
               "--set", "patch=4", "--set", "fill=grey", "--set", "score=probability", "--target", "normal", "--out", str(out),
               "--cache", str(folder / "cache")])
    assert rc == 0
    heat = np.load(out, allow_pickle=False)
    assert heat.shape == (16, 16) and heat.dtype == np.float32
    assert -1 <= heat.min() <= heat.max() <= 1  # occlusion's map: the drop of P(normal), a difference of probabilities
    png = folder / "map.png"
    assert main(["explain", "--model", str(model_path), str(cells / "TN_SNE_1.png"), "--method", "lime",
                 "--set", "samples=30", "--out", str(png), "--no-cache"]) == 0
    assert Image.open(png).size == (16, 16)
    assert main(["explain", "--model", str(model_path), str(cells / "TN_SNE_1.png"), "--method", "background",
                 "--mask", str(folder / "mask.png"), "--out", str(folder / "bg.npy"), "--no-cache"]) == 0
    assert np.load(folder / "bg.npy").sum() == 100


def test_methods_lists_every_method_and_parameter(capsys):
    from core.explain import METHODS

    assert main(["methods"]) == 0
    text = capsys.readouterr().out
    for spec in METHODS.values():
        assert spec.name in text
        for p in spec.params:
            assert f"{p.name}=" in text


@pytest.mark.parametrize("argv_tail,expected", [
    (["--method", "nope"], "Unknown explanation method"),
    (["--method", "occlusion", "--set", "patch=0"], "at least 1"),
    (["--method", "occlusion", "--set", "colour=red"], "no parameter 'colour'"),
    (["--method", "occlusion", "--set", "patch"], "key=value"),
    (["--method", "gradcam", "--set", "layer=dense"], "not a convolution-block layer"),
    (["--method", "background"], "--mask"),
    (["--method", "features"], "precompute"),
])
def test_bad_input_exits_2_with_one_line(files, capsys, argv_tail, expected):
    folder, model_path, cells = files
    rc = main(["explain", "--model", str(model_path), str(cells / "TN_SNE_0.png"), "--out", str(folder / "x.npy"),
               "--no-cache", *argv_tail])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0]


def test_bad_files_exit_2(files, capsys):
    folder, model_path, cells = files
    for argv in (["explain", "--model", str(model_path), str(folder / "missing.png"), "--method", "saliency",
                  "--out", str(folder / "x.npy")],
                 ["explain", "--model", str(model_path), str(cells / "TN_SNE_0.png"), "--method", "saliency",
                  "--out", str(folder / "x.txt")],
                 ["precompute", "--model", str(model_path), str(folder / "nowhere")]):
        assert main(argv) == 2
        assert capsys.readouterr().err.count("\n") == 1


@pytest.fixture(scope="module")
def scheduler():
    """A real Dask LocalCluster with worker threads in this process (no TensorFlow start per worker)."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None,
                                       silence_logs=40)
    yield cluster.scheduler_address
    cluster.close()


def test_precompute_fills_the_cache_then_explain_hits_it(files, scheduler, capsys):
    from core.cache import ExplanationCache

    folder, model_path, cells = files
    cache_dir = folder / "pre"
    rc = main(["precompute", "--model", str(model_path), str(cells), "--methods", "saliency", "gradcam", "features",
               "--cache", str(cache_dir), "--scheduler", scheduler, "--chunk", "1"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "2/2 cells" in err and "cells/s" in err and "ETA" in err
    assert "8 maps computed" in err
    # 2 cells x 2 methods x 2 targets, the streamed projection, and the Projection page's entry per target
    assert len(ExplanationCache(cache_dir).entries()) == 8 + 1 + 2
    main(["explain", "--model", str(model_path), str(cells / "TN_SNE_0.png"), "--method", "gradcam",
          "--out", str(folder / "g.npy"), "--cache", str(cache_dir)])
    assert len(ExplanationCache(cache_dir).entries()) == 11  # a hit: nothing new written
    # a second run submits nothing: the journal and the cache say every cell is done
    assert main(["precompute", "--model", str(model_path), str(cells), "--methods", "saliency", "gradcam",
                 "--cache", str(cache_dir), "--scheduler", scheduler]) == 0
    assert "0 maps computed" in capsys.readouterr().err


def test_precompute_reports_a_corrupt_image_and_does_the_rest(files, scheduler, tmp_path, capsys):
    folder, model_path, cells = files
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for path in cells.iterdir():
        (mixed / path.name).write_bytes(path.read_bytes())
    (mixed / "TD_SNE_broken.png").write_bytes(b"\x89PNG but no more")
    rc = main(["precompute", "--model", str(model_path), str(mixed), "--methods", "saliency", "--targets", "label",
               "--cache", str(tmp_path / "c"), "--scheduler", scheduler])
    err = capsys.readouterr().err
    assert rc == 1
    skipped = [line for line in err.splitlines() if line.startswith("precompute: skipped")]
    assert len(skipped) == 1 and "TD_SNE_broken.png" in skipped[0]
    assert "2 of 3 cells done" in err and "2 maps computed" in err


@pytest.mark.parametrize("argv_tail,expected", [
    (["--workers", "0"], "at least 1"),
    (["--methods", "background"], "outlines"),
    (["--methods", "nope"], "Unknown explanation method"),
])
def test_precompute_bad_options_exit_2(files, capsys, argv_tail, expected):
    folder, model_path, cells = files
    rc = main(["precompute", "--model", str(model_path), str(cells), "--cache", str(folder / "x"), *argv_tail])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and expected in err[0]
