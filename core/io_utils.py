"""Small file helpers shared by commands that write results.

CSV files written anywhere in the project go through :func:`csv_safe` (or
:func:`frame_csv_bytes` / :func:`csv_text`): a text cell that starts with ``= + - @``, a
tab or a carriage return is what spreadsheet programs run as a formula (a cell image named
``=cmd|' -C calc'!A0.jpg``), so it is written with a leading apostrophe, as OWASP advises.
Numbers are written as numbers. Lines end with CRLF (RFC 4180), so that a carriage return
inside a cell is quoted instead of splitting the row.

>>> csv_safe("=cmd|' -C calc'!A0.jpg"), csv_safe("TN_1.jpg"), csv_safe(-0.5)
("'=cmd|' -C calc'!A0.jpg", 'TN_1.jpg', -0.5)
>>> csv_text([["image", "score"], ["@SUM(A1)", 0.25], ["cr\\r.jpg", 1]]).splitlines()
['image,score', "'@SUM(A1),0.25", '"cr', '.jpg",1']
"""
from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path

from core.errors import DisplasiaError


def check_output_path(path) -> Path:
    """Fail early, before long work, if ``path`` cannot be written as a file."""
    path = Path(path)
    if not path.parent.is_dir():
        raise DisplasiaError(f"Output folder does not exist: {path.parent}")
    if path.is_dir():
        raise DisplasiaError(f"Output {path} is a folder; give a file name.")
    if path.exists() and not os.access(path, os.W_OK):
        raise DisplasiaError(f"Cannot write {path}: permission denied.")
    try:  # a real probe: permissions, read-only or pseudo file systems (/proc), quotas
        fd, probe = tempfile.mkstemp(dir=path.parent, prefix=".probe-", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise DisplasiaError(f"Cannot write in {path.parent}: {exc.strerror or exc}.") from None
    return path


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename: never half a file."""
    path = Path(path)
    if not path.parent.is_dir():
        raise DisplasiaError(f"Output folder does not exist: {path.parent}")
    if path.is_dir():
        raise DisplasiaError(f"Output {path} is a folder; give a file name.")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:100]}.", suffix=".tmp")
    except OSError as exc:
        raise DisplasiaError(f"Cannot write in {path.parent}: {exc.strerror or exc}.") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise DisplasiaError(f"Cannot write {path}: {exc.strerror or exc}.") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


#: First characters that make a spreadsheet treat a cell as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value):
    """``value`` with a leading apostrophe if it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_text(rows) -> str:
    """CSV text of an iterable of rows (the first is the header), every cell through ``csv_safe``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([csv_safe(v) for v in row])
    return buffer.getvalue()


def safe_frame(frame):
    """A copy of a pandas DataFrame whose text cells (and column names) went through ``csv_safe``."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or str(out[column].dtype) in ("string", "str", "category"):
            out[column] = out[column].map(csv_safe)
    out.columns = [csv_safe(str(c)) if isinstance(c, str) else c for c in out.columns]
    return out


def frame_csv_bytes(frame, **kwargs) -> bytes:
    """UTF-8 CSV of a DataFrame with formula-like text neutralised (``index=False`` by default)."""
    kwargs.setdefault("index", False)
    kwargs.setdefault("lineterminator", "\r\n")  # a CR inside a cell is then quoted
    return safe_frame(frame).to_csv(**kwargs).encode("utf-8")
