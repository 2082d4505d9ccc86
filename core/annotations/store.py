"""Versioned annotation store on SQLAlchemy 2 (SQLite file by default, any URL accepted).

Every save appends a new version row for its (image, annotator) pair, so history is never
lost and two annotators never overwrite each other; the latest version is what the
dashboard shows. Saves are single transactions. On SQLite the file runs in WAL mode, write
transactions start with ``BEGIN IMMEDIATE`` (so two writers queue on the busy timeout
instead of dead-locking on a lock upgrade) and a save that still meets "database is
locked" is retried with back-off.

The database schema is versioned: ``schema_version`` holds the applied migration numbers
and :data:`MIGRATIONS` lists the migrations in order. Opening a store applies the missing
ones in one transaction.

PostgreSQL (``postgresql+psycopg://...``; a plain ``postgresql://`` URL uses psycopg too) gets
the same guarantees: each write transaction first takes one transaction-scoped advisory lock,
so writers queue exactly as ``BEGIN IMMEDIATE`` makes them queue on SQLite, and version
numbers never collide. A database that cannot be reached raises
:class:`DatabaseUnavailable` (a one-line :class:`DisplasiaError`) instead of a driver error.
"""
from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    inspect,
    select,
)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DatabaseError,
    IntegrityError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)
from sqlalchemy.pool import StaticPool

from core.errors import DisplasiaError

from .schema import Annotation, now_iso

T = TypeVar("T")

#: Key of the PostgreSQL advisory lock every write transaction takes (any constant works).
_PG_WRITE_LOCK = 0x0D15_A5_1A

#: Largest project JSON file :meth:`AnnotationStore.seed_from_dir` reads.
MAX_JSON_BYTES = 5 * 1024 * 1024

metadata = MetaData()

schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", String(40), nullable=False),
)
images = Table(
    "images", metadata,
    Column("id", Integer, primary_key=True),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("created_at", String(40), nullable=False),
)
image_paths = Table(
    "image_paths", metadata,
    Column("id", Integer, primary_key=True),
    Column("image_id", Integer, ForeignKey("images.id"), nullable=False),
    Column("path", String(1024), nullable=False),
    Column("first_seen", String(40), nullable=False),
    UniqueConstraint("image_id", "path", name="uq_image_path"),
)
annotators = Table(
    "annotators", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("created_at", String(40), nullable=False),
)
annotation_versions = Table(
    "annotation_versions", metadata,
    Column("id", Integer, primary_key=True),
    Column("image_id", Integer, ForeignKey("images.id"), nullable=False),
    Column("annotator_id", Integer, ForeignKey("annotators.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("image_name", String(255), nullable=False),
    Column("saved_at", String(40), nullable=False),
    Column("updated", String(40), nullable=False),
    Column("total", Integer, nullable=False),
    Column("condition", String(16), nullable=False),
    Column("content_sha256", String(64), nullable=False),
    Column("document", Text, nullable=False),
    # How the annotator's name was established when this version was saved: "password" or
    # "oidc" (a logged-in identity), "self-declared" (free text, login off), NULL (imports
    # and versions saved before migration 2).
    Column("identity", String(16), nullable=True),
    UniqueConstraint("image_id", "annotator_id", "version", name="uq_image_annotator_version"),
)
Index("ix_versions_content", annotation_versions.c.image_id, annotation_versions.c.annotator_id,
      annotation_versions.c.content_sha256)


def _migration_1_initial(conn: Connection) -> None:
    """Images (by content hash) and their paths, annotators, annotation versions."""
    for table in (images, image_paths, annotators, annotation_versions):
        table.create(conn)


def _migration_2_identity(conn: Connection) -> None:
    """How each version's annotator was identified (login or self-declared)."""
    # Migration 1 builds tables from the current metadata, so a new database has the
    # column already; only databases created before this migration need it added.
    if "identity" not in {c["name"] for c in inspect(conn).get_columns("annotation_versions")}:
        conn.exec_driver_sql("ALTER TABLE annotation_versions ADD COLUMN identity VARCHAR(16)")


#: Ordered migrations; migration i (1-based) brings the schema from version i-1 to i.
#: Never edit an applied migration: append a new function instead.
MIGRATIONS: tuple[Callable[[Connection], None], ...] = (_migration_1_initial, _migration_2_identity)

#: ``identity`` values that mean the annotator logged in.
VERIFIED_IDENTITIES = ("password", "oidc")


def default_url() -> str:
    """The configured database URL (``core.config.database_url()``, env ``DISPLASIA_DB``)."""
    from core.config import database_url
    return database_url()


class DatabaseUnavailable(DisplasiaError):
    """The annotation database cannot be reached (server down, network, permissions)."""


@dataclass(frozen=True)
class VersionInfo:
    """One saved version of one annotator's reading of one image."""

    version: int
    annotator: str
    saved_at: str
    annotation: Annotation


@dataclass(frozen=True)
class ImageEntry:
    """An image that has at least one annotation."""

    image_sha256: str
    image: str                 # name in the latest saved version
    width: int
    height: int
    paths: tuple[str, ...]     # every path or name it was seen under
    annotators: tuple[str, ...]
    versions: int
    last_saved: str


@dataclass(frozen=True)
class SeedReport:
    imported: tuple[str, ...]
    unchanged: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]   # (file name, reason)


class AnnotationStore:
    """Annotations of many images by many annotators, every version kept.

    Parameters
    ----------
    url : str, optional
        SQLAlchemy URL; default :func:`default_url` (SQLite file under ``var/``).
    busy_timeout_s : float
        How long one SQLite statement waits for another writer before giving up.
    attempts : int
        How many times a save is tried when the database stays locked.

    Examples
    --------
    >>> store = AnnotationStore("sqlite://")
    >>> store.annotated_images()
    []
    """

    def __init__(self, url: str | None = None, *, busy_timeout_s: float = 30.0,
                 attempts: int = 8, migrations: Sequence[Callable[[Connection], None]] = MIGRATIONS):
        self.url = url or default_url()
        self._attempts = max(1, attempts)
        self.engine = _make_engine(self.url, busy_timeout_s)
        try:
            self.schema_version = migrate(self.engine, migrations, self._write)
        except DatabaseError as exc:
            # e.g. a JPEG given as the SQLite file: "file is not a database"; one line, no traceback
            self.engine.dispose()
            if isinstance(exc, (OperationalError, InterfaceError)):
                raise _unavailable(exc, self.url) from exc
            first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            raise DisplasiaError(f"the annotation database cannot be opened: {first[0][:200] if first else exc}") from None
        except BaseException:
            self.engine.dispose()
            raise

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> AnnotationStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ writes
    def save(self, annotation: Annotation, *, path: str | None = None,
             only_if_changed: bool = False, identity: str | None = None,
             coalesce_within_s: float | None = None) -> int:
        """Append ``annotation`` as a new version; return its version number (1, 2, ...).

        ``path`` records where the image file lives (default: the annotation's image
        name). With ``only_if_changed`` a reading equal to the latest version (ignoring
        ``updated``) is not stored again and the latest version number is returned: use it
        for autosave on every rerun. ``identity`` records how the annotator's name was
        established: ``"password"``/``"oidc"`` (logged in) or ``"self-declared"``.
        With ``coalesce_within_s`` a change made within that many seconds of the latest
        version's first save, by the same annotator with the same identity, replaces that
        version's content instead of adding a version (autosave of one editing burst: one
        version, and the last edit is always on disk).
        """
        if identity is not None and (not isinstance(identity, str) or len(identity) > 16):
            raise DisplasiaError("identity must be a short text such as 'oidc' or 'self-declared'")
        return self._store(annotation, path, "unchanged" if only_if_changed else None, identity,
                           coalesce_within_s=coalesce_within_s)

    def import_annotation(self, annotation: Annotation, *, path: str | None = None) -> int | None:
        """Save ``annotation`` unless this exact reading was ever stored for its image and
        annotator (any version); return the new version or None. Makes imports idempotent
        without resurrecting a reading the annotator has since changed."""
        return self._store(annotation, path, "known")

    def _store(self, annotation: Annotation, path: str | None, skip: str | None,
               identity: str | None = None, *, coalesce_within_s: float | None = None) -> int | None:
        if not isinstance(annotation, Annotation):
            raise TypeError(f"expected an Annotation, got {type(annotation).__name__}")
        if annotation.updated is None:
            annotation = annotation.with_updates(updated=now_iso())
        content = hashlib.sha256(annotation.content_key().encode("utf-8")).hexdigest()
        document = json.dumps(annotation.to_json(), ensure_ascii=False, separators=(",", ":"))
        where = path if path is not None else annotation.image
        if len(where) > 1024:
            raise DisplasiaError("image path is longer than 1024 characters")

        def work(conn: Connection) -> int | None:
            now = now_iso()
            image_id = _image_id(conn, annotation, now)
            if conn.execute(select(image_paths.c.id).where(
                    image_paths.c.image_id == image_id, image_paths.c.path == where)).first() is None:
                conn.execute(image_paths.insert().values(image_id=image_id, path=where, first_seen=now))
            annotator_id = _annotator_id(conn, annotation.annotator, now)
            v = annotation_versions.c
            latest = conn.execute(
                select(v.id, v.version, v.content_sha256, v.saved_at, v.identity)
                .where(v.image_id == image_id, v.annotator_id == annotator_id)
                .order_by(v.version.desc()).limit(1)).first()
            if skip == "unchanged" and latest is not None and latest.content_sha256 == content:
                return latest.version
            if (coalesce_within_s and latest is not None and latest.identity == identity
                    and _seconds_between(latest.saved_at, now) <= coalesce_within_s):
                conn.execute(annotation_versions.update().where(v.id == latest.id).values(
                    updated=annotation.updated, total=annotation.total, condition=annotation.condition.value,
                    content_sha256=content, document=document))
                return latest.version
            if skip == "known" and conn.execute(select(v.id).where(
                    v.image_id == image_id, v.annotator_id == annotator_id,
                    v.content_sha256 == content).limit(1)).first() is not None:
                return None
            version = 1 if latest is None else latest.version + 1
            conn.execute(annotation_versions.insert().values(
                image_id=image_id, annotator_id=annotator_id, version=version,
                image_name=annotation.image, saved_at=now, updated=annotation.updated,
                total=annotation.total, condition=annotation.condition.value,
                content_sha256=content, document=document, identity=identity))
            return version

        return self._write(work)

    def seed_from_dir(self, folder: str | Path) -> SeedReport:
        """Import every project JSON file (``*.json``) of ``folder``; safe to run again.

        A file that is not a valid annotation is skipped with its reason; the others
        still import. Readings already stored (any version) are reported as unchanged.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise DisplasiaError(f"annotation folder not found: {folder}")
        imported, unchanged, skipped = [], [], []
        for file in sorted(folder.glob("*.json")):
            try:
                annotation = read_annotation_file(file)
                version = self.import_annotation(annotation)
            except DisplasiaError as exc:
                skipped.append((file.name, str(exc)))
                continue
            (imported if version is not None else unchanged).append(file.name)
        return SeedReport(tuple(imported), tuple(unchanged), tuple(skipped))

    # ------------------------------------------------------------------ reads
    def latest(self, image_sha256: str, annotator: str) -> Annotation | None:
        """The latest version of ``annotator``'s reading of the image, or None."""
        rows = self._versions(image_sha256, annotator, latest_only=True)
        return rows[0].annotation if rows else None

    def latest_version(self, image_sha256: str, annotator: str) -> int:
        """Number of the latest version (0 when there is none)."""
        rows = self._versions(image_sha256, annotator, latest_only=True)
        return rows[0].version if rows else 0

    def latest_for_image(self, image_sha256: str) -> dict[str, Annotation]:
        """{annotator: latest Annotation} for one image, annotators in name order."""
        return {r.annotator: r.annotation
                for r in self._versions(image_sha256, None, latest_only=True)}

    def history(self, image_sha256: str, annotator: str | None = None) -> list[VersionInfo]:
        """Every version of the image (of one annotator, or all), oldest first."""
        return self._versions(image_sha256, annotator, latest_only=False)

    def all_latest(self) -> list[Annotation]:
        """The latest reading of every (image, annotator) pair, by image name and annotator."""
        with self._read() as conn:
            rows = conn.execute(_latest_query(None, None)).all()
        found = [_row_annotation(r.document) for r in rows]
        return sorted(found, key=lambda a: (a.image, a.image_sha256, a.annotator))

    def latest_identities(self) -> dict[tuple[str, str], str | None]:
        """``{(image_sha256, annotator): identity}`` of every latest version (see :meth:`save`)."""
        v, a = annotation_versions.c, annotators.c
        newest = (select(v.image_id, v.annotator_id, func.max(v.version).label("top"))
                  .group_by(v.image_id, v.annotator_id).subquery())
        q = (select(images.c.sha256, a.name, v.identity)
             .select_from(annotation_versions.join(images).join(annotators)
                          .join(newest, (newest.c.image_id == v.image_id)
                                & (newest.c.annotator_id == v.annotator_id) & (newest.c.top == v.version))))
        with self._read() as conn:
            return {(r.sha256, r.name): r.identity for r in conn.execute(q)}

    def annotated_shas(self, annotator: str | None = None) -> set[str]:
        """Content hashes of the images with a saved reading (by ``annotator``, or anyone);
        the page uses it to jump to the next unannotated cell."""
        q = select(images.c.sha256).select_from(annotation_versions.join(images).join(annotators))
        if annotator is not None:
            q = q.where(annotators.c.name == annotator)
        with self._read() as conn:
            return set(conn.execute(q.distinct()).scalars())

    def annotators(self) -> list[str]:
        with self._read() as conn:
            return list(conn.execute(select(annotators.c.name).order_by(annotators.c.name)).scalars())

    def annotated_images(self) -> list[ImageEntry]:
        """Every image with at least one saved annotation, by image name."""
        v, a, i = annotation_versions.c, annotators.c, images.c
        with self._read() as conn:
            rows = conn.execute(
                select(i.id, i.sha256, i.width, i.height, a.name, func.count(v.id).label("n"),
                       func.max(v.saved_at).label("last"), func.max(v.id).label("last_id"))
                .select_from(annotation_versions.join(images).join(annotators))
                .group_by(i.id, i.sha256, i.width, i.height, a.name)).all()
            paths = conn.execute(select(image_paths.c.image_id, image_paths.c.path)
                                 .order_by(image_paths.c.id)).all()
            last_ids = [r.last_id for r in rows]
            names = dict(conn.execute(select(v.id, v.image_name).where(v.id.in_(last_ids))).all()) \
                if last_ids else {}
        by_image: dict[int, dict] = {}
        for r in rows:
            e = by_image.setdefault(r.id, {"sha": r.sha256, "w": r.width, "h": r.height,
                                           "annotators": [], "n": 0, "last": "", "last_id": -1})
            e["annotators"].append(r.name)
            e["n"] += r.n
            e["last"] = max(e["last"], r.last)
            if r.last_id > e["last_id"]:
                e["last_id"] = r.last_id
        path_map: dict[int, list[str]] = {}
        for image_id, p in paths:
            path_map.setdefault(image_id, []).append(p)
        entries = [ImageEntry(e["sha"], names.get(e["last_id"], ""), e["w"], e["h"],
                              tuple(path_map.get(k, ())), tuple(sorted(e["annotators"])), e["n"],
                              e["last"]) for k, e in by_image.items()]
        return sorted(entries, key=lambda e: (e.image, e.image_sha256))

    def count_versions(self) -> int:
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(annotation_versions)).scalar())

    # ------------------------------------------------------------------ plumbing
    def _versions(self, sha: str, annotator: str | None, *, latest_only: bool) -> list[VersionInfo]:
        v, a = annotation_versions.c, annotators.c
        with self._read() as conn:
            if latest_only:
                rows = conn.execute(_latest_query(sha, annotator)).all()
            else:
                q = (select(v.version, a.name, v.saved_at, v.document)
                     .select_from(annotation_versions.join(images).join(annotators))
                     .where(images.c.sha256 == sha))
                if annotator is not None:
                    q = q.where(a.name == annotator)
                rows = conn.execute(q.order_by(v.id)).all()
        out = [VersionInfo(r.version, r.name, r.saved_at, _row_annotation(r.document)) for r in rows]
        return sorted(out, key=lambda r: r.annotator) if latest_only else out

    def _read(self):
        return _ReadTx(self.engine, self.url)

    def _write(self, work: Callable[[Connection], T]) -> T:
        delay = 0.02
        for attempt in range(1, self._attempts + 1):
            try:
                with self.engine.connect() as conn:
                    conn.execution_options(displasia_write=True)
                    with conn.begin():
                        return work(conn)
            except (OperationalError, InterfaceError) as exc:
                if not _is_busy(exc):
                    raise _unavailable(exc, self.url) from exc
                if attempt == self._attempts:
                    raise DisplasiaError("the annotation database stayed busy; "
                                         "your change was not saved, please try again") from exc
            except IntegrityError:
                # Another writer took the same version number (databases without
                # BEGIN IMMEDIATE semantics): read again and retry.
                if attempt == self._attempts:
                    raise
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 1.0)
        raise AssertionError("unreachable")


