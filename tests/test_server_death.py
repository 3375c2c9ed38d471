"""The embedded server dying mid-run stops the run at once with one line and a non-zero exit; what finished stays."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from brainbench.backend.fetch import get_model_spec
from brainbench.store.db import DB_NAME

FAKE_LLAMA = """#!{python}
# A stand-in llama-server: the fake model server as a process, which exits when request {n}+1 arrives.
import os, sys
args = sys.argv[1:]
port = args[args.index("--port") + 1]
os.execv(sys.executable, [sys.executable, "-m", "brainbench.testing.fakeproc", "--port", port, "--die-after", "{n}"])
"""


def _embedded_stand_in(tmp_path, die_after: int) -> dict[str, str]:
    """A cache holding a stamped stand-in model and a bin dir whose llama-server is the dying fake."""
    spec = get_model_spec("brain-small")
    cache, bins = tmp_path / "cache", tmp_path / "bin"
    model = cache / "models" / spec.path().name
    model.parent.mkdir(parents=True)
    model.write_bytes(b"GGUF stand-in")
    model.with_suffix(".sha256").write_text(spec.sha256)
    bins.mkdir()
    for name in ("llama-server", "llama-bench"):
        (bins / name).write_text(FAKE_LLAMA.format(python=sys.executable, n=die_after))
        (bins / name).chmod(0o755)
    return {"BRAINBENCH_CACHE": str(cache), "BRAINBENCH_LLAMA_BIN_DIR": str(bins)}


def _run_embedded(tmp_path, die_after: int, *args: str) -> tuple[subprocess.CompletedProcess, Path]:
    """`brainbench run --brain brain-small ARGS` against the stand-in; returns the process and the run dir."""
    env = _embedded_stand_in(tmp_path, die_after)
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "brainbench", "run", "--brain", "brain-small", *args, "-o", str(run)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "300", **env})
    return proc, run


def test_the_embedded_server_dying_mid_run_is_one_line_and_keeps_what_finished(tmp_path):
    proc, run = _run_embedded(tmp_path, 5, "-k", "3")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    last = [ln for ln in proc.stderr.splitlines() if ln.strip()][-1]
    assert last.startswith("error: the server died mid-run") and f"--resume {run}" in last, last
    with sqlite3.connect(run / DB_NAME) as con:
        stored = con.execute("SELECT COUNT(*) FROM attempts WHERE status='completed'").fetchone()[0]
        infra = con.execute("SELECT COUNT(*) FROM attempts WHERE status='infra_error'").fetchone()[0]
    assert 1 <= stored < 12 and infra <= 1, (stored, infra)
    assert f"{stored} finished attempts are stored" in last


def test_a_server_arg_that_binds_beyond_loopback_needs_allow_remote(tmp_path):
    proc, run = _run_embedded(tmp_path, 1000, "--server-arg", "--host 0.0.0.0")
    assert proc.returncode == 2 and "add --allow-remote" in proc.stderr and not run.exists(), proc.stderr


def test_a_huge_concurrency_gets_a_capped_number_of_server_slots(tmp_path):
    proc, run = _run_embedded(tmp_path, 1000, "-c", "1024")
    assert proc.returncode == 0, proc.stderr
    started = next(ln for ln in (run / "server.log").read_text().splitlines() if ln.startswith("$ "))
    assert "--parallel 64" in started and "-c 524288" in started, started
