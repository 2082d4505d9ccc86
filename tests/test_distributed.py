"""Precompute on a real Dask LocalCluster (2 worker processes): same maps, resumable, failures reported."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from core.config import REPO_ROOT

pytest.importorskip("distributed")

METHODS = ["gradcam", "occlusion"]
PARAMS = {"occlusion": {"patch": 4}}
N_CELLS = 12
LONG_CELLS = 40
KILL_METHODS = ["gradcam", "saliency"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    from core.explain.testing import random_cells, tiny_cnn

    folder = tmp_path_factory.mktemp("archive")
    model = folder / "tiny.keras"
    tiny_cnn(16, seed=0).save(model)
    cells = folder / "cells"
    cells.mkdir()
    for i, image in enumerate(random_cells(N_CELLS, 16, seed=7)):
        prefix = "TN" if i % 2 else "TD"
        Image.fromarray((image * 255).astype(np.uint8)).save(cells / f"{prefix}_SNE_{i:02d}.png")
    (cells / "ZD_corrupt.jpg").write_bytes(b"\xff\xd8\xff this is no JPEG")
    return folder, model, cells


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=40, env={"TF_CPP_MIN_LOG_LEVEL": "2"})
    dask_client = Client(cluster)
    yield dask_client
    dask_client.close()
    cluster.close()


@pytest.fixture(scope="module")
def long_archive(archive, tmp_path_factory):
    """More cells, so that a run can be killed half way."""
    from core.explain.testing import random_cells

    cells = tmp_path_factory.mktemp("long")
    for i, image in enumerate(random_cells(LONG_CELLS, 16, seed=8)):
        Image.fromarray((image * 255).astype(np.uint8)).save(cells / f"ZN_SNE_{i:03d}.png")
    return archive[1], cells


def _readable(cells):
    return sorted(p for p in cells.iterdir() if "corrupt" not in p.name)


def test_cluster_maps_equal_the_single_process_maps(archive, client, tmp_path):
    from core.cache import ExplanationCache
    from core.distributed import run_precompute
    from core.explain import cache_key, compute
    from core.model_io import load_model
    from core.preprocess import load_input

    folder, model_path, cells = archive
    seen = []
    run = run_precompute(cells, METHODS, params=PARAMS, model=model_path, cache=tmp_path / "cache", client=client,
                         chunk_size=3, background=False, progress=lambda p: seen.append((p.stage, p.done, p.rate)))
    assert run.error is None
    # the corrupt image is reported with one line and every other cell is done
    assert [name for name, _ in run.failures] == ["ZD_corrupt.jpg"], run.failures   # the reasons, if not
    assert "unreadable image" in run.failures[0][1] and "\n" not in run.failures[0][1]
    assert run.progress.done == N_CELLS + 1 and run.progress.computed == N_CELLS * 2 * 2
    assert seen[-1][0] == "done" and max(rate for _, _, rate in seen) > 0
    assert all(b >= a for (_, a, _), (_, b, _) in zip(seen, seen[1:]))
    # the model was loaded at most once per worker process
    assert 1 <= len(run.worker_model_loads) <= 2 and set(run.worker_model_loads.values()) == {1}
    loaded = load_model(model_path)
    cache = ExplanationCache(tmp_path / "cache")
    for path in _readable(cells):
        image = load_input(path, (16, 16))[None]
        for method in METHODS:
            for target in ("dysplastic", "normal"):
                here = compute(method, loaded, image, target, params=PARAMS.get(method))
                there = cache.get(cache_key(loaded, image, method, target, PARAMS.get(method)))
                assert there is not None, (path.name, method, target)
                np.testing.assert_allclose(there.maps, here.maps, rtol=1e-5, atol=1e-6)
                np.testing.assert_allclose(there.baseline, here.baseline, atol=1e-6)


def _executing(dask_worker) -> int:
    return len(dask_worker.state.executing) + len(dask_worker.state.ready)


def _idle(client, timeout=60.0):
    """Wait until no worker runs a task (a killed client's tasks finish in the worker)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(client.processing().values()) and not any(client.run(_executing).values()):
            return
        time.sleep(0.1)


def _finished_lines(journal) -> int:
    """Whole lines in the journal: the file exists from the moment it is opened, before its first line is written."""
    try:
        return journal.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def test_killed_run_resumes_without_recomputing(long_archive, client, tmp_path):
    from core.cache import ExplanationCache
    from core.distributed import run_precompute

    model_path, cells = long_archive
    cache_dir = tmp_path / "cache"
    journal = cache_dir / "journal" / "precompute.jsonl"
    argv = [sys.executable, "-m", "core", "precompute", "--model", str(model_path), str(cells),
            "--methods", *KILL_METHODS, "--scheduler", client.scheduler.address, "--chunk", "1",
            "--cache", str(cache_dir)]
    proc = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and not _finished_lines(journal):
            time.sleep(0.005)
        if proc.poll() is not None:
            pytest.fail("the run ended before it could be killed: " + proc.stderr.read().decode()[-300:])
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    _idle(client)  # tasks the killed client left running finish (and write) before we count
    before = len(ExplanationCache(cache_dir).entries())
    total = LONG_CELLS * len(KILL_METHODS) * 2
    assert 0 < before < total
    again = run_precompute(cells, KILL_METHODS, model=model_path, cache=cache_dir, client=client, chunk_size=4,
                           background=False)
    assert again.error is None and not again.failures
    assert again.progress.computed == total - before  # nothing already cached is computed again
    assert again.progress.skipped >= 1  # the journal said so before anything was submitted
    assert len(ExplanationCache(cache_dir).entries()) == total
    # without the journal, the workers find every map in the cache: still nothing recomputed
    journal.unlink()
    third = run_precompute(cells, KILL_METHODS, model=model_path, cache=cache_dir, client=client, chunk_size=8,
                           background=False)
    assert third.progress.computed == 0 and third.progress.cached == total and third.progress.skipped == 0
    fourth = run_precompute(cells, KILL_METHODS, model=model_path, cache=cache_dir, client=client, background=False)
    assert fourth.progress.skipped == LONG_CELLS and fourth.progress.computed == fourth.progress.cached == 0


def test_projection_streams_and_caches_features(archive, client, tmp_path):
    from core.cache import ExplanationCache
    from core.distributed import run_precompute
    from core.explain import cache_key
    from core.explain.features import features_and_scores
    from core.model_io import load_model
    from core.preprocess import load_batch

    folder, model_path, cells = archive
    run = run_precompute(cells, ["features"], model=model_path, cache=tmp_path / "cache", client=client,
                         chunk_size=5, background=False)
    cache = ExplanationCache(tmp_path / "cache")
    exp = cache.get(run.projection_key)
    assert exp is not None and exp.maps.shape == (N_CELLS + 1, 1, 1)
    names = sorted(p.name for p in cells.iterdir())
    corrupt = names.index("ZD_corrupt.jpg")
    assert not exp.extras["included"][corrupt] and exp.extras["included"].sum() == N_CELLS
    assert np.isnan(exp.extras["tsne"][corrupt]).all()
    assert np.isfinite(np.delete(exp.extras["tsne"], corrupt, axis=0)).all()
    loaded = load_model(model_path)
    images = load_batch(_readable(cells), (16, 16))
    feats, scores = features_and_scores(loaded, images)
    np.testing.assert_allclose(np.delete(exp.extras["features"], corrupt, axis=0), feats, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.delete(exp.baseline, corrupt), scores, atol=1e-6)
    assert exp.extras["features"].dtype == np.float32
    # small sets also get the in-memory entries the Projection page asks for (one t-SNE, both targets)
    normal = cache.get(cache_key(loaded, images, "features", "normal"))
    dysplastic = cache.get(cache_key(loaded, images, "features", "dysplastic"))
    assert normal.target == "normal" and dysplastic.target == "dysplastic"
    np.testing.assert_allclose(normal.baseline, scores, atol=1e-6)
    np.testing.assert_allclose(dysplastic.baseline, 1 - scores, atol=1e-6)
    np.testing.assert_array_equal(normal.extras["tsne"], dysplastic.extras["tsne"])
    np.testing.assert_allclose(normal.extras["features"], feats, rtol=1e-5, atol=1e-6)


def test_features_and_scores_match_the_score_head():
    from core.explain.features import features_and_scores
    from core.explain.testing import random_cells, tiny_cnn
    from core.model_io import from_keras

    for softmax in (False, True):
        loaded = from_keras(tiny_cnn(16, seed=3, softmax=softmax))
        images = random_cells(5, 16, seed=1)
        feats, p = features_and_scores(loaded, images)
        assert feats.shape == (5, 16) and feats.dtype == np.float32
        np.testing.assert_allclose(p, loaded.score_fn(images).numpy().reshape(-1), atol=1e-6)


def test_large_projection_uses_opentsne_and_survives_identical_rows():
    pytest.importorskip("openTSNE")
    from core.explain.features import _project

    rng = np.random.default_rng(0)
    features = np.vstack([rng.normal(0, 1, (20, 12)), rng.normal(6, 1, (20, 12))]).astype(np.float32)
    tsne, pca, ratio, used, engine = _project(features, perplexity=30, seed=1, large_from=10)
    assert engine == "opentsne" and tsne.shape == (40, 2) and np.isfinite(tsne).all()
    assert used == pytest.approx(39 / 3)
    # the two clusters stay apart
    a, b = tsne[:20].mean(axis=0), tsne[20:].mean(axis=0)
    assert np.linalg.norm(a - b) > 2 * max(tsne[:20].std(), tsne[20:].std())
    same = _project(np.ones((12, 8), np.float32), large_from=10)
    assert np.isfinite(same[0]).all()


def test_the_report_reads_every_map_the_cluster_made(archive, client, tmp_path):
    """`report --scheduler` fills the cache on the cluster first: the report itself must then
    find every map and occlusion window there (same parameters, same keys), computing none."""
    from core.cache import ExplanationCache
    from core.model_io import load_model
    from core.summary.cli import maps_on_cluster
    from core.summary.maps import dataset_maps
    from core.summary.occlusion import occlusion_changes
    from core.summary.study import load_study

    folder, model_path, cells = archive
    methods = ("saliency", "lime", "occlusion", "gradcam")  # signed, stability runs, window scores, no params
    run = maps_on_cluster(cells, methods, target="label", patches=(4, 8), model=model_path, cache=tmp_path / "cache",
                          client=client, progress=lambda p: None)
    assert run.error is None and run.progress.computed == N_CELLS * (len(methods) + 2)
    cache = ExplanationCache(tmp_path / "cache")
    study = load_study(cells, load_model(model_path))
    assert len(study) == N_CELLS
    dataset_maps(study, methods, cache=cache)
    occlusion_changes(study, patches=(4, 8), cache=cache)
    assert (cache.misses, cache.hits) == (0, N_CELLS * (len(methods) + 2))
