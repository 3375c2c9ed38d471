"""The CLI as a user runs it (a subprocess): clear one-line errors, export contract, SIGKILL + resume."""

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from brainbench.store.db import DB_NAME
from brainbench.testing import ByConversation, Reply, ScriptedBrain
from test_runner_store import perfect_smoke


def bb(*args, timeout=120, env=None):
    return subprocess.run([sys.executable, "-m", "brainbench", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200", **(env or {})})


def one_line_error(proc, needle):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("error:"), proc.stderr
    assert needle in proc.stderr, proc.stderr


def test_packs_json_lists_smoke():
    proc = bb("packs", "--json")
    assert proc.returncode == 0, proc.stderr
    packs = {p["name"]: p["scenarios"] for p in json.loads(proc.stdout)["packs"]}
    assert packs["smoke"] == 4


def test_malformed_pack_file(tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "pack.yaml").write_text("name: bad\nscenarios:\n  - id: x\n    messages: []\n")
    one_line_error(bb("packs", "--pack-dir", str(d)), "field 'messages'")


def test_dead_endpoint(tmp_path):
    proc = bb("run", "--endpoint", "http://127.0.0.1:9/v1", "--model", "m", "-o", str(tmp_path / "r"))
    one_line_error(proc, "not reachable")


def test_wrong_model_name(fake, tmp_path):
    srv = fake(ScriptedBrain([Reply.text("x")]), models=["real-model"])
    proc = bb("run", "--endpoint", srv.base_url, "--model", "typo-model", "-o", str(tmp_path / "r"))
    one_line_error(proc, "does not serve model 'typo-model'; it serves: real-model")


def test_unknown_pack_and_missing_key(fake, tmp_path):
    srv = fake(ScriptedBrain([Reply.text("x")]))
    one_line_error(bb("run", "--endpoint", srv.base_url, "--model", "fake-model", "--pack", "nope",
                      "-o", str(tmp_path / "r")), "unknown pack 'nope'")
    one_line_error(bb("run", "--endpoint", srv.base_url, "--model", "fake-model", "--api-key-env", "BB_NO_SUCH_VAR",
                      "-o", str(tmp_path / "r2")), "BB_NO_SUCH_VAR")


def test_not_a_run_dir_and_newer_schema(tmp_path):
    one_line_error(bb("score", str(tmp_path)), "not a brainbench run directory")
    one_line_error(bb("export", str(tmp_path)), "not a brainbench run directory")


def test_run_score_export_contract(fake, tmp_path):
    srv = fake(ByConversation(perfect_smoke))
    run_dir = tmp_path / "run"
    secret = "sk-do-not-store-me"
    proc = bb("run", "--endpoint", srv.base_url, "--model", "fake-model", "-k", "2", "-c", "2", "--api-key-env",
              "BB_TEST_KEY", "--json", "-o", str(run_dir), env={"BB_TEST_KEY": secret})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["summary"]["fake-model"]["overall"]["pass"]["rate"] == 1.0
    data = json.loads(bb("export", str(run_dir), "--format", "json").stdout)
    assert len(data["attempts"]) == 8
    a = data["attempts"][0]
    for field, typ in [("scenario", str), ("pack", str), ("trial", int), ("model", str), ("passed", bool),
                       ("clean", bool), ("failures", list), ("tool_calls", int), ("tool_errors", int),
                       ("infra_events", int)]:
        assert isinstance(a[field], typ), field
    assert data["summary"]["fake-model"]["packs"]["smoke"]["attempts"] == 8
    rows = list(csv.DictReader(io.StringIO(bb("export", str(run_dir), "--format", "csv").stdout)))
    assert len(rows) == 8 and rows[0]["passed"] in ("True", "False")
    rescored = bb("score", str(run_dir), "--json")
    assert json.loads(rescored.stdout)["rescored"] == 8
    blob = (run_dir / DB_NAME).read_bytes() + b"".join(p.read_bytes() for p in run_dir.glob("*-wal"))
    assert secret.encode() not in blob
    assert srv.auth_headers[-1] == f"Bearer {secret}"


def test_sigkill_mid_run_then_resume_stores_every_attempt_once(fake, tmp_path):
    def slow(messages):
        r = perfect_smoke(messages)
        r.delay = 0.15
        return r

    srv = fake(ByConversation(slow))
    run_dir = tmp_path / "run"
    args = ["run", "--endpoint", srv.base_url, "--model", "fake-model", "-k", "4", "-c", "2", "-o", str(run_dir)]
    proc = subprocess.Popen([sys.executable, "-m", "brainbench", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    db = run_dir / DB_NAME
    deadline = time.time() + 60
    stored = 0
    while time.time() < deadline and stored < 4:
        time.sleep(0.1)
        if db.exists():
            try:
                with sqlite3.connect(db) as con:
                    stored = con.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
            except sqlite3.OperationalError:
                pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 4 <= stored < 16, "kill must land mid-run"
    with sqlite3.connect(db) as con:
        before = dict(con.execute("SELECT key, started FROM attempts").fetchall())
    resumed = bb("run", "--resume", str(run_dir), "--json")
    assert resumed.returncode == 0, resumed.stderr
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT key, status, started FROM attempts").fetchall()
    assert len(rows) == 16 and len({k for k, _, _ in rows}) == 16
    assert all(s == "completed" for _, s, _ in rows)
    assert all(before[k] == started for k, _, started in rows if k in before)  # nothing stored was redone


def test_a_failed_validation_leaves_no_run_directory(tmp_path):
    for args in (["--endpoint", "http://127.0.0.1:9/v1", "--model", "m"], ["--brain", "no-such-brain"],
                 ["--endpoint", "http://127.0.0.1:9/v1"]):
        run_dir = tmp_path / "run"
        proc = bb("run", *args, "-o", str(run_dir))
        assert proc.returncode == 2 and not run_dir.exists(), (args, proc.stderr)


def test_reusing_o_with_other_options_is_refused(fake, tmp_path):
    srv = fake(ByConversation(perfect_smoke))
    run_dir = tmp_path / "run"
    common = ("--endpoint", srv.base_url, "--model", "fake-model", "-o", str(run_dir))
    assert bb("run", *common).returncode == 0
    one_line_error(bb("run", *common, "-k", "2"), "holds a run with other options (trials: 1 -> 2)")
    assert bb("run", *common, "-c", "2").returncode == 0  # the same run: it simply goes on


def test_a_run_with_nothing_but_infrastructure_errors_fails_in_one_line(fake, tmp_path):
    srv = fake(ScriptedBrain([Reply.http_error(500, "engine exploded")]))
    run_dir = tmp_path / "run"
    proc = bb("run", "--endpoint", srv.base_url, "--model", "fake-model", "-c", "4", "-o", str(run_dir), timeout=300)
    one_line_error(proc, "every attempt (4) failed for an infrastructure reason")
    assert "http_5xx" in proc.stderr and "engine exploded" in proc.stderr


def test_the_terminal_summary_explains_its_columns(fake, tmp_path):
    srv = fake(ByConversation(perfect_smoke))
    proc = bb("run", "--endpoint", srv.base_url, "--model", "fake-model", "-o", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    for words in ("pass: attempts that passed every check", "pass^k: chance all k trials", "iceberg: failures an agent"):
        assert words in text, proc.stdout


def test_plain_progress_lines_name_bytes_in_mb(monkeypatch):
    """Without a terminal, setup's progress is plain lines; byte counts read as MB, attempts as whole numbers."""
    from rich.console import Console

    import brainbench.cli as cli

    buf = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=buf, width=200))
    prog = cli.PlainProgress()
    t = prog.add_task("assemble brain-medium", total=1117320768)
    prog.update(t, completed=113246208)
    a = prog.add_task("attempts", total=4)
    prog.update(a, completed=4)
    out = buf.getvalue()
    assert "assemble brain-medium: 113 MB/1117 MB (10%)" in out
    assert "attempts: 4/4 (100%)" in out
    assert "e+" not in out
