"""Import TensorFlow without its C++ start-up chatter on stderr.

TensorFlow 2.21 logs oneDNN and CPU-feature notices through absl before any log level
applies, which would break the CLI's promise of one clean line per error. The notices are
only silenced during the import itself; later warnings and errors still reach stderr.
"""
from __future__ import annotations

import os
import sys
import threading

_lock = threading.Lock()


def _imported():
    """TensorFlow if it is fully imported; None while absent or still being imported.

    A module is in ``sys.modules`` from the moment its import starts: returning it then
    hands a thread a half-built module ("partially initialized module 'tensorflow' has no
    attribute 'config'"), which is how a Dask worker once failed a whole chunk of cells.
    """
    module = sys.modules.get("tensorflow")
    if module is None or getattr(getattr(module, "__spec__", None), "_initializing", False):
        return None
    return module


def import_tensorflow():
    """``import tensorflow`` with file descriptor 2 pointed at /dev/null meanwhile."""
    ready = _imported()
    if ready is not None:
        return ready
    with _lock:
        ready = _imported()
        if ready is not None:
            return ready
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with open(os.devnull, "w") as devnull:
                os.dup2(devnull.fileno(), 2)
                import keras  # noqa: F401  (imports tensorflow)
                import tensorflow
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        return tensorflow
