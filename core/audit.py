"""Audit log: who looked at or changed what, one JSON object per line, rotated by size.

Every record has ``ts`` (UTC, ISO 8601), ``event`` and ``who`` (the logged-in identity, or
the self-declared name marked ``"verified": false`` when login is off), plus what applies:
``dataset``, ``cell``, ``method``, ``target``, ``params``, ``version`` (annotation version),
``detail``. The file rotates like :class:`logging.handlers.RotatingFileHandler`
(``audit.jsonl`` -> ``audit.jsonl.1`` -> ...), but under an advisory file lock, so the
dashboard and command-line runs may write to it at the same time without losing a line.
Reading walks the rotated files newest first and skips (and counts) damaged lines.

Settings: ``[audit] path, max_bytes, backups`` (:mod:`core.settings`).

>>> import tempfile, pathlib
>>> log = AuditLog(pathlib.Path(tempfile.mkdtemp()) / "audit.jsonl", max_bytes=4096, backups=2)
>>> _ = log.write("annotation_saved", who="ana", cell="TN_1.jpg", version=3)
>>> [(r["event"], r["who"], r["version"]) for r in log.read()]
[('annotation_saved', 'ana', 3)]
"""
from __future__ import annotations

import fcntl
import json
import math
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from core.errors import DisplasiaError

#: Events the dashboard and the CLI write; readers accept any name.
EVENTS = ("login", "login_failed", "login_locked", "logout", "explain", "annotation_saved",
          "annotation_pending", "model_uploaded", "settings_viewed")
_MAX_TEXT = 512
_FIELDS = ("dataset", "cell", "method", "target", "params", "version", "verified", "role", "detail")


def _clean(value, depth: int = 0):
    """JSON-safe, bounded copy of a field value (strings cut, NaN/inf as text, depth limited)."""
    if depth > 4:
        return str(value)[:_MAX_TEXT]
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k)[:_MAX_TEXT]: _clean(v, depth + 1) for k, v in list(value.items())[:64]}
    if isinstance(value, list | tuple):
        return [_clean(v, depth + 1) for v in list(value)[:64]]
    if hasattr(value, "item") and callable(value.item):      # numpy scalars
        try:
            return _clean(value.item(), depth + 1)
        except (TypeError, ValueError):
            pass
    return str(value)[:_MAX_TEXT]


@dataclass(frozen=True)
class AuditRead:
    records: list
    damaged_lines: int


