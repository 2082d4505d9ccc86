"""Stop Streamlit from resetting Keras after every script run.

After each run Streamlit calls ``keras.backend.clear_session()`` once Keras is imported
(``script_runner._clean_problem_modules``). With TensorFlow loaded that is a full
``gc.collect()`` plus a flush of TensorFlow's kernel cache: measured about 0.5 s of every
rerun (py-spy on the 20,000-cell gallery), before the browser can show anything new. It also
resets Keras's global state while background threads (scoring jobs, prefetch) may be using
the models this server keeps loaded. The replacement keeps the other clean-up (closing
matplotlib figures) and leaves Keras alone. Together with ``runner.postScriptGC = false``
in ``.streamlit/config.toml`` (the other full collection per rerun), a rerun costs what the
page itself does.
"""
from __future__ import annotations

import gc
import sys


def _close_matplotlib_figures() -> None:
    if "matplotlib.pyplot" in sys.modules:
        try:
            sys.modules["matplotlib.pyplot"].close("all")
        except Exception:  # noqa: BLE001  (as Streamlit's own hook: never fail a rerun for this)
            pass


_close_matplotlib_figures.displasia = True


def keep_keras_between_runs() -> bool:
    """Install the replacement once per process; False when this Streamlit has no such hook
    (the reset then no longer happens, or happens elsewhere: tests/test_server_tuning.py tells)."""
    from streamlit.runtime.scriptrunner import script_runner

    if not hasattr(script_runner, "_clean_problem_modules"):
        return False
    script_runner._clean_problem_modules = _close_matplotlib_figures
    return True


def freeze_long_lived(*, collect_first: bool = False) -> int:
    """Move every object alive now out of the garbage collector's sight (``gc.freeze``).

    TensorFlow, Keras and a loaded model are ~440,000 objects that live as long as the
    server. Each automatic full collection scanned them all: 0.27 s with the GIL held, at a
    random rerun (the 0.7-1.1 s outliers among ~0.25 s page switches). Called once they are
    loaded (after the TensorFlow import, after each model load). ``collect_first`` collects
    before freezing, after a model was dropped: its cycles would otherwise stay frozen for
    ever. Returns the number of frozen objects.
    """
    if collect_first:
        gc.unfreeze()
        gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
