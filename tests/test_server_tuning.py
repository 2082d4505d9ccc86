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
