"""Foreground first: background map work stands aside while a page is drawn, and never keeps
a page waiting for a map it holds (ui.foreground, ui.warm, core.cache single flight)."""
from __future__ import annotations

import threading
import time

import pytest

from core.cache import _key_lock, others_waiting
from ui import foreground


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setattr(foreground, "QUIET_S", 0.2)
    monkeypatch.setattr(foreground, "_running", {})
    monkeypatch.setattr(foreground, "_ended", 0.0)


def test_busy_during_a_run_and_for_the_quiet_time_after(quick):
    assert not foreground.busy()
    with foreground.page_run():
        assert foreground.busy()
    ended = time.monotonic()
    assert foreground.busy(ended + 0.1)
    assert not foreground.busy(ended + 0.3)


def test_a_run_that_raises_still_ends(quick):
    with pytest.raises(RuntimeError), foreground.page_run():
        raise RuntimeError("st.stop or a bug")
    assert not foreground.busy(time.monotonic() + 0.3)


def test_a_run_that_never_ended_stops_counting(quick, monkeypatch):
    monkeypatch.setattr(foreground, "_running", {1: time.monotonic() - foreground.STALE_S - 1})
    assert not foreground.busy(time.monotonic() + 0.3)


def test_background_work_resumes_only_after_the_run_and_quiet_time(quick):
    events = []
    entered = threading.Event()

    def background():
        entered.wait()
        foreground.wait_for_quiet()
        events.append(("resumed", time.monotonic()))

    worker = threading.Thread(target=background)
    worker.start()
    with foreground.page_run():
        entered.set()
        time.sleep(0.4)
        events.append(("run ended", time.monotonic()))
    worker.join(10)
    assert [name for name, _ in events] == ["run ended", "resumed"]
    assert events[1][1] - events[0][1] >= foreground.QUIET_S


def test_a_page_waiting_for_the_held_map_is_not_kept_waiting(quick):
    """The deadlock this guards against: the prefetch holds a map's single-flight lock and
    stands aside for the page run, while the page run waits for that very map."""
    key = "map-key"
    held, page_done = threading.Event(), threading.Event()

    def prefetch():
        with _key_lock(key):
            held.set()
            foreground.wait_for_quiet(lambda: others_waiting(key))   # as ui.warm._run does

    def page():
        held.wait()
        with _key_lock(key):
            page_done.set()

    with foreground.page_run():                     # the page run lasts until its map comes
        threads = [threading.Thread(target=prefetch), threading.Thread(target=page)]
        for t in threads:
            t.start()
        assert page_done.wait(20), "the page waited for a map the background work held"
    for t in threads:
        t.join(10)
    assert not others_waiting(key)


def test_others_waiting_counts_waiters_not_the_holder():
    key = "k2"
    assert not others_waiting(key)
    with _key_lock(key):
        assert not others_waiting(key)
        waiter = threading.Thread(target=lambda: _key_lock(key).__enter__().__exit__())
        waiter.start()
        deadline = time.monotonic() + 10
        while not others_waiting(key) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert others_waiting(key)
    waiter.join(10)
    assert not others_waiting(key)


@pytest.mark.slow
def test_prefetch_stands_aside_while_a_page_is_drawn(quick, monkeypatch, tmp_path, tiny_model_file):
    from core.cache import ExplanationCache
    from ui import resources, warm

    cells = tmp_path / "cells"
    cells.mkdir()
    from PIL import Image

    from core.explain.testing import random_cells
    for i, image in enumerate(random_cells(2, 40, seed=3)):
        Image.fromarray((image * 255).astype("uint8")).save(cells / f"TN_SNE_{i}.png")
    monkeypatch.setattr(warm, "START_DELAY_S", 0.0)
    monkeypatch.setattr(warm, "warm_requests", lambda methods=None: [("gradcam", {}), ("saliency", {})])
    monkeypatch.setattr(warm, "_plan", None)
    monkeypatch.setenv("DISPLASIA_PREFETCH_CPU_SECONDS", "600")
    monkeypatch.setenv("DISPLASIA_CACHE_DIR", str(tmp_path / "cache"))
    resources._page_drawn.set()
    choice = resources.ModelChoice("tiny", str(tiny_model_file), None, "configured")
    resources.loaded_model(choice)                   # loaded before: only the standing aside is timed
    listed = [type("Cell", (), {"name": p.name, "path": p})() for p in sorted(cells.iterdir())]
    with foreground.page_run():
        plan = warm.prefetch(choice, listed, listed[0].name, "dysplastic", "nearest")
        time.sleep(2.0)
        assert plan.done == [] and not plan.finished, (plan.done, plan.error)
    deadline = time.monotonic() + 120
    while not plan.finished and time.monotonic() < deadline:
        time.sleep(0.1)
    assert plan.error is None, plan.error
    assert len(plan.done) == 4
    assert plan.waited_s >= 1.5                      # it stood aside for (most of) the held run
    cache = ExplanationCache(tmp_path / "cache")
    assert cache.size_bytes() > 0