class _ReadTx:
    """Context manager: a connection inside a (deferred, read-only use) transaction."""

    def __init__(self, engine: Engine, url: str = ""):
        self.engine = engine
        self.url = url

    def __enter__(self) -> Connection:
        try:
            self.conn = self.engine.connect()
            self.tx = self.conn.begin()
        except (OperationalError, InterfaceError) as exc:
            raise _unavailable(exc, self.url) from exc
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            self.tx.rollback()
        except (OperationalError, InterfaceError):
            pass                 # the connection died mid-read: the error below says so
        finally:
            self.conn.close()
        if isinstance(exc, (OperationalError, InterfaceError)):
            raise _unavailable(exc, self.url) from exc
        return False


def _seconds_between(earlier: str, later: str) -> float:
    """Seconds from one stored ISO time to another (inf when either does not parse)."""
    from datetime import datetime

    try:
        return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()
    except (TypeError, ValueError):
        return float("inf")


def _unavailable(exc: Exception, url: str) -> DatabaseUnavailable:
    """One line for a database that cannot be reached; the URL without its password."""
    try:
        where = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        where = "the configured URL"
    first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    reason = first[0][:200] if first else type(exc).__name__
    return DatabaseUnavailable(f"the annotation database ({where}) is not reachable: {reason}")


