"""Soak against real fake-server processes: crashes, silent-empty turns, retention, memory growth, restarts."""

import pytest

from brainbench.matrix.engine import ProfileRun
from brainbench.matrix.soak import retention, verdict
from brainbench.profiles.schema import SoakLeg
from brainbench.store import RunStore
from matrix_fixtures import fake_profile
from test_cli import bb


def soak(tmp_path, flags=(), warmup=1, **leg):
    spec = {"type": "soak", "sessions": 4, "turns": 2, "max_tokens": 8, "silent_empty_min_s": 0.2, **leg}
    p = fake_profile(tmp_path, "s", tuple(flags), legs=[spec], warmup={"requests": warmup, "max_tokens": 4})
    rec = ProfileRun(p, tmp_path / "run").run()
    with RunStore(tmp_path / "run") as store:
        sessions = store.results("soak_session")
        summary = store.results("soak")[-1]["data"]
    return rec, summary, sessions


def test_healthy_soak_passes_and_stores_every_session(tmp_path):
    # sleep-dominated decode (10 ms per token) so a busy shared CPU cannot fake a retention drop
    rec, s, sessions = soak(tmp_path, ("--chunk-gap", "0.01"), min_retention=0.6)
    assert rec["status"] == "done" and s["passed"], s["reasons"]
    assert s["sessions_complete"] == 4 and s["turns"] == 8 and s["crashes"]["total"] == 0
    assert len(sessions) == 4 and all(len(x["data"]["turns"]) == 2 for x in sessions)
    assert s["tps_retention"]["k"] == 2 and s["tps_retention"]["value"] > 0.5
    assert s["memory"]["rss"]["first_mb"] > 5  # the fake server's own RSS was watched


def test_a_connection_the_server_closed_while_idle_is_not_a_crash(tmp_path):
    # the server drops every reused keep-alive connection unanswered; a pooled client would count each as a reset
    rec, s, _ = soak(tmp_path, ("--drop-reused", "--chunk-gap", "0.01"), min_retention=0.5)
    assert s["crashes"]["total"] == 0 and s["passed"], (s["crashes"], s["reasons"])
    assert s["sessions_complete"] == 4 and s["turns"] == 8


def test_silent_empty_turns_fail_the_soak(tmp_path):
    _, s, _ = soak(tmp_path, ("--empty-every", "3", "--empty-delay", "0.25"))
    assert s["silent_empty"] >= 2
    assert not s["passed"] and any("silent-empty" in r for r in s["reasons"])


def test_fast_empty_replies_are_not_silent_empty(tmp_path):
    _, s, _ = soak(tmp_path, ("--empty-every", "3", "--empty-delay", "0"))
    assert s["silent_empty"] == 0 and s["empty_fast"] >= 2


def test_server_death_with_restart_is_a_crash_and_loses_nothing(tmp_path):
    rec, s, sessions = soak(tmp_path, ("--die-after", "5"), restart="on_crash", max_restarts=3)
    assert s["crashes"]["process_death"] >= 1 and s["restarts"] >= 1
    assert not s["passed"] and any("crash" in r for r in s["reasons"])
    assert len(sessions) == s["sessions_run"]  # every session that ran is stored, broken ones included
    assert any(not t["ok"] for x in sessions for t in x["data"]["turns"])
    assert any(x["data"]["complete"] for x in sessions[-2:])  # the restarted server served later sessions
    assert "exit code 3" in s["deaths"][0]["detail"]


def test_server_death_without_restart_stops_the_soak(tmp_path):
    rec, s, sessions = soak(tmp_path, ("--die-after", "4"))
    assert s["dead"] and s["crashes"]["process_death"] == 1 and s["restarts"] == 0
    assert "server died and was not restarted" in s["reasons"]
    assert s["sessions_run"] < 4 and len(sessions) == s["sessions_run"] >= 1


def test_503_loading_counts_as_crash(tmp_path):
    _, s, _ = soak(tmp_path, ("--loading-first", "1"), warmup=0, sessions=2)
    assert s["crashes"]["loading_model"] == 1 and s["turns_failed"] == 0 and not s["passed"]


