"""core.annotations stays free of streamlit and TensorFlow (the CLI and page rely on it)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_no_streamlit_or_tensorflow_on_import():
    code = ("import sys, core.annotations, core.annotations.cli; "
            "bad = [m for m in ('streamlit', 'tensorflow', 'keras') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_pickle_anywhere_in_the_package():
    for path in (REPO / "core" / "annotations").glob("*.py"):
        source = path.read_text()
        assert "import pickle" not in source and "pickle.load" not in source, path.name
