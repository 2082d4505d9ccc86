"""Settings: TOML file + environment overrides, validated with one-line errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from core import config
from core.cli import main
from core.errors import DisplasiaError
from core.settings import REPO_ROOT, load_settings, parse_settings, reload_settings


@pytest.fixture
def clean_env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith("DISPLASIA_"):
            monkeypatch.delenv(name)
    yield monkeypatch
    monkeypatch.undo()
    reload_settings()


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file(clean_env):
    s = reload_settings()
    assert s.source is None and s.auth.mode == "none"
    assert s.models.max_params == 50_000_000
    assert config.cache_dir() == REPO_ROOT / ".cache" / "displasia"
    assert config.demo_model_path() == (config.DEMO_MODEL_JSON, config.DEMO_MODEL_WEIGHTS)
    assert config.data_roots() == [config.DATA_DIR.resolve()]


def test_the_example_file_is_valid_and_documents_every_key(clean_env):
    import dataclasses
    import tomllib

    from core.settings import SECTIONS

    example = REPO_ROOT / "settings.example.toml"
    clean_env.setenv("DISPLASIA_SETTINGS", str(example))
    s = reload_settings()
    assert s.source == example and s.cache.max_mb == 2048
    text = example.read_text()
    table = tomllib.loads(text)
    for name, factory in SECTIONS.items():
        for spec in dataclasses.fields(factory):
            assert spec.name in table.get(name, {}) or f"# {spec.name} =" in text, f"{name}.{spec.name}"


def test_file_values_and_relative_paths(clean_env, tmp_path):
    path = write(tmp_path, '[cache]\ndir = "c"\nmax_mb = 3\n[data]\nroots = ["cells", "/abs"]\n'
                           '[auth]\nmode = "password"\nusers_file = "users.toml"\nadmins = ["ana"]\n')
    clean_env.setenv("DISPLASIA_SETTINGS", str(path))
    s = reload_settings()
    assert s.cache.dir == tmp_path.resolve() / "c" and s.cache.max_mb == 3.0
    assert s.data.roots == (tmp_path.resolve() / "cells", Path("/abs"))
    assert s.auth.users_file == tmp_path.resolve() / "users.toml" and s.auth.admins == ("ana",)
    assert config.cache_max_bytes() == 3 * 2**20


def test_environment_wins_over_the_file_and_old_names_work(clean_env, tmp_path):
    path = write(tmp_path, '[cache]\nmax_mb = 3\n[database]\nurl = "sqlite:///a.sqlite"\n')
    clean_env.setenv("DISPLASIA_SETTINGS", str(path))
    clean_env.setenv("DISPLASIA_CACHE_MAX_MB", "1.5")
    clean_env.setenv("DISPLASIA_DB", "sqlite:///b.sqlite")
    clean_env.setenv("DISPLASIA_MODEL", "/m/model.json")
    clean_env.setenv("DISPLASIA_WEIGHTS", "/m/w.h5")
    clean_env.setenv("DISPLASIA_DATA_ROOTS", f"/x{':'}/y")
    clean_env.setenv("DISPLASIA_AUTH_ADMINS", "ana, bo")
    clean_env.setenv("DISPLASIA_DATASET", "")  # empty = unset
    s = load_settings()
    assert s.cache.max_mb == 1.5 and s.database.url == "sqlite:///b.sqlite"
    assert config.demo_model_path() == (Path("/m/model.json"), Path("/m/w.h5"))
    assert s.data.roots == (Path("/x"), Path("/y")) and s.auth.admins == ("ana", "bo")
    assert s.data.dataset == config.DEMO_DIR


def test_cached_until_something_changes(clean_env, tmp_path):
    path = write(tmp_path, "[quotas]\ndataset_work_cells = 10\n")
    clean_env.setenv("DISPLASIA_SETTINGS", str(path))
    first = load_settings()
    assert load_settings() is first
    path.write_text("[quotas]\ndataset_work_cells = 123456\n")
    import os

    os.utime(path, ns=(1, 1))  # a new stamp even within one clock tick
    assert load_settings().quotas.dataset_work_cells == 123456
    clean_env.setenv("DISPLASIA_QUOTAS_DATASET_WORK_CELLS", "7")
    assert load_settings().quotas.dataset_work_cells == 7


@pytest.mark.parametrize("table, words", [
    ({"auth": {"mode": "ldap"}}, "auth.mode must be one of"),
    ({"auth": {"mode": "password"}}, "auth.users_file is required"),
    ({"auth": {"made": "none"}}, "Unknown setting auth.made"),
    ({"autth": {}}, "Unknown settings section [autth]"),
    ({"auth": "none"}, "[auth] must be a section"),
    ({"models": {"max_params": -1}}, "models.max_params must be at least 1"),
    ({"models": {"max_params": 1.5}}, "whole number"),
    ({"models": {"max_params": True}}, "must be a number"),
    ({"models": {"max_params": "many"}}, "must be a number"),
    ({"models": {"weights": "w.h5"}}, "models.weights needs models.path"),
    ({"cache": {"max_mb": float("inf")}}, "finite"),
    ({"cache": {"max_mb": float("nan")}}, "finite"),
    ({"cache": {"max_mb": 0}}, "at least"),
    ({"cache": {"dir": ""}}, "non-empty path"),
    ({"cache": {"dir": 5}}, "non-empty path"),
    ({"data": {"roots": []}}, "non-empty list"),
    ({"data": {"roots": "/srv"}}, "non-empty list"),
    ({"auth": {"admins": [""]}}, "non-empty names"),
    ({"auth": {"admins": "ana"}}, "non-empty names"),
    ({"database": {"url": "annotations.sqlite"}}, "database URL"),
    ({"audit": {"backups": 10**6}}, "at most"),
    ({"uploads": {"ttl_hours": -1}}, "at least"),
])
def test_invalid_settings_give_one_line(table, words):
    with pytest.raises(DisplasiaError) as info:
        parse_settings(table)
    message = str(info.value)
    assert words in message and "\n" not in message


@pytest.mark.parametrize("env, words", [
    ({"DISPLASIA_CACHE_MAX_MB": "abc"}, "DISPLASIA_CACHE_MAX_MB"),
    ({"DISPLASIA_CACHE_MAX_MB": "inf"}, "finite"),
    ({"DISPLASIA_CACHE_MAX_MB": "-5"}, "at least"),
    ({"DISPLASIA_AUTH_MODE": "root"}, "auth.mode"),
    ({"DISPLASIA_MODELS_MAX_PARAMS": "1e9"}, "whole number"),
    ({"DISPLASIA_CACHE_DIR": "bad\x00dir"}, "non-empty path"),
])
def test_invalid_environment_gives_one_line(env, words):
    with pytest.raises(DisplasiaError) as info:
        parse_settings({}, env=env)
    assert words in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("content, words", [
    (b"[auth\nmode = 1", "not valid TOML"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (b"a = " + b"[" * 5000 + b"]" * 5000, "nested too deeply"),
], ids=["not-toml", "not-utf8", "deep"])
def test_broken_files_give_one_line(clean_env, tmp_path, content, words):
    path = tmp_path / "settings.toml"
    path.write_bytes(content)
    clean_env.setenv("DISPLASIA_SETTINGS", str(path))
    with pytest.raises(DisplasiaError) as info:
        reload_settings()
    assert words in str(info.value) and "\n" not in str(info.value)


def test_missing_file_and_folder_as_file(clean_env, tmp_path):
    clean_env.setenv("DISPLASIA_SETTINGS", str(tmp_path / "nope.toml"))
    with pytest.raises(DisplasiaError, match="not found"):
        reload_settings()
    clean_env.setenv("DISPLASIA_SETTINGS", str(tmp_path))
    with pytest.raises(DisplasiaError, match="not found"):
        reload_settings()


def test_cli_check(clean_env, tmp_path, capsys):
    assert main(["settings", "check"]) == 0
    assert "settings OK" in capsys.readouterr().out
    clean_env.setenv("DISPLASIA_SETTINGS", str(write(tmp_path, '[auth]\nmode = "ldap"\n')))
    assert main(["settings", "check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Setting auth.mode") and err.count("\n") == 1
    clean_env.delenv("DISPLASIA_SETTINGS")
    assert main(["settings", "show"]) == 0
    assert "models.max_params = 50000000" in capsys.readouterr().out
