"""Deployment settings: one TOML file, environment overrides, validated once.

The file's path comes from the environment variable ``DISPLASIA_SETTINGS``; without it the
built-in defaults apply (a laptop running the demo needs no file). Every key can also be set
from the environment as ``DISPLASIA_<SECTION>_<KEY>`` (for example ``DISPLASIA_AUTH_MODE``,
``DISPLASIA_CACHE_MAX_MB``), and the variables the project used before keep working:

=========================  ==================
variable                   setting
=========================  ==================
``DISPLASIA_CACHE_DIR``    ``cache.dir``
``DISPLASIA_CACHE_MAX_MB`` ``cache.max_mb``
``DISPLASIA_DB``           ``database.url``
``DISPLASIA_MODEL``        ``models.path``
``DISPLASIA_WEIGHTS``      ``models.weights``
``DISPLASIA_DATASET``      ``data.dataset``
``DISPLASIA_DATA_ROOTS``   ``data.roots``
=========================  ==================

An environment value wins over the file; an empty value counts as unset. Lists in the
environment are separated by ``os.pathsep`` (paths) or commas (names). Relative paths in
the file are relative to the file's folder. Unknown sections or keys, wrong types and values
out of range raise :class:`core.errors.DisplasiaError` with one line naming the setting, so
a typo stops start-up instead of being silently ignored. ``settings.example.toml`` at the
repository root documents every key.

>>> s = load_settings()
>>> s.auth.mode in AUTH_MODES and s.models.max_params >= 1
True
>>> parse_settings({"auth": {"mode": "ldap"}}).auth.mode
Traceback (most recent call last):
...
core.errors.DisplasiaError: Setting auth.mode must be one of none, password, oidc (got 'ldap').
"""
from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import DisplasiaError

REPO_ROOT = Path(__file__).resolve().parent.parent
SETTINGS_ENV = "DISPLASIA_SETTINGS"
AUTH_MODES = ("none", "password", "oidc")
#: A settings file larger than this is not a settings file.
_MAX_FILE_BYTES = 1 << 20


def _meta(*, low=None, high=None, choices=None, kind=None, help=""):
    return {"low": low, "high": high, "choices": choices, "kind": kind, "help": help}


def _f(default, **meta):
    if isinstance(default, list | dict):
        raise TypeError("use tuples for defaults")
    return field(default=default, metadata=_meta(**meta))


# Each section is a frozen dataclass; ``kind`` says how a value is parsed:
# "path", "path?" (optional path), "paths", "str", "names", "int", "float".

@dataclass(frozen=True)
class CacheSettings:
    """On-disk explanation cache."""
    dir: Path = _f(REPO_ROOT / ".cache" / "displasia", kind="path", help="cache folder")
    max_mb: float = _f(2048.0, kind="float", low=1.0, high=1e7, help="size limit in MiB (least recently used entries go)")


@dataclass(frozen=True)
class DatabaseSettings:
    """Annotation store."""
    url: str = _f(f"sqlite:///{REPO_ROOT / 'var' / 'annotations.sqlite'}", kind="str",
                  help="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user@host/db")


@dataclass(frozen=True)
class DataSettings:
    """Datasets the dashboard may open."""
    dataset: Path = _f(REPO_ROOT / "data" / "demo", kind="path", help="dataset opened first")
    roots: tuple = _f((REPO_ROOT / "data",), kind="paths",
                      help="folders datasets and models may be read from; a file whose real path leaves them is refused")


@dataclass(frozen=True)
class AuthSettings:
    """Login and roles."""
    mode: str = _f("none", kind="str", choices=AUTH_MODES, help="none, password or oidc (Streamlit st.login)")
    users_file: Path | None = _f(None, kind="path?", help="password mode: file of users and salted password hashes")
    admins: tuple = _f((), kind="names", help="identities with the admin role (model upload, settings)")
    annotators: tuple = _f((), kind="names", help="identities allowed to save annotations; empty = every logged-in user")
    oidc_provider: str = _f("", kind="str", help="oidc mode: provider name of [auth.<name>] in .streamlit/secrets.toml; empty = [auth]")
    max_failed_logins: int = _f(5, kind="int", low=1, high=1000, help="failed logins allowed per identity and window")
    lockout_seconds: int = _f(300, kind="int", low=1, high=86400, help="window and lock-out time after too many failures")


