"""Audit log: JSON lines with who/when/what, rotation without loss, concurrent writers, CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from core.audit import AuditLog, audit_log
from core.cli import main
from core.config import REPO_ROOT
from core.errors import DisplasiaError


def test_record_has_who_when_dataset_cell_method_params_version(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl")
    log.write("explain", who="ana", dataset="data/demo", cell="TN_1.jpg", method="occlusion",
              target="dysplastic", params={"patch": 5, "fill": "mean"})
    log.write("annotation_saved", who="ana", cell="TN_1.jpg", version=4, verified=True)
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert first["who"] == "ana" and first["event"] == "explain" and first["cell"] == "TN_1.jpg"
    assert first["method"] == "occlusion" and first["params"] == {"patch": 5, "fill": "mean"}
    assert first["ts"].endswith("+00:00") and first["dataset"] == "data/demo"
    assert json.loads(lines[1])["version"] == 4
    assert [r["event"] for r in log.read()] == ["annotation_saved", "explain"]   # newest first


def test_hostile_values_stay_one_json_line(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl")
    log.write("explain", who="ana\n{\"event\": \"forged\"}", cell="x" * 10_000,
              params={"noise": float("nan"), "deep": [[[[[[["z"]]]]]]]}, extra_key="e\r\n")
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    assert len(lines) == 1
    r = json.loads(lines[0])
    assert r["event"] == "explain" and r["who"].startswith("ana\n")
    assert len(r["cell"]) == 512 and r["params"]["noise"] == "nan"
    assert r["detail"] == {"extra_key": "e\r\n"}


def test_rotation_keeps_the_configured_backups_and_loses_no_recent_line(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl", max_bytes=2000, backups=3)
    for i in range(200):
        log.write("explain", who="ana", cell=f"cell_{i:03d}.jpg")
    files = log.files()
    assert [f.name for f in files] == ["a.jsonl", "a.jsonl.1", "a.jsonl.2", "a.jsonl.3"]
    assert all(f.stat().st_size <= 2000 for f in files)
    cells = [r["cell"] for r in log.read()]
    # Newest first and contiguous: rotation only drops the oldest lines.
    assert cells[0] == "cell_199.jpg"
    numbers = [int(c[5:8]) for c in cells]
    assert numbers == list(range(199, 199 - len(numbers), -1))
    assert len(numbers) > 40


def test_threads_and_processes_write_without_losing_lines(tmp_path):
    path = tmp_path / "a.jsonl"
    log = AuditLog(path, max_bytes=10**7)
    script = ("import sys; from core.audit import AuditLog\n"
              "log = AuditLog(sys.argv[1], max_bytes=10**7)\n"
              "[log.write('explain', who=sys.argv[2], cell=str(i)) for i in range(300)]\n")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", script, str(path), f"proc{k}"], env=env) for k in range(2)]
    threads = [threading.Thread(target=lambda k=k: [log.write("explain", who=f"thread{k}", cell=str(i))
                                                       for i in range(300)]) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    result = log.read_all()
    assert result.damaged_lines == 0
    for who in ("proc0", "proc1", "thread0", "thread1"):
        assert sorted(int(r["cell"]) for r in result.records if r["who"] == who) == list(range(300))


def test_damaged_lines_are_skipped_and_counted(tmp_path):
    path = tmp_path / "a.jsonl"
    log = AuditLog(path)
    log.write("login", who="ana")
    with open(path, "a") as f:
        f.write("{not json\n[1, 2]\n" + "[" * 100_000 + "\n")
    log.write("logout", who="ana")
    result = log.read_all()
    assert [r["event"] for r in result.records] == ["logout", "login"]
    assert result.damaged_lines == 3


def test_filters(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl")
    log.write("explain", who="ana", cell="a.jpg")
    log.write("explain", who="ben", cell="b.jpg")
    log.write("annotation_saved", who="ben", cell="b.jpg", version=1)
    assert [r["event"] for r in log.read(who="ben")] == ["annotation_saved", "explain"]
    assert [r["who"] for r in log.read(event="explain")] == ["ben", "ana"]
    assert len(log.read(cell="a.jpg")) == 1 and len(log.read(limit=1)) == 1
    assert log.read(since="2999") == []


def test_unwritable_log_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DisplasiaError, match="cannot write the audit log"):
        AuditLog(blocker / "a.jsonl").write("login", who="ana")


def test_settings_choose_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("DISPLASIA_AUDIT_PATH", str(tmp_path / "from-env.jsonl"))
    monkeypatch.setenv("DISPLASIA_AUDIT_BACKUPS", "2")
    log = audit_log()
    assert log.path == tmp_path / "from-env.jsonl" and log.backups == 2


def test_cli_shows_records_and_refuses_bad_arguments(tmp_path, capsys):
    path = tmp_path / "a.jsonl"
    log = AuditLog(path)
    log.write("explain", who="ana", cell="a.jpg", method="lime", params={"samples": 700})
    log.write("annotation_saved", who="ben", cell="b.jpg", version=2)
    assert main(["audit", "show", "--file", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split("\t")[1:3] == ["annotation_saved", "ben"] and 'version=2' in out[0]
    assert 'method="lime"' in out[1]
    assert main(["audit", "show", "--file", str(path), "--who", "ana", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == {"samples": 700}
    assert main(["audit", "show", "--file", str(tmp_path)]) == 2
    assert main(["audit", "show", "--file", str(path), "--limit", "-1"]) == 2
    assert "error:" in capsys.readouterr().err
