"""The gallery's background scoring job: one per model, images and score store; a failure
stays on screen instead of being retried on every rerun; a finished job whose cells are
still missing (store emptied) starts again."""
from __future__ import annotations

import time

import numpy as np
from PIL import Image

from core.scores import preprocessing_key
from ui import resources


def wait(job, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while not job.finished and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.finished
    return job


def cells(folder, n=3):
    folder.mkdir()
    rng = np.random.default_rng(1)
    paths = []
    for i in range(n):
        path = folder / f"TN_x_{i}.png"
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def test_failed_job_is_kept_then_retried_and_store_folder_is_part_of_the_key(tmp_path, monkeypatch, tiny_model):
    monkeypatch.setattr(resources, "_jobs", {})
    monkeypatch.setenv("DISPLASIA_CACHE_DIR", str(tmp_path / "cache"))
    paths = cells(tmp_path / "cells")
    hashes = resources.score_store().file_hashes(paths)
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a model")
    choice = resources.ModelChoice("Broken", str(broken), None, "uploaded")
    failed = wait(resources.start_scoring(choice, "k-broken", paths, hashes, "nearest"))
    assert failed.error
    assert resources.start_scoring(choice, "k-broken", paths, hashes, "nearest") is failed   # shown, not retried
    monkeypatch.setattr(resources, "RETRY_FAILED_S", 0.0)
    assert resources.start_scoring(choice, "k-broken", paths, hashes, "nearest") is not failed

    good = tmp_path / "tiny.keras"
    tiny_model.save(good)
    choice = resources.ModelChoice("Tiny", str(good), None, "uploaded")
    done = wait(resources.start_scoring(choice, "k-tiny", paths, hashes, "nearest"))
    assert done.error is None and not np.isnan(resources.score_store().get("k-tiny", hashes, preprocessing_key("nearest"))).any()
    assert resources.start_scoring(choice, "k-tiny", paths, hashes, "nearest") is done
    monkeypatch.setattr(resources, "RESCORE_S", 0.0)        # the store lost them: start again
    assert resources.start_scoring(choice, "k-tiny", paths, hashes, "nearest") is not done
    monkeypatch.setenv("DISPLASIA_CACHE_DIR", str(tmp_path / "other-cache"))
    monkeypatch.setattr(resources, "RESCORE_S", 60.0)
    other = resources.start_scoring(choice, "k-tiny", paths, hashes, "nearest")
    assert other is not done                                  # another store: another job
    wait(other)