def test_memory_growth_fails(tmp_path):
    _, s, _ = soak(tmp_path, ("--leak-mb", "12"), sessions=5, turns=2, mem_growth_floor_mb=16, max_mem_growth=0.25)
    g = s["memory"]["rss"]
    assert g["growth_mb"] > 60 and not s["passed"]
    assert any("RSS grew" in r for r in s["reasons"])


def test_tps_retention_fails_when_the_server_slows_down(tmp_path):
    _, s, _ = soak(tmp_path, ("--slowdown", "0.6", "--chunk-gap", "0.004"), sessions=6, turns=1)
    assert s["tps_retention"]["value"] < 0.8
    assert any("TPS retention" in r for r in s["reasons"])


def test_duration_bound_cuts_and_keeps_partial_sessions(tmp_path):
    _, s, sessions = soak(tmp_path, ("--chunk-gap", "0.05"), sessions=20, turns=3, duration_s=1.5)
    assert s["truncated"] and s["sessions_run"] < 20 and s["duration_s"] < 5
    assert len(sessions) == s["sessions_run"]


def test_retention_and_verdict_units():
    mk = lambda i, v: {"started": i, "decode_tps_median": v}  # noqa: E731
    r = retention([mk(i, 100 - 5 * i) for i in range(10)])
    assert r["k"] == 5 and r["first"] == 90 and r["last"] == 65 and r["value"] == pytest.approx(65 / 90, abs=1e-3)
    assert retention([mk(0, 10)])["value"] is None
    leg = SoakLeg(type="soak")
    ok = {"crashes": {"process_death": 0, "loading_model": 0, "stream_reset": 0, "total": 0}, "silent_empty": 0,
          "turns_failed": 0, "tps_retention": {"value": 0.81}, "memory": {"rss": {"growth": 0.5, "growth_mb": 10,
          "first_mb": 20, "last_mb": 30}}, "dead": False}
    assert verdict(ok, leg) == (True, [])  # growth under the MiB floor is noise
    bad = {**ok, "tps_retention": {"value": 0.79}}
    assert verdict(bad, leg)[1] == ["TPS retention 79% < 80%"]


def test_soak_cli_exit_code_and_summary(tmp_path):
    p = fake_profile(tmp_path, "s", ("--empty-every", "2", "--empty-delay", "0.2"),
                     legs=[{"type": "soak", "silent_empty_min_s": 0.1}])
    proc = bb("soak", p.source, "--sessions", "2", "--turns", "2", "-o", str(tmp_path / "run"))
    assert proc.returncode == 1, proc.stderr
    assert "FAIL" in proc.stdout and "silent-empty" in proc.stdout


def test_endpoint_kind_watches_the_given_pid(tmp_path):
    import subprocess
    import sys

    from brainbench.backend.server import free_port
    from brainbench.profiles.schema import profile_from_data

    port = free_port()
    srv = subprocess.Popen([sys.executable, "-m", "brainbench.testing.fakeproc", "--port", str(port), "--words", "8",
                            "--die-after", "4"], stdout=subprocess.DEVNULL)
    try:
        p = profile_from_data({"name": "ep", "server": {"kind": "endpoint", "base_url": f"http://127.0.0.1:{port}/v1",
                                                        "model": "fake", "pid": srv.pid, "ready_timeout_s": 20},
                               "warmup": {"requests": 0},
                               "legs": [{"type": "soak", "sessions": 4, "turns": 2, "max_tokens": 8}]}, "ep.yaml")
        ProfileRun(p, tmp_path / "run").run()
        srv.wait(timeout=10)
        with RunStore(tmp_path / "run") as store:
            s = store.results("soak")[-1]["data"]
        assert s["crashes"]["process_death"] == 1 and s["dead"]  # an endpoint is never restarted by brainbench
        assert s["memory"]["samples"] >= 1
    finally:
        srv.kill()
        srv.wait()
