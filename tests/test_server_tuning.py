"""A rerun of the dashboard leaves Keras's global state alone and skips the full post-run GC.

Streamlit resets Keras (``clear_session``: a full ``gc.collect()`` and TensorFlow's kernel
cache) after every script run; with TensorFlow loaded that was about 0.5 s per rerun, and it
reset state under background threads using the models. ``ui.server_tuning`` removes it.
"""
from __future__ import annotations

import tomllib

from streamlit.testing.v1 import AppTest

from core.config import REPO_ROOT
from tests.test_app import APP, tiny_env  # noqa: F401  (a fixture)


def test_a_dashboard_rerun_keeps_keras_global_state(tiny_env):  # noqa: F811
    from keras.src.backend.common import global_state

    global_state.set_global_attribute("displasia_probe", 17)
    try:
        at = AppTest.from_file(APP, default_timeout=120).run()
        at.run()
        assert not at.exception
        # Streamlit's own hook would have called clear_session(), which empties the global state.
        assert global_state.get_global_attribute("displasia_probe") == 17
    finally:
        global_state.set_global_attribute("displasia_probe", None)


def test_streamlits_hook_is_the_one_replaced():
    """If Streamlit renames its hook, this fails instead of the reset silently coming back."""
    from streamlit.runtime.scriptrunner import script_runner

    from ui.server_tuning import keep_keras_between_runs

    assert keep_keras_between_runs()
    assert getattr(script_runner._clean_problem_modules, "displasia", False)


def test_the_post_run_garbage_collection_is_off_in_the_shipped_config():
    config = tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False


FREEZE = """
import gc, sys, weakref
sys.path.insert(0, {root!r})
from core.explain.testing import tiny_cnn
from ui import resources
paths = []
for seed in (1, 2):
    path = {folder!r} + f"/m{{seed}}.keras"
    tiny_cnn(16, seed=seed).save(path)
    paths.append(path)
resources._MAX_MODELS = 1
tracked_before = len(gc.get_objects())
first = resources.loaded_model(resources.ModelChoice("one", paths[0], None, "configured"))
frozen = gc.get_freeze_count()
tracked_after = len(gc.get_objects())
probe = weakref.ref(first.model)
del first
resources.loaded_model(resources.ModelChoice("two", paths[1], None, "configured"))   # drops the first
print(frozen, tracked_before, tracked_after, probe() is None)
"""


def test_loaded_objects_are_frozen_and_a_dropped_model_is_still_collected(tmp_path):
    """After a model load the long-lived objects (TensorFlow, Keras, the model) are out of the
    collector's sight, so automatic full collections stop scanning them; a model dropped from
    the server's few is unfrozen and collected, not kept for ever."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", FREEZE.format(root=str(REPO_ROOT), folder=str(tmp_path))],
                          capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    frozen, before, after, collected = done.stdout.split()[-4:]
    assert int(frozen) > 100_000                     # TensorFlow and Keras alone are more than that
    assert int(after) < int(before) / 2              # what a full collection still scans
    assert collected == "True"
