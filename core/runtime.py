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


def import_tensorflow():
    """``import tensorflow`` with file descriptor 2 pointed at /dev/null meanwhile."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with _lock:
        if "tensorflow" in sys.modules:
            return sys.modules["tensorflow"]
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
