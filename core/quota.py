"""Per-session budget for dataset-wide work (setting ``quotas.dataset_work_cells``).

Dataset-wide computations (the evidence summary, the deep-feature projection, the
background test of every cell) cost one unit per cell and method that is computed. One
session may start at most ``quotas.dataset_work_cells`` units; beyond it a request is refused
with one line, so one user cannot keep a shared server busy with whole-dataset runs. Results
already in the explanation cache cost nothing.

>>> budget = WorkBudget(100)
>>> budget.charge(56, what="The projection")
>>> budget.left
44
>>> budget.charge(56, what="The projection")
Traceback (most recent call last):
...
core.errors.DisplasiaError: The projection needs 56 cell computations; this session has 44 of 100 left (setting quotas.dataset_work_cells).
"""
from __future__ import annotations

import threading

from core.errors import DisplasiaError


class WorkBudget:
    """Units of dataset-wide work one session may still start."""

    def __init__(self, limit: int | None = None):
        if limit is None:
            from core.settings import load_settings

            limit = load_settings().quotas.dataset_work_cells
        self.limit = int(limit)
        self.used = 0
        self._lock = threading.Lock()

    @property
    def left(self) -> int:
        return max(0, self.limit - self.used)

    def charge(self, units: int, *, what: str = "This computation") -> None:
        """Spend ``units`` or raise DisplasiaError (nothing is spent then)."""
        units = max(0, int(units))
        with self._lock:
            if self.used + units > self.limit:
                raise DisplasiaError(f"{what} needs {units:,} cell computations; this session has {self.left:,} "
                                     f"of {self.limit:,} left (setting quotas.dataset_work_cells).")
            self.used += units
