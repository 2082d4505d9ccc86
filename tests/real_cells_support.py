"""Where the real cells of ../shared lie for the tests that calibrate against them.

They are for developers and CI only (the product never reads ../shared); a test that needs
them is marked ``needs_real`` and skips on a clone without them.
"""
from __future__ import annotations

from pathlib import Path

import pytest

REAL_DIR = Path(__file__).resolve().parents[2] / "shared" / "real_cells" / "pbc_neutrophils"
needs_real = pytest.mark.skipif(not REAL_DIR.is_dir(), reason="real cells not available")
