"""Persistent model scores: P(normal) per (model file hash, image file hash, preprocessing).

The gallery reads scores from here before TensorFlow has even been imported, so a dataset
scored once opens at once on every later start. Everything is keyed by *file content*:

- an image by the SHA-256 of its file bytes (remembered per path, size and modification
  time, so a second open of 20,000 cells stats the files instead of reading them);
- a model by :func:`model_key`, the SHA-256 of its files' hashes (architecture, then
  weights), computable without TensorFlow; once a model has been loaded its content hash
  (``ModelDescription.content_hash``, architecture + weight values) is recorded next to it,
  so two files holding the same network can be recognised as one;
- the preprocessing by a short text (:func:`preprocessing_key`).

One SQLite file under the cache folder; safe to share between threads and processes
(WAL journal, short transactions). Each store also keeps in memory what it has read: file
rows (a row stays true for its path, size and modification time, so it is only ever
replaced) and one model's scores until the database changes (SQLite's ``data_version``
tells when another connection wrote), so a rerun of a 20,000-cell gallery reads nothing
from SQLite. No TensorFlow, no Streamlit.

>>> import tempfile, numpy as np
>>> folder = tempfile.mkdtemp()
>>> store = ScoreStore(f"{folder}/scores.sqlite")
>>> store.put("m1", ["a", "b"], "nearest", [0.25, 0.5])
>>> store.get("m1", ["b", "a", "c"], "nearest").tolist()
[0.5, 0.25, nan]
>>> store.get("m1", ["a"], "bilinear").tolist()
[nan]
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np

#: Bump when preprocessing changes in a way that changes scores (part of every key).
PREPROCESSING_VERSION = 1
_CHUNK = 1 << 20
#: File rows kept in memory per table; past this the memo starts again (SQLite still has them).
MEMO_ROWS = 500_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, sha256 TEXT);
CREATE TABLE IF NOT EXISTS scores (model TEXT, image TEXT, preprocessing TEXT, score REAL,
                                   PRIMARY KEY (model, image, preprocessing)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS models (model TEXT PRIMARY KEY, content_hash TEXT, seen REAL);
CREATE TABLE IF NOT EXISTS checks (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, problem TEXT);
"""


def preprocessing_key(interpolation: str) -> str:
    """The preprocessing part of a score's key.

    >>> preprocessing_key("nearest")
    'v1:nearest'
    """
    return f"v{PREPROCESSING_VERSION}:{interpolation}"


def sha256_file(path) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks (same value as ``core.preprocess.image_hash``)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


