"""Matrix runs against real fake-server processes: healthy, never healthy, exits at start, dies mid-leg."""

import json

import pytest

from brainbench.matrix.run import read_manifest, run_matrix, stored_profiles, summary_markdown
from brainbench.store import RunStore
from matrix_fixtures import fake_profile, write_pack
from test_cli import bb


def _starts(log_path):
    return sum(1 for ln in log_path.read_text().splitlines() if ln.startswith("$ "))


def test_matrix_goes_on_past_servers_that_fail(tmp_path):
    good = fake_profile(tmp_path, "good")
    never = fake_profile(tmp_path, "never", ("--never-healthy",), server={"ready_timeout_s": 1.5})
    dead = fake_profile(tmp_path, "dead", ("--exit-at-start", "7"))
    lines = []
    man = run_matrix([never, dead, good], tmp_path / "m", lines.append)
    st = {e["name"]: e for e in man["profiles"]}
    assert st["never"]["status"] == "failed" and "not healthy after 2s" in st["never"]["reason"]
    assert "HTTP 503" in st["never"]["reason"]
    assert st["dead"]["status"] == "failed" and "exit code 7" in st["dead"]["reason"]
    assert "failed to load model" in st["dead"]["reason"]  # the server's own last log line
    assert all(leg["status"] == "not_run" for leg in st["dead"]["legs"].values())
    assert st["good"]["status"] == "done"
    speed = st["good"]["legs"]["speed"]["result"]
    assert speed["decode_tps_median"] > 0
    assert st["good"]["legs"]["agentic"]["result"]["pass"]["k"] == 4
    # everything lives under the one matrix directory; each profile dir is an ordinary run directory
    assert (tmp_path / "m" / "matrix.json").exists() and (tmp_path / "m" / "matrix.md").exists()
    with RunStore(tmp_path / "m" / "good") as store:
        assert store.count() == {"completed": 4}
        assert [r["name"] for r in store.results("speed")] == ["speed"]
        assert store.get_meta("server")["kind"] == "command"
    with RunStore(tmp_path / "m" / "never") as store:
        assert any(e["kind"] == "server_failed" for e in store.infra_events())
    md = summary_markdown(read_manifest(tmp_path / "m"))
    assert "| good | done |" in md and "| never | failed" in md


def test_matrix_resumes_without_rerunning_done_legs(tmp_path):
    good = fake_profile(tmp_path, "good")
    run_matrix([good], tmp_path / "m")
    log = tmp_path / "m" / "good" / "server.log"
    assert _starts(log) == 1
    again = run_matrix(stored_profiles(tmp_path / "m"), tmp_path / "m")
    assert again["profiles"][0]["status"] == "done"
    assert _starts(log) == 1  # nothing left to run: the server was not even started
    assert again["runs"] == 2
    # a changed leg setting is a different leg: only it runs again
    changed = fake_profile(tmp_path, "good", legs=[{"type": "speed", "requests": 3, "max_tokens": 8, "warmup": 0},
                                                   {"type": "agentic", "packs": ["mini"], "pack_dirs": [str(write_pack(tmp_path))]}])
    run_matrix([changed], tmp_path / "m")
    assert _starts(log) == 2
    with RunStore(tmp_path / "m" / "good") as store:
        assert store.count() == {"completed": 4}  # the agentic attempts were reused, not re-run
        assert len(store.results("speed")) == 2


def test_server_dying_mid_leg_keeps_what_was_stored(tmp_path):
    # warm-up uses request 1; the agentic leg gets two answers, then the server exits on request 4
    legs = [{"type": "agentic", "packs": ["mini"], "pack_dirs": [str(write_pack(tmp_path))]},
            {"type": "speed", "requests": 2, "max_tokens": 8}]
    dies = fake_profile(tmp_path, "dies", ("--die-after", "3"), legs=legs)
    good = fake_profile(tmp_path, "good")
    man = run_matrix([dies, good], tmp_path / "m")
    st = {e["name"]: e for e in man["profiles"]}
    assert st["dies"]["status"] == "partial"
    assert st["dies"]["legs"]["agentic"]["status"] == "crashed"
    assert "exit code 3" in st["dies"]["legs"]["agentic"]["reason"]
    assert st["dies"]["legs"]["speed"]["status"] == "skipped"
    assert st["good"]["status"] == "done"  # the matrix went on
    with RunStore(tmp_path / "m" / "dies") as store:
        assert store.count().get("completed") == 2
        assert any(e["kind"] == "server_died" for e in store.infra_events())


def test_restart_policy_gives_later_legs_a_new_server(tmp_path):
    legs = [{"type": "agentic", "packs": ["mini"], "pack_dirs": [str(write_pack(tmp_path))]},
            {"type": "agentic", "name": "again", "packs": ["mini"], "pack_dirs": [str(write_pack(tmp_path))],
             "limit_per_pack": 1}]
    p = fake_profile(tmp_path, "dies", ("--die-after", "3"), legs=legs, restart="on_crash", max_restarts=1)
    man = run_matrix([p], tmp_path / "m")
    e = man["profiles"][0]
    assert e["legs"]["agentic"]["status"] == "crashed"
    assert e["legs"]["again"]["status"] == "done" and e["restarts"] == 1
    assert _starts(tmp_path / "m" / "dies" / "server.log") == 2


def test_matrix_cli_check_and_run(tmp_path):
    p = fake_profile(tmp_path, "good")
    proc = bb("matrix", p.source, "--check")
    assert proc.returncode == 0, proc.stderr
    assert "brainbench.testing.fakeproc --port 8080" in proc.stdout
    proc = bb("matrix", p.source, "-o", str(tmp_path / "m"), "--json")
    assert proc.returncode == 0, proc.stderr
    man = json.loads(proc.stdout)
    assert man["profiles"][0]["legs"]["speed"]["status"] == "done"
    assert (tmp_path / "m" / "report.html").exists()


def test_sigterm_stops_the_server_and_the_matrix_resumes(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    slow = fake_profile(tmp_path, "slow", ("--chunk-gap", "0.2"))
    mdir = tmp_path / "m"
    proc = subprocess.Popen([sys.executable, "-m", "brainbench", "matrix", slow.source, "-o", str(mdir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = mdir / "slow" / "server.log"
    deadline = time.time() + 60
    while time.time() < deadline and "fakeproc: listening" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.1)
    pid = int(log.read_text().split("fakeproc: pid ")[1].split()[0])
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the server went with it
    fast = fake_profile(tmp_path, "slow")  # same name, a faster server: the matrix finishes in the same directory
    man = run_matrix([fast], mdir)
    assert man["profiles"][0]["status"] == "done"
