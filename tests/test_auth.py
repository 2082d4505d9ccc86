"""Password login: salted argon2id hashes, the users file, roles, failed-login limit, CLI."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from core.auth import (
    LoginFailed,
    LoginLimiter,
    LoginLocked,
    PasswordAuthenticator,
    User,
    allowed,
    hash_password,
    oidc_role,
    password_role,
    read_users,
    verify_password,
    write_users,
)
from core.cli import main
from core.config import REPO_ROOT
from core.errors import DisplasiaError

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def users_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("auth") / "users.toml"
    write_users(path, {"ana": User("ana", "annotator", hash_password(PASSWORD)),
                       "vic": User("vic", "viewer", hash_password("viewer password 1")),
                       "root": User("root", "admin", hash_password("admin password 1"))})
    return path


def test_hashes_are_salted_argon2id_and_verify():
    a, b = hash_password(PASSWORD), hash_password(PASSWORD)
    assert a != b and a.startswith("$argon2id$") and PASSWORD not in a
    assert verify_password(a, PASSWORD) and verify_password(b, PASSWORD)
    assert not verify_password(a, PASSWORD + " ") and not verify_password("garbage", PASSWORD)
    assert not verify_password(a, "x" * 100_000)


@pytest.mark.parametrize("password", ["", "short", "x" * 2000])
def test_too_short_or_long_passwords_are_refused(password):
    with pytest.raises(DisplasiaError, match="password must have"):
        hash_password(password)


def test_users_file_round_trip_is_private(users_file):
    users = read_users(users_file)
    assert {n: u.role for n, u in users.items()} == {"ana": "annotator", "root": "admin", "vic": "viewer"}
    assert oct(users_file.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("text, message", [
    ("not toml = = =", "not valid TOML"),
    ('[users."bad name"]\nrole = "admin"\npassword = "$argon2id$x"', "user name"),
    ('[users.ana]\nrole = "god"\npassword = "$argon2id$x"', "not one of"),
    ('[users.ana]\nrole = "admin"\npassword = "plain"', "no argon2"),
    ('[users.ana]\nrole = "admin"\npassword = "$argon2id$x"\nshell = "x"', "only have role"),
    ('[other]\nx = 1', "only hold"),
    ("[" * 5000, "not valid TOML"),
])
def test_damaged_users_file_is_one_line(tmp_path, text, message):
    path = tmp_path / "u.toml"
    path.write_text(text)
    with pytest.raises(DisplasiaError, match=message) as caught:
        read_users(path)
    assert "\n" not in str(caught.value)


def test_missing_users_file_says_how_to_create_it(tmp_path):
    with pytest.raises(DisplasiaError, match="users add"):
        read_users(tmp_path / "none.toml")


def test_authenticate_right_and_wrong(users_file):
    auth = PasswordAuthenticator(users_file)
    assert auth.authenticate("ana", PASSWORD).role == "annotator"
    with pytest.raises(LoginFailed, match="wrong user name or password"):
        auth.authenticate("ana", "wrong password")
    with pytest.raises(LoginFailed, match="wrong user name or password"):
        auth.authenticate("nobody", PASSWORD)
    with pytest.raises(LoginFailed):
        auth.authenticate("", "")


def test_failed_logins_lock_the_user_and_the_client_for_the_window(users_file):
    now = [1000.0]
    auth = PasswordAuthenticator(users_file, max_failures=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        with pytest.raises(LoginFailed):
            auth.authenticate("ana", "guess", client="10.0.0.9")
    with pytest.raises(LoginLocked, match="try again in 61 s"):
        auth.authenticate("ana", PASSWORD)          # even the right password waits
    with pytest.raises(LoginLocked):
        auth.authenticate("vic", "viewer password 1", client="10.0.0.9")   # same client, other name
    assert auth.authenticate("vic", "viewer password 1", client="10.0.0.7").name == "vic"
    now[0] += 61
    assert auth.authenticate("ana", PASSWORD).name == "ana"


def test_failures_outside_the_window_do_not_add_up():
    now = [0.0]
    lim = LoginLimiter(3, 10, clock=lambda: now[0])
    for _ in range(5):
        lim.failure("k")
        now[0] += 6
    assert lim.locked_for("k") == 0


def test_success_clears_earlier_failures(users_file):
    auth = PasswordAuthenticator(users_file, max_failures=2, window_s=60)
    with pytest.raises(LoginFailed):
        auth.authenticate("ana", "guess")
    auth.authenticate("ana", PASSWORD)
    with pytest.raises(LoginFailed):
        auth.authenticate("ana", "guess")
    assert auth.authenticate("ana", PASSWORD).name == "ana"


def test_users_file_change_is_picked_up_without_restart(tmp_path):
    path = tmp_path / "u.toml"
    write_users(path, {"ana": User("ana", "viewer", hash_password(PASSWORD))})
    auth = PasswordAuthenticator(path)
    assert auth.authenticate("ana", PASSWORD).role == "viewer"
    write_users(path, {"ana": User("ana", "annotator", hash_password("rotated password"))})
    with pytest.raises(LoginFailed):
        auth.authenticate("ana", PASSWORD)
    assert auth.authenticate("ana", "rotated password").role == "annotator"


def test_roles_and_actions():
    assert allowed("admin", "upload_model") and not allowed("annotator", "upload_model")
    assert allowed("annotator", "annotate") and not allowed("viewer", "annotate")
    assert allowed("viewer", "view") and not allowed(None, "view") and not allowed("root", "view")
    assert oidc_role("a@x", admins=("a@x",)) == "admin"
    assert oidc_role("b@x") == "annotator"
    assert oidc_role("b@x", annotators=("a@x",)) == "viewer"
    assert password_role(User("ana", "viewer"), admins=("ana",)) == "admin"


def test_cli_adds_lists_and_removes_users(tmp_path, capsys):
    path = tmp_path / "users.toml"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    run = subprocess.run([sys.executable, "-m", "core", "users", "add", "ana", "--role", "admin", "--file", str(path),
                          "--password-stdin"], input=PASSWORD + "\n", capture_output=True, text=True, env=env,
                         cwd=REPO_ROOT, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "added ana (admin)" in run.stdout
    assert PasswordAuthenticator(path).authenticate("ana", PASSWORD).role == "admin"
    assert main(["users", "list", "--file", str(path)]) == 0
    assert capsys.readouterr().out == "ana\tadmin\n"
    assert main(["users", "add", "bad name", "--file", str(path)]) == 2
    assert main(["users", "remove", "nobody", "--file", str(path)]) == 2
    assert main(["users", "list", "--file", str(tmp_path)]) == 2
    assert main(["users", "remove", "ana", "--file", str(path)]) == 0
    assert read_users(path) == {}