class AuditLog:
    """One audit log file and its rotated backups.

    Parameters
    ----------
    path : path-like
        The current file; backups are ``path.1`` (newest) ... ``path.<backups>``.
    max_bytes : int
        The file is rotated before a line would take it past this size.
    backups : int
        How many rotated files are kept (0: the file is truncated when full).
    """

    def __init__(self, path, *, max_bytes: int = 10 * 2**20, backups: int = 5):
        self.path = Path(path)
        self.max_bytes = max(256, int(max_bytes))
        self.backups = max(0, int(backups))
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ writing
    def write(self, event: str, *, who: str, **fields) -> dict:
        """Append one record and return it. Unknown keyword fields go under ``detail``."""
        record = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
                  "event": _clean(str(event)), "who": _clean(str(who))}
        detail = {k: v for k, v in fields.items() if k not in _FIELDS and v is not None}
        if fields.get("detail") is not None:
            detail = {"text": fields["detail"], **detail} if detail else fields["detail"]
        fields["detail"] = detail or None
        for key in _FIELDS:
            if fields.get(key) is not None:
                record[key] = _clean(fields[key])
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":"), sort_keys=False) + "\n").encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
            with self._lock, open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    self._rotate_if_needed(len(line))
                    fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                    try:
                        os.write(fd, line)
                    finally:
                        os.close(fd)
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)
        except OSError as exc:
            raise DisplasiaError(f"cannot write the audit log {self.path}: {exc.strerror or exc}") from None
        return record

    def _rotate_if_needed(self, incoming: int) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size == 0 or size + incoming <= self.max_bytes:
            return
        if self.backups == 0:
            os.truncate(self.path, 0)
            return
        for n in range(self.backups - 1, 0, -1):
            older = self._backup(n)
            if older.exists():
                os.replace(older, self._backup(n + 1))
        os.replace(self.path, self._backup(1))

    def _backup(self, n: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{n}")

    # ------------------------------------------------------------------ reading
    def files(self) -> list[Path]:
        """The current file and its backups that exist, newest first."""
        candidates = [self.path] + [self._backup(n) for n in range(1, self.backups + 1)]
        return [p for p in candidates if p.is_file()]

    def read_all(self, *, limit: int | None = None, who: str | None = None, event: str | None = None,
                 cell: str | None = None, since: str | None = None) -> AuditRead:
        """Records newest first, filtered; damaged lines are skipped and counted."""
        out, damaged = [], 0
        for file in self.files():
            try:
                lines = file.read_bytes().splitlines()
            except OSError as exc:
                raise DisplasiaError(f"cannot read the audit log {file}: {exc.strerror or exc}") from None
            for raw in reversed(lines):
                try:
                    record = json.loads(raw)
                except (ValueError, RecursionError):
                    damaged += 1
                    continue
                if not isinstance(record, dict) or "event" not in record or "ts" not in record:
                    damaged += 1
                    continue
                if who is not None and record.get("who") != who:
                    continue
                if event is not None and record.get("event") != event:
                    continue
                if cell is not None and record.get("cell") != cell:
                    continue
                if since is not None and str(record.get("ts", "")) < since:
                    continue
                out.append(record)
                if limit is not None and len(out) >= limit:
                    return AuditRead(out, damaged)
        return AuditRead(out, damaged)

    def read(self, **filters) -> list[dict]:
        """Records newest first (see :meth:`read_all` for the filters)."""
        return self.read_all(**filters).records


_logs: dict = {}
_logs_lock = threading.Lock()


def audit_log(settings=None) -> AuditLog:
    """The configured audit log (``[audit]`` settings); one object per path and process."""
    from core.settings import load_settings

    s = (settings or load_settings()).audit
    key = (str(s.path), s.max_bytes, s.backups)
    with _logs_lock:
        if key not in _logs:
            _logs[key] = AuditLog(s.path, max_bytes=s.max_bytes, backups=s.backups)
        return _logs[key]


def record(event: str, *, who: str, **fields) -> dict:
    """Write one record to the configured audit log."""
    return audit_log().write(event, who=who, **fields)


# --- command line: python -m core audit show ------------------------------------------------

def add_parsers(subparsers) -> None:
    p = subparsers.add_parser("audit", help="read the audit log (who computed or annotated what)",
                              description="Print audit records, newest first, from the log named by the "
                                          "[audit] settings (or --file).")
    p.add_argument("action", choices=("show", "files"), help="show: records; files: the log files and sizes")
    p.add_argument("--file", help="audit log file (default: setting audit.path)")
    p.add_argument("--who", help="only this identity")
    p.add_argument("--event", help=f"only this event ({', '.join(EVENTS)})")
    p.add_argument("--cell", help="only this cell (image file name)")
    p.add_argument("--since", help="only records at or after this UTC time (ISO 8601, e.g. 2026-11-29)")
    p.add_argument("--limit", type=int, default=50, help="most records printed (default 50; 0 = all)")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import sys

    if args.limit < 0:
        raise DisplasiaError("--limit must be 0 (all) or more")
    log = AuditLog(args.file) if args.file else audit_log()
    if args.file and Path(args.file).is_dir():
        raise DisplasiaError(f"--file names a folder, not an audit log: {args.file}")
    if args.action == "files":
        for f in log.files():
            print(f"{f}\t{f.stat().st_size} bytes")
        return 0
    result = log.read_all(limit=args.limit or None, who=args.who, event=args.event, cell=args.cell,
                          since=args.since)
    for r in result.records:
        if args.json:
            print(json.dumps(r, ensure_ascii=False))
        else:
            what = " ".join(f"{k}={json.dumps(r[k], ensure_ascii=False)}" for k in _FIELDS if k in r)
            print(f"{r.get('ts')}\t{r.get('event')}\t{r.get('who')}\t{what}")
    if result.damaged_lines:
        print(f"warning: {result.damaged_lines} damaged line(s) skipped", file=sys.stderr)
    if not result.records:
        print("no audit records" + (" match" if any((args.who, args.event, args.cell, args.since)) else ""),
              file=sys.stderr)
    return 0
