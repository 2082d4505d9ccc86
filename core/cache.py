"""On-disk cache of explanations, shared by the dashboard, the CLI and several processes.

Key = SHA-256 of (model content hash, image pixels hash, method, method version, target,
parameters[, cell mask]). Entries are ``.npz`` files written without pickle and read with
``allow_pickle=False`` (a cache folder must never be a way to run code on the hospital
server). Writes go to a temporary file in the same folder and are published with
``os.replace``, so a reader sees a whole entry or none. A hit refreshes the file's
modification time; when the folder grows past its limit the least recently used entries
are deleted, down to 90 % of the limit. An entry that cannot be read or does not match its
key is deleted and recomputed, never shown.

Size accounting does not list the folder on every write (with 100,000 entries that listing
costs more than the maps): each process keeps a running total per folder, set by a full
listing and then increased by what it writes itself. The folder is listed again when that
total passes the limit, or when the last listing is older than
:attr:`ExplanationCache.REFRESH_S` (so what other processes wrote is counted). Several
processes writing one folder can therefore overshoot the limit by what the others wrote
since a process last listed it; eviction deletes with ``unlink`` errors ignored, so two
processes evicting at once is harmless.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np

from core.errors import DisplasiaError
from core.explain.base import Explanation, Params

FORMAT = 1
#: Default size limit in MiB (the setting ``cache.max_mb`` and env ``DISPLASIA_CACHE_MAX_MB`` change it).
DEFAULT_MAX_MB = 2048
_SUFFIX = ".npz"


def images_hash(images, cell_mask=None) -> str:
    """SHA-256 of the preprocessed pixels (shape, dtype and bytes), and of the mask if any."""
    images = np.ascontiguousarray(images, dtype=np.float32)
    digest = hashlib.sha256(str(images.shape).encode())
    digest.update(images.tobytes())
    if cell_mask is not None:
        mask = np.ascontiguousarray(np.asarray(cell_mask).astype(bool))
        digest.update(b"mask" + str(mask.shape).encode() + np.packbits(mask).tobytes())
    return digest.hexdigest()


def make_key(model_hash: str, images, method: str, version: int, target: str, params, *, cell_mask=None) -> str:
    """Hex key of one request; any change of model, pixels, method, version or params changes it."""
    parts = {"format": FORMAT, "model": model_hash, "images": images_hash(images, cell_mask), "method": method,
             "version": int(version), "target": target, "params": json.loads(Params(params).to_json())}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return value


def to_arrays(key: str, exp: Explanation) -> dict:
    """Flatten an Explanation into npz members (no object arrays)."""
    arrays = {"maps": exp.maps, "baseline": exp.baseline}
    scalars = {}
    for name, value in exp.extras.items():
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in "biufU":
                raise TypeError(f"extra {name!r} has dtype {value.dtype}, which cannot be cached without pickle")
            arrays["x:" + name] = value
        else:
            scalars[name] = _plain(value)
    meta = {"format": FORMAT, "key": key, "method": exp.method, "target": exp.target,
            "params": dict(exp.params), "timings": {k: float(v) for k, v in exp.timings.items()},
            "scalars": scalars, "version": int(exp.version)}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    return arrays


def from_arrays(key: str, members) -> Explanation:
    meta = json.loads(bytes(members["meta"]).decode("utf-8"))
    if meta.get("format") != FORMAT or meta.get("key") != key:
        raise ValueError("cache entry does not match its key")
    extras = {name[2:]: members[name] for name in members if name.startswith("x:")}
    extras.update(meta["scalars"])
    return Explanation(meta["method"], meta["target"], members["maps"], members["baseline"],
                       Params(meta["params"]), meta["timings"], extras, meta["version"])


class _Ledger:
    """This process's running size of one cache folder (see the module doc)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.total = 0
        self.listed = None               # time.monotonic() of the last full listing, None before any


_ledgers: dict[str, _Ledger] = {}
_ledgers_guard = threading.Lock()


def _ledger(folder: Path) -> _Ledger:
    name = os.path.abspath(folder)
    with _ledgers_guard:
        return _ledgers.setdefault(name, _Ledger())


_inflight: dict[str, list] = {}          # key -> [lock, number of holders and waiters]
_inflight_guard = threading.Lock()


class _key_lock:
    """A process-wide lock per cache key, forgotten when nobody holds or waits for it."""

    def __init__(self, key: str):
        self.key = key

    def __enter__(self):
        with _inflight_guard:
            entry = _inflight.setdefault(self.key, [threading.Lock(), 0])
            entry[1] += 1
        entry[0].acquire()
        return self

    def __exit__(self, *exc) -> None:
        with _inflight_guard:
            entry = _inflight[self.key]
            entry[0].release()
            entry[1] -= 1
            if entry[1] == 0:
                del _inflight[self.key]


def others_waiting(key: str) -> bool:
    """True when a thread waits for the single-flight computation of ``key`` (its holder aside).

    A background computation that pauses between batches asks this so that it never keeps
    a page waiting for a map it holds.
    """
    with _inflight_guard:
        entry = _inflight.get(key)
        return entry is not None and entry[1] > 1