def _latest_query(sha: str | None, annotator: str | None):
    v, a = annotation_versions.c, annotators.c
    newest = (select(v.image_id, v.annotator_id, func.max(v.version).label("top"))
              .select_from(annotation_versions.join(images).join(annotators)))
    # Filter inside the grouping too, so one image's lookup does not scan every version.
    if sha is not None:
        newest = newest.where(images.c.sha256 == sha)
    if annotator is not None:
        newest = newest.where(a.name == annotator)
    newest = newest.group_by(v.image_id, v.annotator_id).subquery()
    q = (select(v.version, a.name, v.saved_at, v.document)
         .select_from(annotation_versions.join(images).join(annotators)
                      .join(newest, (newest.c.image_id == v.image_id)
                            & (newest.c.annotator_id == v.annotator_id)
                            & (newest.c.top == v.version))))
    if sha is not None:
        q = q.where(images.c.sha256 == sha)
    if annotator is not None:
        q = q.where(a.name == annotator)
    return q.order_by(a.name)


def _row_annotation(document: str) -> Annotation:
    return Annotation.from_json(json.loads(document))


def _image_id(conn: Connection, annotation: Annotation, now: str) -> int:
    i = images.c
    row = conn.execute(select(i.id, i.width, i.height).where(i.sha256 == annotation.image_sha256)).first()
    width, height = annotation.image_size
    if row is None:
        return conn.execute(images.insert().values(sha256=annotation.image_sha256, width=width,
                                                   height=height, created_at=now)).inserted_primary_key[0]
    if (row.width, row.height) != (width, height):
        raise DisplasiaError(f"image {annotation.image} is {row.width}x{row.height} in the database "
                             f"but the annotation says {width}x{height}")
    return row.id


