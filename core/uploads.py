"""Upload folders: one private folder per dashboard session, deleted when it ends, and a
start-up sweep that deletes what a killed server left behind after the TTL.

Folders are named ``displasia-upload-*`` under the ``uploads.dir`` setting (mode 0700).
The dashboard ties a folder's life to its session with :class:`SessionFolder`: when the
session's state is dropped (the browser left and Streamlit forgot the session) or the
server process exits, the folder is deleted. :func:`sweep` deletes folders older than
``uploads.ttl_hours`` (by modification time), also in the system temporary folder where
earlier versions put them.

>>> import tempfile, os, time
>>> base = Path(tempfile.mkdtemp())
>>> holder = SessionFolder(base)
>>> holder.path.is_dir(), oct(holder.path.stat().st_mode & 0o777)
(True, '0o700')
>>> holder.close(); holder.path.exists()
False
>>> old = Path(tempfile.mkdtemp(prefix=PREFIX, dir=base)); os.utime(old, (0, 0))
>>> [p.name == old.name for p in sweep(base, ttl_hours=1)]
[True]
"""
from __future__ import annotations

import shutil
import tempfile
import time
import weakref
from pathlib import Path

from core.errors import DisplasiaError

PREFIX = "displasia-upload-"


def upload_base() -> Path:
    """The configured uploads folder (setting ``uploads.dir``), created if needed."""
    from core.settings import load_settings

    return Path(load_settings().uploads.dir)


def max_upload_bytes() -> int:
    from core.settings import load_settings

    return int(load_settings().uploads.max_mb * 2**20)


class SessionFolder:
    """A private upload folder deleted by :meth:`close`, when this object is garbage
    collected (its session ended) or when the process exits."""

    def __init__(self, base=None):
        base = Path(base) if base is not None else upload_base()
        try:
            base.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=base))
        except OSError as exc:
            raise DisplasiaError(f"Cannot create an upload folder in {base}: {exc.strerror or exc}.") from None
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.path), True)

    def close(self) -> None:
        self._finalizer()

    @property
    def alive(self) -> bool:
        return self._finalizer.alive

    def __repr__(self) -> str:  # never pickled: session state keeps the object itself
        return f"SessionFolder({str(self.path)!r})"


def sweep(base=None, *, ttl_hours: float | None = None, now: float | None = None) -> list[Path]:
    """Delete ``displasia-upload-*`` folders older than the TTL; return the deleted paths.

    Looks in ``base`` (default: the ``uploads.dir`` setting) and in the system temporary
    folder (where earlier versions created them). Errors on single folders are ignored.
    """
    if ttl_hours is None or base is None:
        from core.settings import load_settings

        uploads = load_settings().uploads
        ttl_hours = uploads.ttl_hours if ttl_hours is None else ttl_hours
        base = uploads.dir if base is None else base
    now = time.time() if now is None else now
    limit = now - float(ttl_hours) * 3600.0
    removed = []
    for folder in {Path(base), Path(tempfile.gettempdir())}:
        try:
            candidates = [p for p in folder.iterdir() if p.name.startswith(PREFIX)]
        except OSError:
            continue
        for path in candidates:
            try:
                if path.is_symlink() or not path.is_dir() or path.stat().st_mtime > limit:
                    continue
                shutil.rmtree(path)
                removed.append(path)
            except OSError:
                continue
    return removed


def safe_name(name: str) -> str:
    """The browser's file name reduced to one harmless path component.

    >>> safe_name("../../etc/passwd"), safe_name("a\\\\b:c.jpg"), safe_name("..")
    ('passwd', 'b_c.jpg', 'upload')
    """
    base = str(name).replace("\\", "/").split("/")[-1]
    base = "".join("_" if (c in ':*?"<>|' or ord(c) < 32) else c for c in base).strip(" .")
    return base[:200] or "upload"