class ExplanationCache:
    """A folder of explanation entries with a size limit and LRU eviction.

    Parameters
    ----------
    folder : str or Path, optional
        Default ``core.config.cache_dir()`` (setting ``cache.dir``, env ``DISPLASIA_CACHE_DIR``).
    max_bytes : int, optional
        Default setting ``cache.max_mb`` (env ``DISPLASIA_CACHE_MAX_MB``, MiB) or 2 GiB.
    """

    #: Seconds after which a write lists the folder again to count other processes' entries.
    REFRESH_S = 30.0
    #: Eviction deletes down to this fraction of the limit, so a full cache is not listed on every write.
    LOW_WATER = 0.9

    def __init__(self, folder=None, *, max_bytes: int | None = None):
        from core.config import cache_dir, cache_max_bytes

        self.folder = Path(folder) if folder is not None else cache_dir()
        if self.folder.exists() and not self.folder.is_dir():
            raise DisplasiaError(f"The explanation cache folder {self.folder} is a file; set cache.dir "
                                 "(DISPLASIA_CACHE_DIR) to a folder.")
        if max_bytes is None:
            max_bytes = cache_max_bytes()
        self.max_bytes = int(max_bytes)
        self.hits = 0
        self.misses = 0

    def path_of(self, key: str) -> Path:
        return self.folder / key[:2] / (key + _SUFFIX)

    def get(self, key: str) -> Explanation | None:
        """The cached explanation, or None (missing or corrupt; a corrupt entry is deleted)."""
        path = self.path_of(key)
        try:
            with np.load(path, allow_pickle=False) as archive:
                members = {name: archive[name] for name in archive.files}
            exp = from_arrays(key, members)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            self.misses += 1
            return None
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, UnicodeDecodeError):
            self._remove(path)
            self.misses += 1
            return None
        try:
            os.utime(path)  # least-recently-used order follows the modification time
        except OSError:
            pass
        self.hits += 1
        return exp

    def put(self, key: str, exp: Explanation) -> Path:
        """Store atomically, then count its size (evicting when the folder is over its limit, see the module doc)."""
        path = self.path_of(key)
        arrays = to_arrays(key, exp)
        try:
            replaced = path.stat().st_size       # an entry written again (another process, a race) is not counted twice
        except OSError:
            replaced = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=_SUFFIX, dir=path.parent)
        except OSError as exc:
            raise DisplasiaError(f"The explanation cache folder {self.folder} cannot be written "
                                 f"({exc.strerror or exc}); set cache.dir (DISPLASIA_CACHE_DIR) to a writable folder.") from None
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, **arrays)
                written = handle.tell()
            os.replace(tmp, path)
        except OSError as exc:
            self._remove(Path(tmp))
            raise DisplasiaError(f"The explanation cache folder {self.folder} cannot be written "
                                 f"({exc.strerror or exc}).") from None
        except BaseException:
            self._remove(Path(tmp))
            raise
        self._account(written - replaced)
        return path

    def _account(self, delta: int) -> None:
        """Add a write to the running total; list the folder (and evict) only when the total
        passes the limit or the last listing is older than :attr:`REFRESH_S`."""
        ledger = _ledger(self.folder)
        with ledger.lock:
            fresh = ledger.listed is not None and time.monotonic() - ledger.listed < self.REFRESH_S
            if fresh and ledger.total + delta <= self.max_bytes:
                ledger.total += delta
                return
        self.evict()

    def get_or_compute(self, key: str, compute) -> Explanation:
        exp = self.get(key)
        if exp is not None:
            return exp
        # Single flight: sessions asking for the same map at once wait for the first one's
        # result instead of each computing it (ten users on one cell cost one computation).
        with _key_lock(key):
            # Written while we waited? (checked without counting a second miss)
            exp = self.get(key) if self.path_of(key).is_file() else None
            if exp is None:
                exp = compute()
                self.put(key, exp)
        return exp

    def entries(self) -> list:
        """``(mtime, size, path)`` of every entry, oldest first (stale temp files skipped).

        A full listing of the folder; it also resets this process's running total.
        """
        found = self._list()
        ledger = _ledger(self.folder)
        with ledger.lock:
            ledger.total = sum(size for _, size, _ in found)
            ledger.listed = time.monotonic()
        return found

    def _list(self) -> list:
        found = []
        try:
            subs = [sub for sub in os.scandir(self.folder) if sub.is_dir(follow_symlinks=False)]
        except OSError:
            return found
        for sub in subs:
            try:
                listing = list(os.scandir(sub.path))
            except OSError:
                continue
            for entry in listing:
                if not entry.name.endswith(_SUFFIX):
                    continue
                try:
                    stat = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if entry.name.startswith(".tmp-"):
                    if time.time() - stat.st_mtime > 3600:  # left by a killed writer
                        self._remove(Path(entry.path))
                    continue
                found.append((stat.st_mtime_ns, stat.st_size, Path(entry.path)))
        found.sort()
        return found

    def size_bytes(self) -> int:
        return sum(size for _, size, _ in self.entries())

    def evict(self) -> int:
        """When the folder is over its limit, delete least recently used entries until it
        holds at most :attr:`LOW_WATER` of the limit; returns how many were deleted."""
        entries = self.entries()
        total = sum(size for _, size, _ in entries)
        if total <= self.max_bytes:
            return 0
        removed = 0
        for _, size, path in entries:
            if total <= self.max_bytes * self.LOW_WATER:
                break
            self._remove(path)
            total -= size
            removed += 1
        ledger = _ledger(self.folder)
        with ledger.lock:
            ledger.total = total
        return removed

    def clear(self) -> None:
        for _, _, path in self.entries():
            self._remove(path)
        ledger = _ledger(self.folder)
        with ledger.lock:
            ledger.total = 0

    @staticmethod
    def _remove(path: Path) -> None:
        try:
            path.unlink()
        except OSError:
            pass