@dataclass(frozen=True)
class UploadSettings:
    """Files users upload (cells, models)."""
    dir: Path = _f(Path(tempfile.gettempdir()) / "displasia-uploads", kind="path",
                   help="where uploads live while their session lasts")
    max_mb: float = _f(200.0, kind="float", low=0.001, high=1e5, help="largest upload in MiB")
    ttl_hours: float = _f(24.0, kind="float", low=0.001, high=1e5, help="uploads older than this are deleted at start-up")
    max_image_pixels: int = _f(25_000_000, kind="int", low=1, high=10**10, help="largest image (width x height) decoded")


@dataclass(frozen=True)
class ModelSettings:
    """The default model and the limits every loaded model is checked against before it is built."""
    path: Path | None = _f(None, kind="path?", help="default model (.json, .h5, .keras); empty = the bundled demo")
    weights: Path | None = _f(None, kind="path?", help="HDF5 weights for a .json default model")
    max_params: int = _f(50_000_000, kind="int", low=1, high=10**11, help="most parameters a model may declare")
    max_config_bytes: int = _f(4 * 2**20, kind="int", low=1024, high=2**31, help="largest architecture JSON")
    max_json_depth: int = _f(64, kind="int", low=8, high=500, help="deepest nesting of the architecture JSON")
    max_archive_uncompressed_mb: float = _f(1024.0, kind="float", low=1.0, high=1e6,
                                            help="largest total uncompressed size of a .keras archive")
    max_input_pixels: int = _f(4_194_304, kind="int", low=1, high=10**10, help="largest model input (height x width)")


@dataclass(frozen=True)
class AuditSettings:
    """Audit log (JSON lines, rotated)."""
    path: Path = _f(REPO_ROOT / "var" / "audit.jsonl", kind="path", help="audit log file")
    max_bytes: int = _f(10 * 2**20, kind="int", low=1024, high=2**40, help="rotate when the file grows past this")
    backups: int = _f(5, kind="int", low=0, high=1000, help="rotated files kept")


@dataclass(frozen=True)
class QuotaSettings:
    """Per-session budgets."""
    dataset_work_cells: int = _f(20_000, kind="int", low=1, high=10**9,
                                 help="cells one session may process in dataset-wide work (each cell x method counts one)")


@dataclass(frozen=True)
class PrefetchSettings:
    """Background work the dashboard does before it is asked (the current cell's Compare set, then its neighbours)."""
    cpu_seconds: float = _f(60.0, kind="float", low=0.0, high=86400.0,
                            help="CPU seconds spent prefetching per change of the current cell; 0 = off")