class ScoreStore:
    """Scores and file hashes in one SQLite file (see the module doc).

    Parameters
    ----------
    path : str or Path
        The SQLite file; its folder is created.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), timeout=30.0, check_same_thread=False, isolation_level=None)
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:
            pass                              # another process holds it mid-switch: the default journal works too
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._files: dict[str, dict] = {"files": {}, "checks": {}}   # table -> path -> (size, mtime_ns, value)
        self._scores: dict = {}          # (model, preprocessing) -> (version, {image hash: score})
        self._writes = 0                 # this connection's score writes (data_version ignores them)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------------ file hashes
    def file_hashes(self, paths, *, on_error=None) -> list[str]:
        """SHA-256 of each file's bytes; a file unchanged since its last hash (same path,
        size and modification time) is not read again. ``on_error(path, exc)``: the value of a
        file that cannot be read (not remembered); without it the ``OSError`` propagates."""
        return self._per_file("files", "sha256", paths, sha256_file, on_error=on_error)

    def checked(self, paths, check) -> list:
        """``check(path)`` (a problem text or None) for each file, remembered per path, size
        and modification time, so a large dataset's images are decoded once, not on every open."""
        return self._per_file("checks", "problem", paths, check)

    def unchecked(self, paths) -> int:
        """How many of ``paths`` have never had :meth:`checked` run on them (by path only: no
        file is touched, so this is cheap for 20,000 cells)."""
        paths = [str(p) for p in paths]
        known = self._known("checks", "problem", paths)
        return sum(1 for p in paths if p not in known)

    def _known(self, table: str, column: str, paths: list) -> dict:
        """The in-memory rows of ``table``, with those of ``paths`` loaded from SQLite."""
        with self._lock:
            known = self._files[table]
            unknown = [p for p in paths if p not in known]
            if len(known) + len(unknown) > MEMO_ROWS:
                known.clear()
                unknown = paths
            for start in range(0, len(unknown), 900):
                chunk = unknown[start:start + 900]
                marks = ",".join("?" * len(chunk))
                query = f"SELECT path, size, mtime_ns, {column} FROM {table} WHERE path IN ({marks})"
                for row in self._conn.execute(query, chunk):
                    known[row[0]] = row[1:]
            return known

    def _per_file(self, table: str, column: str, paths, compute, *, on_error=None) -> list:
        """``compute(path)`` for each file, remembered in ``table`` per (path, size, mtime).

        A file that cannot be stat-ed is computed every time (``compute`` says what is wrong).
        """
        paths = [str(p) for p in paths]
        known = self._known(table, column, paths)
        out, fresh = [], []
        for path in paths:
            try:
                stat = os.stat(path)
            except OSError:
                out.append(compute(path) if on_error is None else on_error(path, None))
                continue
            entry = known.get(path)
            if entry and entry[0] == stat.st_size and entry[1] == stat.st_mtime_ns:
                out.append(entry[2])
                continue
            try:
                value = compute(path)
            except OSError as exc:
                if on_error is None:
                    raise
                out.append(on_error(path, exc))
                continue
            out.append(value)
            fresh.append((path, stat.st_size, stat.st_mtime_ns, value))
        if fresh:
            with self._lock:
                self._conn.execute("BEGIN")
                self._conn.executemany(f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?, ?)", fresh)
                self._conn.execute("COMMIT")
                self._files[table].update((row[0], row[1:]) for row in fresh)
        return out

    def model_key(self, path, weights=None) -> str:
        """A model's identity from its files alone (no TensorFlow): hex SHA-256 of
        the architecture file's hash followed by the weights file's hash."""
        hashes = self.file_hashes([path] + ([weights] if weights else []))
        return hashlib.sha256(":".join(hashes).encode()).hexdigest()

    # ------------------------------------------------------------------ scores
    def get(self, model: str, images, preprocessing: str) -> np.ndarray:
        """Scores of ``images`` (file hashes) in order; NaN where none is stored."""
        images = list(images)
        with self._lock:
            version = (self._conn.execute("PRAGMA data_version").fetchone()[0], self._writes)
            memo = self._scores.get((model, preprocessing))
            if memo is None or memo[0] != version:
                rows = dict(self._conn.execute("SELECT image, score FROM scores WHERE model = ? AND preprocessing = ?",
                                               (model, preprocessing)).fetchall())
                if len(self._scores) >= 4:
                    self._scores.clear()
                memo = self._scores[(model, preprocessing)] = (version, rows)
        rows = memo[1]
        return np.array([rows.get(i, np.nan) for i in images], dtype=float)

    def put(self, model: str, images, preprocessing: str, scores) -> None:
        """Store one score per image (file hash)."""
        rows = [(model, i, preprocessing, float(s)) for i, s in zip(images, scores)]
        with self._lock:
            self._conn.execute("BEGIN")
            self._conn.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?)", rows)
            self._conn.execute("COMMIT")
            self._writes += 1

    def count(self, model: str | None = None) -> int:
        query, args = "SELECT COUNT(*) FROM scores", ()
        if model is not None:
            query, args = query + " WHERE model = ?", (model,)
        with self._lock:
            return int(self._conn.execute(query, args).fetchone()[0])

    # ------------------------------------------------------------------ models
    def remember_model(self, model: str, content_hash: str) -> None:
        """Record the content hash (architecture + weight values) of the model with file key ``model``."""
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO models VALUES (?, ?, ?)", (model, content_hash, time.time()))

    def content_hash(self, model: str) -> str | None:
        """The recorded content hash of a model file key, or None before it was ever loaded."""
        with self._lock:
            row = self._conn.execute("SELECT content_hash FROM models WHERE model = ?", (model,)).fetchone()
        return row[0] if row else None


def score_missing(store: ScoreStore, loaded, model: str, paths, images, interpolation: str, *,
                  batch_size: int = 32, progress=None, cancel=None) -> int:
    """Score the cells whose score is not stored yet, batch by batch, storing each batch as
    it comes (so readers see scores fill in). Returns how many were scored.

    ``paths`` and ``images`` (their file hashes) are parallel lists; ``progress(done, total)``
    is told after each batch; ``cancel()`` returning True stops between batches.
    """
    from core.predict import predict_files

    key = preprocessing_key(interpolation)
    have = store.get(model, images, key)
    missing: dict = {}                                  # image hash -> one path (identical files scored once)
    for path, image, score in zip(paths, images, have):
        if np.isnan(score):
            missing.setdefault(image, path)
    todo = [(path, image) for image, path in missing.items()]
    for start in range(0, len(todo), batch_size):
        if cancel is not None and cancel():
            return start
        chunk = todo[start:start + batch_size]
        scores = predict_files(loaded, [p for p, _ in chunk], interpolation=interpolation, batch_size=batch_size)
        store.put(model, [i for _, i in chunk], key, scores)
        if progress is not None:
            progress(start + len(chunk), len(todo))
    return len(todo)