def _annotator_id(conn: Connection, name: str, now: str) -> int:
    row = conn.execute(select(annotators.c.id).where(annotators.c.name == name)).first()
    if row is not None:
        return row.id
    return conn.execute(annotators.insert().values(name=name, created_at=now)).inserted_primary_key[0]


def _is_busy(exc: Exception) -> bool:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).lower()
    return any(m in text for m in ("database is locked", "database is busy", "database table is locked",
                                   "lock timeout"))


def _make_engine(url: str, busy_timeout_s: float) -> Engine:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise DisplasiaError(f"not a database URL: {url!r}") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return _postgres_engine(parsed, busy_timeout_s)
    if backend != "sqlite":
        try:
            return create_engine(parsed, pool_pre_ping=True)
        except (ImportError, NoSuchModuleError):
            raise DisplasiaError(f"Cannot open the annotation database: no driver for {parsed.drivername!r} URLs is "
                                 "installed.") from None
    database = parsed.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if in_memory:
        engine = create_engine(parsed, poolclass=StaticPool,
                               connect_args={"check_same_thread": False})
    else:
        # Patient annotations: the folder is private to the service account by default.
        folder = Path(database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o750)
        except OSError as exc:
            raise DisplasiaError(f"cannot create the annotation database folder {folder}: {exc.strerror or exc}") from None
        if Path(database).expanduser().is_dir():
            raise DisplasiaError(f"the annotation database {database} is a folder, not an SQLite file")
        engine = create_engine(parsed, connect_args={"timeout": busy_timeout_s})
    busy_ms = int(busy_timeout_s * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy's "begin" event below issue BEGIN itself (pysqlite's implicit
        # transactions would start too late and in deferred mode).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        write = conn.get_execution_options().get("displasia_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _postgres_engine(parsed, busy_timeout_s: float) -> Engine:
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")   # psycopg 3 is the pinned driver
    try:
        engine = create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10,
                               connect_args={"connect_timeout": max(1, int(min(busy_timeout_s, 10)))})
    except (ImportError, NoSuchModuleError) as exc:
        raise DisplasiaError(f"no PostgreSQL driver for {parsed.drivername!r} is installed ({exc})") from None
    lock_ms = int(busy_timeout_s * 1000)

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        if conn.get_execution_options().get("displasia_write", False):
            # Writers queue on one advisory lock (released at commit/rollback), as SQLite's
            # BEGIN IMMEDIATE makes them queue: version numbers never race.
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {lock_ms}")
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_WRITE_LOCK})")

    return engine


