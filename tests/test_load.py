"""Load: concurrent sessions share one computation per map; a light run of scripts/load_test.py."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from core.cache import ExplanationCache
from core.explain.base import Explanation, Params


def _explanation(value: float) -> Explanation:
    return Explanation("occlusion", "dysplastic", np.full((1, 4, 4), value, np.float32), np.array([0.5], np.float32),
                       Params({"patch": 5}))


def test_concurrent_requests_for_one_map_compute_it_once(tmp_path):
    cache = ExplanationCache(tmp_path / "cache")
    calls, results = [], []
    gate = threading.Event()

    def slow_compute():
        calls.append(1)
        gate.wait(10)          # hold the computation until every thread has asked
        return _explanation(len(calls))

    threads = [threading.Thread(target=lambda: results.append(cache.get_or_compute("k" * 64, slow_compute)))
               for _ in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(calls) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)            # the other seven are now waiting on the key
    gate.set()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len(results) == 8 and all(np.array_equal(r.maps, results[0].maps) for r in results)


def test_a_failed_computation_lets_the_next_request_compute(tmp_path):
    cache = ExplanationCache(tmp_path / "cache")

    def boom():
        raise RuntimeError("stopped")

    with pytest.raises(RuntimeError):
        cache.get_or_compute("a" * 64, boom)
    assert cache.get_or_compute("a" * 64, lambda: _explanation(2.0)).maps.max() == 2.0


@pytest.mark.slow
@pytest.mark.browser
def test_light_load_run_has_no_errors_and_identical_results():
    import importlib.util

    from core.config import REPO_ROOT

    spec = importlib.util.spec_from_file_location("load_test", REPO_ROOT / "scripts" / "load_test.py")
    load_test = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(load_test)
    run = load_test.run

    # Two users, Gallery and Saliency on one cell, no lone walk: the smallest run that still
    # compares users with each other and with a single user's recomputation.
    report = run(users=2, duration_s=5, cells=1, timeout_s=120, pages=("home", "saliency"), alone_walk=False)
    assert report["requests"] >= 2 and report["errors"] == 0, report
    # Which clause failed comes first: the users' heatmap digests, then the lone recomputation.
    assert report["identical_results"], (report["views_with_different_heatmaps_between_users"],
                                         report["single_user"], report)
    assert report["single_user"]["maps_compared"] >= 1
    assert report["server_peak_rss_mb"] > 100
