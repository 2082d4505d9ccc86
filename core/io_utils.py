"""Small file helpers shared by commands that write results."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from core.errors import DisplasiaError


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename: never half a file."""
    path = Path(path)
    if not path.parent.is_dir():
        raise DisplasiaError(f"Output folder does not exist: {path.parent}")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
