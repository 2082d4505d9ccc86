"""Who may use the dashboard: password users, roles, and a limit on failed logins.

``[auth] mode`` (:mod:`core.settings`) is ``none`` (no login; the annotator types a name,
marked unverified in exports), ``password`` (users and salted argon2id hashes in
``auth.users_file``) or ``oidc`` (the hospital's identity provider through Streamlit's
``st.login``; see ``ui/auth.py``).

Roles, weakest first: ``viewer`` (sees cells and maps), ``annotator`` (also saves
annotations), ``admin`` (also uploads models, reads the audit log and the settings). A
password user's role is the one in the users file; an OIDC identity is ``annotator``
unless ``auth.annotators`` lists the identities allowed to annotate (the others are
viewers); ``auth.admins`` makes an identity admin in both modes.

The users file is TOML, written by ``python -m core users add NAME --role ROLE``::

    [users.ana]
    role = "annotator"
    password = "$argon2id$v=19$m=65536,t=3,p=4$..."

>>> h = hash_password("correct horse battery")
>>> h.startswith("$argon2id$") and verify_password(h, "correct horse battery")
True
>>> verify_password(h, "wrong")
False
"""
from __future__ import annotations

import json
import os
import re
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.errors import DisplasiaError

ROLES = ("viewer", "annotator", "admin")
#: What each action needs (the weakest role allowed).
ACTIONS = {"view": "viewer", "annotate": "annotator", "upload_model": "admin", "admin": "admin"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
_MAX_USERS_FILE = 1 << 20
_MIN_PASSWORD = 10
_MAX_PASSWORD = 1024
_hasher = None


def _password_hasher():
    global _hasher
    if _hasher is None:
        from argon2 import PasswordHasher

        _hasher = PasswordHasher()       # argon2id, RFC 9106 low-memory profile defaults
    return _hasher


def hash_password(password: str) -> str:
    """A salted argon2id hash of ``password`` (a new random salt every call)."""
    if not isinstance(password, str) or not _MIN_PASSWORD <= len(password) <= _MAX_PASSWORD:
        raise DisplasiaError(f"a password must have {_MIN_PASSWORD} to {_MAX_PASSWORD} characters")
    return _password_hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches; False for a wrong password or a damaged hash."""
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    if not isinstance(password, str) or len(password) > _MAX_PASSWORD:
        return False
    try:
        return _password_hasher().verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def role_at_least(role: str, needed: str) -> bool:
    """``role`` is ``needed`` or stronger.

    >>> role_at_least("admin", "annotator"), role_at_least("viewer", "annotator")
    (True, False)
    """
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def allowed(role: str | None, action: str) -> bool:
    """May a user with ``role`` do ``action`` (one of :data:`ACTIONS`)?"""
    if action not in ACTIONS:
        raise KeyError(action)
    return role is not None and role_at_least(role, ACTIONS[action])


def check_name(name: str) -> str:
    """A valid user name (letters, digits, ``. _ @ + -``, at most 64 characters)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise DisplasiaError("a user name has 1 to 64 letters, digits or . _ @ + - and starts with a letter or digit")
    return name


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str = ""


# ------------------------------------------------------------------ users file

def read_users(path) -> dict[str, User]:
    """``{name: User}`` from a users file; DisplasiaError (one line) when it is not valid."""
    path = Path(path)
    try:
        if path.stat().st_size > _MAX_USERS_FILE:
            raise DisplasiaError(f"the users file {path} is larger than 1 MiB")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DisplasiaError(f"the users file {path} does not exist (create it with: python -m core users add NAME)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DisplasiaError(f"cannot read the users file {path}: {exc}") from None
    try:
        table = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        raise DisplasiaError(f"the users file {path.name} is not valid TOML: {exc}") from None
    unknown = set(table) - {"users"}
    if unknown or not isinstance(table.get("users", {}), dict):
        raise DisplasiaError(f"the users file {path.name} may only hold [users.NAME] tables")
    users = {}
    for name, entry in table.get("users", {}).items():
        try:
            check_name(name)
        except DisplasiaError as exc:
            raise DisplasiaError(f"the users file {path.name}: user {name!r}: {exc}") from None
        if not isinstance(entry, dict) or set(entry) - {"role", "password"}:
            raise DisplasiaError(f"the users file {path.name}: user {name!r} may only have role and password")
        role, password = entry.get("role", "viewer"), entry.get("password", "")
        if role not in ROLES:
            raise DisplasiaError(f"the users file {path.name}: user {name!r} has role {role!r}, not one of {', '.join(ROLES)}")
        if not isinstance(password, str) or not password.startswith("$argon2"):
            raise DisplasiaError(f"the users file {path.name}: user {name!r} has no argon2 password hash")
        users[name] = User(name, role, password)
    return users


def write_users(path, users: dict[str, User]) -> None:
    """Write the users file atomically, readable by its owner only."""
    path = Path(path)
    lines = ["# DisplasiaNet explainer users: python -m core users add|remove|list", ""]
    for name in sorted(users):
        user = users[name]
        # json.dumps of these strings (checked names, roles, argon2 hashes) is a valid TOML basic string.
        lines += [f"[users.{json.dumps(check_name(name))}]", f"role = {json.dumps(user.role)}",
                  f"password = {json.dumps(user.password_hash)}", ""]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines))
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DisplasiaError(f"cannot write the users file {path}: {exc.strerror or exc}") from None


# ------------------------------------------------------------------ failed-login limit

