"""Against the real embedded llama-server with brain-small (built and fetched on first use)."""

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import httpx
import pytest

from brainbench.backend import LlamaServer, ensure_brain
from brainbench.store import RunStore
from test_cli import bb

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def model_path():
    return ensure_brain("brain-small")


def _port_from_log(log):
    return int(re.search(r"--port (\d+)", log.read_text()).group(1))


def _port_closed(port, wait=15.0):
    deadline = time.time() + wait
    while time.time() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
        except httpx.HTTPError:
            return True
        time.sleep(0.3)
    return False


def test_run_on_embedded_brain_stores_real_turns(model_path, tmp_path):
    run_dir = tmp_path / "run"
    proc = bb("run", "--brain", "brain-small", "--pack", "smoke", "--json", "-o", str(run_dir), timeout=900)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)["summary"]["brain-small"]["overall"]
    assert summary["attempts"] == 4
    with RunStore(run_dir) as store:
        recs = list(store.attempts())
        assert all(r.status == "completed" for r in recs)
        turns = [t for r in recs for t in r.turns]
        assert all(t.result.usage.completion_tokens > 0 for t in turns)
        assert all(t.result.server_timings and t.result.server_timings["predicted_n"] > 0 for t in turns)
        assert all(t.result.timing.first_token is not None for t in turns)
        assert store.get_meta("server")["args"][:1] == ["--jinja"]
    chat = next(r for r in recs if r.scenario_id == "chat-capital")
    assert "paris" in chat.turns[0].result.content.lower()  # the real model answered the real question
    log = run_dir / "server.log"
    assert "--host 127.0.0.1" in log.read_text()
    assert _port_closed(_port_from_log(log), wait=2), "server must be stopped when the run ends"


def test_run_against_any_endpoint_and_rescore(model_path, tmp_path):
    with LlamaServer(model_path, log_path=tmp_path / "srv.log", parallel=2) as srv:
        proc = bb("run", "--endpoint", srv.base_url, "--model", "brain-small", "-c", "2", "--json",
                  "-o", str(tmp_path / "run"), timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["summary"]["brain-small"]["overall"]["attempts"] == 4
    rescored = bb("score", str(tmp_path / "run"), "--json")
    assert json.loads(rescored.stdout)["rescored"] == 4


def test_sigkill_leaves_no_orphan_server(model_path, tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "brainbench", "run", "--brain", "brain-small", "-k", "3",
                             "-o", str(run_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = run_dir / "brainbench.sqlite"
    deadline = time.time() + 300
    stored = 0
    while time.time() < deadline and stored < 1:
        time.sleep(0.2)
        try:
            with sqlite3.connect(db) as con:
                stored = con.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
        except sqlite3.Error:
            pass
    port = _port_from_log(run_dir / "server.log")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _port_closed(port), "llama-server outlived a SIGKILLed brainbench"
    resumed = bb("run", "--resume", str(run_dir), "--json", timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    with sqlite3.connect(db) as con:
        keys = [k for (k,) in con.execute("SELECT key FROM attempts WHERE status='completed'")]
    assert len(keys) == 12 == len(set(keys))
