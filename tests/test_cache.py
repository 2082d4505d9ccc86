"""On-disk explanation cache: hits, misses, LRU eviction, corruption, atomicity, no pickle."""
from __future__ import annotations

import multiprocessing
import os
import time

import numpy as np
import pytest

from core.cache import ExplanationCache, make_key
from core.explain import Explanation, Params


def explanation(seed=0, n=1, size=8, **extras) -> Explanation:
    rng = np.random.default_rng(seed)
    base = {"labels": rng.integers(0, 5, (n, size, size)).astype(np.int32), "r2": 0.5, "layers": np.array(["a", "b"])}
    return Explanation("lime", "normal", rng.random((n, size, size), dtype=np.float32),
                       rng.random(n, dtype=np.float32), Params({"samples": 10, "fill": "mean", "stride": None}),
                       {"total": 1.5}, base | extras, 3)


def key(i=0):
    images = np.full((1, 8, 8, 3), i / 10, np.float32)
    return make_key("model-hash", images, "lime", 3, "normal", {"samples": 10})


def test_miss_then_hit_returns_the_same_explanation(tmp_path):
    cache = ExplanationCache(tmp_path)
    assert cache.get(key()) is None
    exp = explanation()
    cache.put(key(), exp)
    got = cache.get(key())
    assert got is not None and (cache.hits, cache.misses) == (1, 1)
    np.testing.assert_array_equal(got.maps, exp.maps)
    np.testing.assert_array_equal(got.baseline, exp.baseline)
    np.testing.assert_array_equal(got.extras["labels"], exp.extras["labels"])
    assert list(got.extras["layers"]) == ["a", "b"] and got.extras["r2"] == 0.5
    assert got.params == exp.params and got.version == 3 and got.timings == {"total": 1.5}
    assert (got.method, got.target) == ("lime", "normal")


def test_get_or_compute_computes_once(tmp_path):
    cache = ExplanationCache(tmp_path)
    calls = []
    for _ in range(3):
        cache.get_or_compute(key(), lambda: calls.append(1) or explanation())
    assert len(calls) == 1


def test_key_changes_with_every_part():
    images = np.zeros((1, 8, 8, 3), np.float32)
    base = make_key("m", images, "occlusion", 1, "normal", {"patch": 5})
    other = images.copy()
    other[0, 0, 0, 0] = 1 / 255
    variants = [make_key("m2", images, "occlusion", 1, "normal", {"patch": 5}),
                make_key("m", other, "occlusion", 1, "normal", {"patch": 5}),
                make_key("m", images, "lime", 1, "normal", {"patch": 5}),
                make_key("m", images, "occlusion", 2, "normal", {"patch": 5}),
                make_key("m", images, "occlusion", 1, "dysplastic", {"patch": 5}),
                make_key("m", images, "occlusion", 1, "normal", {"patch": 10}),
                make_key("m", images, "occlusion", 1, "normal", {"patch": 5}, cell_mask=np.ones((8, 8), bool))]
    assert len({base, *variants}) == len(variants) + 1
    assert base == make_key("m", images.copy(), "occlusion", 1, "normal", Params({"patch": 5}))


def test_least_recently_used_entries_are_evicted(tmp_path):
    one = len(open(ExplanationCache(tmp_path / "probe").put(key(9), explanation()), "rb").read())
    cache = ExplanationCache(tmp_path / "lru", max_bytes=int(3.5 * one))
    for i in range(3):
        cache.put(key(i), explanation(i))
        t = time.time() - 100 + i  # distinct modification times, oldest first
        os.utime(cache.path_of(key(i)), (t, t))
    assert cache.get(key(0)) is not None  # touching 0 makes 1 the least recently used
    cache.put(key(3), explanation(3))
    assert cache.get(key(1)) is None
    assert all(cache.get(key(i)) is not None for i in (0, 2, 3))
    assert cache.size_bytes() <= cache.max_bytes


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "wrong_key"])
def test_a_corrupt_entry_is_recomputed_never_shown(tmp_path, damage):
    cache = ExplanationCache(tmp_path)
    path = cache.put(key(), explanation(1))
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        data = bytearray(path.read_bytes())
        mid = len(data) // 2
        data[mid:mid + 64] = os.urandom(64)
        path.write_bytes(bytes(data))
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        os.replace(ExplanationCache(tmp_path / "other").put(key(5), explanation(5)), path)
    fresh = explanation(2)
    got = cache.get_or_compute(key(), lambda: fresh)
    np.testing.assert_array_equal(got.maps, fresh.maps)
    again = cache.get(key())
    np.testing.assert_array_equal(again.maps, fresh.maps)


def test_entries_never_hold_pickles(tmp_path):
    cache = ExplanationCache(tmp_path)
    with pytest.raises(TypeError):
        cache.put(key(), explanation(objects=np.array([{"a": 1}], dtype=object)))
    path = cache.put(key(), explanation())
    with np.load(path, allow_pickle=False) as archive:  # loads without pickle
        assert "maps" in archive.files
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".tmp-")]


def test_environment_sets_folder_and_size(tmp_path, monkeypatch):
    monkeypatch.setenv("DISPLASIA_CACHE_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("DISPLASIA_CACHE_MAX_MB", "1.5")
    cache = ExplanationCache()
    assert cache.folder == tmp_path / "env" and cache.max_bytes == int(1.5 * 2**20)


def _writer(folder, worker):
    cache = ExplanationCache(folder)
    for i in range(20):
        cache.put(key(i % 4), explanation(i % 4))
        got = cache.get(key((i + worker) % 4))
        if got is not None:
            np.testing.assert_array_equal(got.maps, explanation((i + worker) % 4).maps)


def test_several_processes_share_a_folder(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_writer, args=(tmp_path, w)) for w in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    cache = ExplanationCache(tmp_path)
    assert all(cache.get(key(i)) is not None for i in range(4))


def test_compute_goes_through_the_cache(tmp_path):
    from core.explain import compute
    from core.explain.testing import random_cells, tiny_cnn
    from core.model_io import from_keras

    model = from_keras(tiny_cnn(16, seed=0))
    images = random_cells(1, 16)
    cache = ExplanationCache(tmp_path)
    first = compute("occlusion", model, images, "normal", params={"patch": 4}, cache=cache)
    second = compute("occlusion", model, images, "normal", params={"patch": "4"}, cache=cache)
    assert (cache.misses, cache.hits) == (1, 1)
    np.testing.assert_array_equal(first.maps, second.maps)
    np.testing.assert_array_equal(first.extras["window_scores"], second.extras["window_scores"])
    compute("occlusion", model, images, "dysplastic", params={"patch": 4}, cache=cache)
    assert cache.misses == 2
