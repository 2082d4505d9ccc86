"""core.runtime.import_tensorflow: never hands out a half-imported TensorFlow."""
from __future__ import annotations

import importlib.machinery
import subprocess
import sys
import types

from core import runtime


def test_a_module_still_being_imported_is_not_returned(monkeypatch):
    half = types.ModuleType("tensorflow")
    half.__spec__ = importlib.machinery.ModuleSpec("tensorflow", None)
    half.__spec__._initializing = True
    monkeypatch.setitem(sys.modules, "tensorflow", half)
    assert runtime._imported() is None
    half.__spec__._initializing = False
    assert runtime._imported() is half


CONCURRENT = """
import threading, time
from core.runtime import import_tensorflow
seen, start = [], threading.Event()
def worker(delay):
    start.wait()
    time.sleep(delay)  # later threads arrive while the first one is inside the import
    try:
        seen.append(import_tensorflow().config.threading.get_intra_op_parallelism_threads() >= 0)
    except Exception as exc:
        seen.append(repr(exc))
threads = [threading.Thread(target=worker, args=(0.4 * i,)) for i in range(4)]
for t in threads: t.start()
start.set()
for t in threads: t.join()
print(seen)
"""


def test_threads_importing_at_once_all_get_the_whole_module():
    done = subprocess.run([sys.executable, "-c", CONCURRENT], capture_output=True, text=True, timeout=300,
                          cwd=runtime.__file__.rsplit("/core/", 1)[0])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[True, True, True, True]", done.stdout