def migrate(engine: Engine, migrations: Sequence[Callable[[Connection], None]] = MIGRATIONS,
            write: Callable | None = None) -> int:
    """Bring the database schema up to ``len(migrations)``; return the version reached.

    Runs in one write transaction, so two processes opening a new database at once apply
    each migration exactly once.
    """
    def work(conn: Connection) -> int:
        schema_version.create(conn, checkfirst=True)
        current = conn.execute(select(func.max(schema_version.c.version))).scalar() or 0
        if current > len(migrations):
            raise DisplasiaError(f"the annotation database has schema version {current}, newer than "
                                 f"this program understands ({len(migrations)}); update the dashboard")
        for number in range(current + 1, len(migrations) + 1):
            migrations[number - 1](conn)
            conn.execute(schema_version.insert().values(version=number, applied_at=now_iso()))
        return len(migrations)

    if write is None:
        with engine.connect() as conn:
            conn.execution_options(displasia_write=True)
            with conn.begin():
                return work(conn)
    return write(work)


def read_annotation_file(path: str | Path) -> Annotation:
    """Read one project JSON annotation file (size-limited, validated)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise DisplasiaError(f"{path.name} is larger than {MAX_JSON_BYTES // 1024 // 1024} MB")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DisplasiaError(f"cannot read {path.name}: {exc}") from None
    try:
        doc = json.loads(text)
    except RecursionError:
        raise DisplasiaError(f"{path.name} is nested too deeply to be an annotation") from None
    except ValueError as exc:
        raise DisplasiaError(f"{path.name} is not valid JSON ({exc})") from None
    try:
        return Annotation.from_json(doc)
    except DisplasiaError as exc:
        raise DisplasiaError(f"{path.name}: {exc}") from None