@dataclass(frozen=True)
class Settings:
    """Every deployment setting; ``source`` is the TOML file read, or None (defaults + environment)."""
    cache: CacheSettings = field(default_factory=CacheSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    data: DataSettings = field(default_factory=DataSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    uploads: UploadSettings = field(default_factory=UploadSettings)
    models: ModelSettings = field(default_factory=ModelSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    quotas: QuotaSettings = field(default_factory=QuotaSettings)
    prefetch: PrefetchSettings = field(default_factory=PrefetchSettings)
    source: Path | None = None


SECTIONS = {f.name: f.default_factory for f in dataclasses.fields(Settings) if f.name != "source"}

#: Environment names the project used before the settings file existed.
LEGACY_ENV = {
    "DISPLASIA_DB": ("database", "url"),
    "DISPLASIA_MODEL": ("models", "path"),
    "DISPLASIA_WEIGHTS": ("models", "weights"),
    "DISPLASIA_DATASET": ("data", "dataset"),
}


def env_names(section: str, key: str) -> list[str]:
    """Environment variables that set ``section.key``, strongest first."""
    names = [f"DISPLASIA_{section}_{key}".upper()]
    names += [name for name, target in LEGACY_ENV.items() if target == (section, key)]
    return names


def _fail(where: str, message: str):
    raise DisplasiaError(f"Setting {where} {message}")


def _convert(where: str, kind: str, value, base: Path | None, *, from_env: bool):
    """One raw value (TOML value or environment string) -> its typed value."""
    def as_path(v):
        if not isinstance(v, str) or not v.strip() or "\x00" in v:
            _fail(where, f"must be a non-empty path (got {v!r}).")
        p = Path(v).expanduser()
        return base / p if base is not None and not p.is_absolute() else p

    if kind in ("path", "path?"):
        if kind == "path?" and value in ("", None):
            return None
        return as_path(value)
    if kind == "paths":
        if from_env:
            value = [v for v in value.split(os.pathsep) if v]
        if not isinstance(value, list) or not value:
            _fail(where, "must be a non-empty list of folders.")
        return tuple(as_path(v) for v in value)
    if kind == "names":
        if from_env:
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            _fail(where, "must be a list of non-empty names.")
        return tuple(v.strip() for v in value)
    if kind == "str":
        if not isinstance(value, str) or "\x00" in value:
            _fail(where, f"must be text (got {value!r}).")
        return value.strip()
    if kind in ("int", "float"):
        if from_env:
            try:
                value = float(value) if kind == "float" else int(value.strip().replace("_", ""))
            except ValueError:
                _fail(where, f"must be {'a number' if kind == 'float' else 'a whole number'} (got {value!r}).")
        if isinstance(value, bool) or not isinstance(value, int | float):
            _fail(where, f"must be a number (got {value!r}).")
        if kind == "int" and not isinstance(value, int):
            _fail(where, f"must be a whole number (got {value!r}).")
        if not math.isfinite(value):
            _fail(where, f"must be a finite number (got {value!r}).")
        return float(value) if kind == "float" else int(value)
    raise AssertionError(kind)


def _check_range(where: str, meta: dict, value) -> None:
    if meta["choices"] is not None and value not in meta["choices"]:
        _fail(where, f"must be one of {', '.join(meta['choices'])} (got {value!r}).")
    if meta["low"] is not None and value < meta["low"]:
        _fail(where, f"must be at least {meta['low']:g} (got {value:g}).")
    if meta["high"] is not None and value > meta["high"]:
        _fail(where, f"must be at most {meta['high']:g} (got {value:g}).")


def parse_settings(table: dict, *, env=None, base: Path | None = None, source: Path | None = None) -> Settings:
    """Settings from a parsed TOML table plus environment overrides (``env``: a mapping, default none).

    Raises DisplasiaError (one line) on an unknown section or key, a wrong type or a value out
    of range.
    """
    env = {} if env is None else env
    if not isinstance(table, dict):
        raise DisplasiaError("Settings must be a TOML table.")
    unknown = sorted(set(table) - set(SECTIONS))
    if unknown:
        raise DisplasiaError(f"Unknown settings section [{unknown[0]}] (known: {', '.join(SECTIONS)}).")
    sections = {}
    for name, factory in SECTIONS.items():
        raw = table.get(name, {})
        if not isinstance(raw, dict):
            raise DisplasiaError(f"Settings [{name}] must be a section (a TOML table).")
        fields = {f.name: f for f in dataclasses.fields(factory)}
        extra = sorted(set(raw) - set(fields))
        if extra:
            raise DisplasiaError(f"Unknown setting {name}.{extra[0]} (known: {', '.join(fields)}).")
        values = {}
        for key, spec in fields.items():
            meta = spec.metadata
            value = spec.default
            if key in raw:
                value = _convert(f"{name}.{key}", meta["kind"], raw[key], base, from_env=False)
            for var in env_names(name, key):
                text = env.get(var)
                if text is not None and text.strip() != "":
                    value = _convert(f"{name}.{key} (env {var})", meta["kind"], text, None, from_env=True)
                    break
            if value is not None and meta["kind"] in ("int", "float", "str"):
                _check_range(f"{name}.{key}", meta, value)
            values[key] = value
        sections[name] = factory(**values)
    settings = Settings(**sections, source=source)
    _check_consistency(settings)
    return settings


def _check_consistency(s: Settings) -> None:
    if s.auth.mode == "password" and s.auth.users_file is None:
        raise DisplasiaError("Setting auth.users_file is required when auth.mode is 'password'.")
    if s.models.weights is not None and s.models.path is None:
        raise DisplasiaError("Setting models.weights needs models.path (the architecture it belongs to).")
    if not s.database.url or "://" not in s.database.url:
        raise DisplasiaError(f"Setting database.url must be a database URL such as sqlite:///path (got {s.database.url!r}).")


def read_settings_file(path) -> dict:
    """The parsed TOML table of a settings file (DisplasiaError if unreadable or not TOML)."""
    path = Path(path)
    try:
        if not path.is_file():
            raise DisplasiaError(f"Settings file not found: {path} (from {SETTINGS_ENV}).")
        if path.stat().st_size > _MAX_FILE_BYTES:
            raise DisplasiaError(f"Settings file {path} is larger than {_MAX_FILE_BYTES // 1024} KiB.")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise DisplasiaError(f"Settings file {path} is not UTF-8 text.") from None
    except OSError as exc:
        raise DisplasiaError(f"Cannot read settings file {path}: {exc.strerror or exc}.") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DisplasiaError(f"Settings file {path.name} is not valid TOML: {exc}.") from None
    except RecursionError:
        raise DisplasiaError(f"Settings file {path.name} is nested too deeply.") from None


_lock = threading.Lock()
_cached: tuple | None = None  # (fingerprint, Settings)


def _fingerprint(env) -> tuple:
    raw = env.get(SETTINGS_ENV) or ""
    stamp = None
    if raw:
        try:
            st = os.stat(raw)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except (OSError, ValueError):
            stamp = "missing"
    return raw, stamp, tuple(sorted((k, v) for k, v in env.items() if k.startswith("DISPLASIA_")))


def load_settings() -> Settings:
    """The current settings (cached; re-read when ``DISPLASIA_SETTINGS``, the file or a
    ``DISPLASIA_*`` variable changes). Raises DisplasiaError with one line if invalid."""
    global _cached
    env = dict(os.environ)
    key = _fingerprint(env)
    with _lock:
        if _cached is not None and _cached[0] == key:
            return _cached[1]
    raw = env.get(SETTINGS_ENV) or ""
    table, base, source = {}, None, None
    if raw:
        source = Path(raw).expanduser()
        table = read_settings_file(source)
        base = source.resolve().parent
    settings = parse_settings(table, env=env, base=base, source=source)
    with _lock:
        _cached = (key, settings)
    return settings


def reload_settings() -> Settings:
    """Forget the cached settings and read them again (tests, admin page)."""
    global _cached
    with _lock:
        _cached = None
    return load_settings()


def describe(settings: Settings) -> list[str]:
    """``section.key = value`` lines of the effective settings (nothing secret is stored here)."""
    lines = []
    for name in SECTIONS:
        section = getattr(settings, name)
        for spec in dataclasses.fields(section):
            value = getattr(section, spec.name)
            if isinstance(value, tuple):
                value = [str(v) for v in value]
            elif isinstance(value, Path):
                value = str(value)
            lines.append(f"{name}.{spec.name} = {value!r}")
    return lines


# --- command line: python -m core settings check|show ------------------------------------

def add_parsers(subparsers) -> None:
    p = subparsers.add_parser("settings", help="check or show the deployment settings",
                              description=f"Validate the settings file named by {SETTINGS_ENV} plus the DISPLASIA_* "
                                          "environment overrides.")
    p.add_argument("action", choices=("check", "show"), help="check: validate only; show: print every effective value")
    p.set_defaults(func=_run)


def _run(args) -> int:
    settings = reload_settings()
    where = f"file {settings.source}" if settings.source else "built-in defaults"
    if args.action == "show":
        for line in describe(settings):
            print(line)
    print(f"settings OK ({where} + environment; auth {settings.auth.mode})")
    return 0
