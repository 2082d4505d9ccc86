"""Explanation cache size accounting: a write does not list the whole folder.

The folder listings are observed by counting the real ``os.scandir`` calls on the cache
folder itself (the call still runs); the previous cache listed it on every ``put``.
"""
from __future__ import annotations

import multiprocessing
import os

import numpy as np
import pytest

from core.cache import ExplanationCache, make_key
from core.explain import Explanation, Params


def explanation(seed=0) -> Explanation:
    rng = np.random.default_rng(seed)
    return Explanation("occlusion", "normal", rng.random((1, 8, 8), dtype=np.float32), rng.random(1, dtype=np.float32),
                       Params({"patch": 4}), {}, {}, 1)


def key(i) -> str:
    return make_key("model-hash", np.full((1, 8, 8, 3), i / 1000, np.float32), "occlusion", 1, "normal", {"patch": 4})


def folder_bytes(folder) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*.npz") if not p.name.startswith(".tmp-"))


@pytest.fixture
def listings(monkeypatch):
    """Counts of real ``os.scandir`` calls per folder."""
    counts: dict[str, int] = {}
    real = os.scandir

    def counting(path="."):
        counts[os.path.abspath(path)] = counts.get(os.path.abspath(path), 0) + 1
        return real(path)

    monkeypatch.setattr(os, "scandir", counting)
    return counts


def test_writes_below_the_limit_list_the_folder_once(tmp_path, listings):
    one = len(ExplanationCache(tmp_path / "probe").put(key(0), explanation()).read_bytes())
    cache = ExplanationCache(tmp_path / "c", max_bytes=60 * one)
    for i in range(60):
        cache.put(key(i), explanation(i))
    for i in range(15):                                 # rewritten entries are not counted twice (else: a listing)
        cache.put(key(i % 5), explanation(i + 100))
    assert listings.get(str(tmp_path / "c"), 0) <= 1    # the old cache: 75
    assert all(cache.get(key(i)) is not None for i in range(60))


def test_a_full_cache_stays_within_its_limit_without_listing_on_every_write(tmp_path, listings):
    one = len(ExplanationCache(tmp_path / "probe").put(key(0), explanation()).read_bytes())
    cache = ExplanationCache(tmp_path / "full", max_bytes=20 * one)
    sizes = []
    for i in range(100):
        cache.put(key(i), explanation(i))
        sizes.append(sum(e.stat().st_size for e in (tmp_path / "full").glob("*/*.npz")))  # glob lists via scandir too
    assert max(sizes) <= cache.max_bytes
    # 90 % low water leaves room for two entries between evictions: about 1 + 80 / 3 listings
    assert listings[str(tmp_path / "full")] - 100 <= 30  # minus the test's own 100 listings; the old cache: 100
    newest = [key(i) for i in range(95, 100)]
    assert all(cache.get(k) is not None for k in newest) and cache.get(key(0)) is None


def _other_writer(folder, start):
    cache = ExplanationCache(folder, max_bytes=2**30)
    for i in range(start, start + 6):
        cache.put(key(i), explanation(i))


def test_entries_of_other_processes_are_counted_at_the_next_listing(tmp_path):
    one = len(ExplanationCache(tmp_path / "probe").put(key(0), explanation()).read_bytes())
    cache = ExplanationCache(tmp_path / "shared", max_bytes=10 * one)
    for i in range(3):
        cache.put(key(i), explanation(i))
    other = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    writer = other.Process(target=_other_writer, args=(tmp_path / "shared", 100))
    writer.start()
    writer.join(60)
    assert writer.exitcode == 0
    for i in range(3, 5):                               # this process's total says 5 entries: no listing
        cache.put(key(i), explanation(i))
    assert folder_bytes(tmp_path / "shared") == 11 * one   # over the limit by what the other process wrote
    cache.REFRESH_S = 0.0                               # as after REFRESH_S seconds
    cache.put(key(5), explanation(5))
    assert folder_bytes(tmp_path / "shared") <= cache.max_bytes * cache.LOW_WATER
    assert cache.get(key(5)) is not None
