"""A dependency-free progress bar for command-line runs, written to stderr."""
from __future__ import annotations

import sys
import time


class ProgressBar:
    """Callable ``(done, total)`` that draws ``label [#####     ] 50/100 3.2/s`` on stderr.

    On a terminal the line redraws in place; in a log it prints at most every 10 %.
    """

    def __init__(self, label: str, stream=None, width: int = 30):
        self.label, self.width = label, width
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_decile = -1

    def __call__(self, done: int, total: int) -> None:
        total = max(int(total), 1)
        decile = done * 10 // total
        if not self.tty and decile == self._last_decile and done < total:
            return
        self._last_decile = decile
        filled = self.width * done // total
        rate = done / max(time.perf_counter() - self.start, 1e-9)
        line = f"{self.label} [{'#' * filled}{' ' * (self.width - filled)}] {done}/{total} {rate:.1f}/s"
        end = "\n" if (done >= total or not self.tty) else ""
        self.stream.write(("\r" if self.tty else "") + line + end)
        self.stream.flush()
