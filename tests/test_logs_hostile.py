"""Miners meet absurd numbers: a value hundreds of digits long is a counted corrupt line, never an OverflowError."""

import gzip
import json
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).parent / "data" / "logs"
BIG = "9" * 400


def mine(kind: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "brainbench", "logs", kind, str(path), "--json"],
                          capture_output=True, text=True, timeout=120)


def test_vllm_running_count_of_400_digits_is_a_corrupt_line(tmp_path):
    text = gzip.decompress((DATA / "vllm_v1.log.gz").read_bytes()).decode()
    assert "Running: 1 reqs" in text
    log = tmp_path / "big.log"
    log.write_text(text.replace("Running: 1 reqs", f"Running: {BIG} reqs", 1))
    proc = mine("vllm", log)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    clean = json.loads(mine("vllm", DATA / "vllm_v1.log.gz").stdout)["parse"]["corrupt_lines"]
    assert json.loads(proc.stdout)["parse"]["corrupt_lines"] == clean + 1


def test_llama_timing_of_400_digits_is_not_mined(tmp_path):
    text = (DATA / "llama_server.log").read_text()
    assert "task.n_tokens = 13" in text and "prompt eval time =      34.71 ms" in text
    log = tmp_path / "big.log"
    log.write_text(text.replace("prompt eval time =      34.71 ms", f"prompt eval time = {BIG}.5 ms", 1))
    proc = mine("llama", log)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    before = json.loads(mine("llama", DATA / "llama_server.log").stdout)["buckets"]
    after = json.loads(proc.stdout)["buckets"]
    assert sum(b["samples"] for b in after) == sum(b["samples"] for b in before) - 1
