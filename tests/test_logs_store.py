"""Mined log tables land in the same store as runs and speed legs (`--out RUN_DIR`)."""

import json
from pathlib import Path

from brainbench.store import RunStore
from test_cli import bb

DATA = Path(__file__).parent / "data" / "logs"


def test_logs_results_are_stored_next_to_runs(tmp_path):
    run_dir = tmp_path / "run"
    proc = bb("logs", "llama", str(DATA / "llama_server.log"), "--json", "-o", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    with RunStore(run_dir) as store:
        (res,) = store.results("logs.llama")
    assert res["data"] == printed and res["name"].endswith("llama_server.log")
    exported = json.loads(bb("export", str(run_dir)).stdout)
    assert exported["results"][0]["kind"] == "logs.llama"