class LoginLimiter:
    """At most ``max_failures`` failed logins per key (user name, client address) within
    ``window_s``; then the key is locked for ``window_s``. Shared by every session of the
    process, so opening a new browser tab does not reset it. Thread-safe.

    >>> t = [0.0]
    >>> lim = LoginLimiter(2, 60, clock=lambda: t[0])
    >>> lim.failure("ana"); lim.failure("ana"); lim.locked_for("ana")
    60.0
    >>> t[0] = 61.0; lim.locked_for("ana")
    0.0
    """

    def __init__(self, max_failures: int = 5, window_s: float = 300.0, *, clock: Callable[[], float] = time.monotonic):
        self.max_failures = max(1, int(max_failures))
        self.window_s = float(window_s)
        self._clock = clock
        self._failures: dict[str, list[float]] = {}
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def locked_for(self, key: str) -> float:
        """Seconds until ``key`` may try again (0 when it may now)."""
        with self._lock:
            return max(0.0, self._locked_until.get(key, 0.0) - self._clock())

    def failure(self, key: str) -> None:
        now = self._clock()
        with self._lock:
            recent = [t for t in self._failures.get(key, []) if now - t < self.window_s] + [now]
            self._failures[key] = recent
            if len(recent) >= self.max_failures:
                self._locked_until[key] = now + self.window_s
                self._failures[key] = []
            if len(self._failures) > 100_000:          # bounded memory under a name-spraying attack
                self._failures = {k: v for k, v in self._failures.items() if v and now - v[-1] < self.window_s}
                self._locked_until = {k: u for k, u in self._locked_until.items() if u > now}

    def success(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


class PasswordAuthenticator:
    """Checks a user name and password against the users file, with the failed-login limit.

    The file is read again when it changes, so adding a user or rotating a password needs no
    restart. An unknown user costs the same hash work as a known one (no user-name probing by
    timing), and gets the same message.
    """

    def __init__(self, users_file, *, max_failures: int = 5, window_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic):
        self.users_file = Path(users_file)
        self.limiter = LoginLimiter(max_failures, window_s, clock=clock)
        self._cache: tuple | None = None
        self._dummy_hash: str | None = None
        self._lock = threading.Lock()

    def users(self) -> dict[str, User]:
        try:
            st = self.users_file.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            stamp = None
        with self._lock:
            if self._cache is not None and self._cache[0] == stamp:
                return self._cache[1]
        users = read_users(self.users_file)
        with self._lock:
            self._cache = (stamp, users)
        return users

    def authenticate(self, name: str, password: str, *, client: str | None = None) -> User:
        """The user, or DisplasiaError: wrong name/password, or locked after too many failures."""
        name = (name or "").strip()
        keys = [f"user:{name.lower()}"] + ([f"client:{client}"] if client else [])
        wait = max(self.limiter.locked_for(k) for k in keys)
        if wait > 0:
            raise LoginLocked(f"too many failed logins; try again in {int(wait) + 1} s")
        user = self.users().get(name)
        if user is None:
            if self._dummy_hash is None:
                self._dummy_hash = _password_hasher().hash("not a real password, only spends the same time")
            verify_password(self._dummy_hash, password or "")
            ok = False
        else:
            ok = verify_password(user.password_hash, password or "")
        if not ok:
            for k in keys:
                self.limiter.failure(k)
            raise LoginFailed("wrong user name or password")
        for k in keys:
            self.limiter.success(k)
        return user


class LoginFailed(DisplasiaError):
    """Wrong user name or password."""


class LoginLocked(DisplasiaError):
    """Too many failed logins for this user name or client."""


def oidc_role(identity: str, *, admins=(), annotators=()) -> str:
    """Role of an identity from the identity provider (see the module docstring).

    >>> oidc_role("ana@h.org", admins=("root@h.org",)), oidc_role("x@h.org", annotators=("ana@h.org",))
    ('annotator', 'viewer')
    """
    if identity in admins:
        return "admin"
    if not annotators or identity in annotators:
        return "annotator"
    return "viewer"


def password_role(user: User, *, admins=()) -> str:
    return "admin" if user.name in admins else user.role


# --- command line: python -m core users add|remove|list ---------------------------------------

def add_parsers(subparsers) -> None:
    p = subparsers.add_parser("users", help="password login: add, remove or list users",
                              description="Edit the users file of password login (setting auth.users_file, "
                                          "or --file). Passwords are stored as salted argon2id hashes.")
    p.add_argument("action", choices=("add", "remove", "list"))
    p.add_argument("name", nargs="?", help="user name (add, remove)")
    p.add_argument("--role", choices=ROLES, default="annotator", help="role of a new user (default annotator)")
    p.add_argument("--file", help="users file (default: setting auth.users_file)")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of standard input instead of asking twice")
    p.set_defaults(func=_run)


def _users_file(args) -> Path:
    if args.file:
        return Path(args.file)
    from core.settings import load_settings

    path = load_settings().auth.users_file
    if path is None:
        raise DisplasiaError("no users file: give --file or set auth.users_file in the settings")
    return Path(path)


def _run(args) -> int:
    import getpass
    import sys

    path = _users_file(args)
    if path.is_dir():
        raise DisplasiaError(f"--file names a folder, not a users file: {path}")
    users = read_users(path) if path.exists() else {}
    if args.action == "list":
        for name in sorted(users):
            print(f"{name}\t{users[name].role}")
        return 0
    if not args.name:
        raise DisplasiaError(f"'users {args.action}' needs a user name")
    name = check_name(args.name)
    if args.action == "remove":
        if name not in users:
            raise DisplasiaError(f"no user {name!r} in {path}")
        del users[name]
        write_users(path, users)
        print(f"removed {name}")
        return 0
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {name}: ")
        if getpass.getpass("again: ") != password:
            raise DisplasiaError("the two passwords differ")
    existed = name in users
    users[name] = User(name, args.role, hash_password(password))
    write_users(path, users)
    print(f"{'updated' if existed else 'added'} {name} ({args.role}) in {path}")
    return 0
