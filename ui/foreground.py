"""Foreground first: background map work steps aside while a page is being drawn.

On 2 cores a prefetch batch running beside a page switch takes CPU from both the server's
rerun and the browser drawing it. Every full script run is wrapped in :func:`page_run`;
background loops call :func:`wait_for_quiet` between batches (a batch is ~30 ms), which
blocks while a run is going on and for ``QUIET_S`` after it ended (the browser is still
drawing what the run sent). Fragment reruns (the gallery's score polling, progress panels)
do not pass through here, so they never hold the background work up.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager

#: Seconds after a run ends before background work goes on (the browser draws meanwhile).
QUIET_S = 1.0
#: A run that never reported its end (killed thread) stops counting after this long.
STALE_S = 30.0

_lock = threading.Lock()
_running: dict = {}          # run id -> start (monotonic)
_ended = 0.0                 # when the last run ended (monotonic)
_next_id = 0


@contextmanager
def page_run():
    """Mark a full script run as foreground work for as long as the block runs."""
    global _next_id, _ended
    with _lock:
        _next_id += 1
        run = _next_id
        _running[run] = time.monotonic()
    try:
        yield
    finally:
        with _lock:
            _running.pop(run, None)
            _ended = time.monotonic()


def busy(now: float | None = None) -> bool:
    """True while a run is going on, or ended less than ``QUIET_S`` ago."""
    now = time.monotonic() if now is None else now
    with _lock:
        for run, began in list(_running.items()):
            if now - began > STALE_S:
                del _running[run]
        return bool(_running) or now - _ended < QUIET_S


def wait_for_quiet(give_up=None, poll: float = 0.05) -> float:
    """Block (a background thread) until no page is being drawn; returns the seconds waited.

    ``give_up()`` is asked while waiting; True returns at once (a cancelled plan).
    """
    began = time.monotonic()
    while busy():
        if give_up is not None and give_up():
            break
        time.sleep(poll)
    return time.monotonic() - began
