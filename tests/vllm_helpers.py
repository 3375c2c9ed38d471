"""Shared by the real-vLLM tests (marker `vllm`): whether the embedded vLLM is set up, one server per module,
its /metrics counters, and waiting for its stats log.

A test module starts one server (about 3 minutes on a 2-core CPU) and every test in it shares it. Without
the setup the tests skip, naming the command that sets it up, unless BRAINBENCH_REQUIRE_VLLM is set
(`make test`, so CI): then a missing setup is a failure, never a silent skip.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import httpx
import pytest

from brainbench.logs import prom

BRAIN = "brain-small"


def require_vllm() -> None:
    from brainbench.backend.vllm import converted, installed

    if installed() and converted(BRAIN, verify=False):
        return
    why = "the embedded vLLM is not set up: run `brainbench setup --engine vllm` (once: minutes of downloads and a conversion)"
    if os.environ.get("BRAINBENCH_REQUIRE_VLLM"):
        pytest.fail(f"{why}; BRAINBENCH_REQUIRE_VLLM is set, so this fails instead of skipping")
    pytest.skip(f"{why}; or leave these out with -m 'not vllm'")


def counters(srv) -> dict[str, float]:
    """The server's /metrics counters we compare against, summed over their labels."""
    text = httpx.get(srv.metrics_url(), timeout=10).text
    out: dict[str, float] = {}
    for name, _labels, value in prom.parse(text):
        if name in ("vllm:request_success_total", "vllm:prompt_tokens_total", "vllm:generation_tokens_total"):
            out[name] = out.get(name, 0.0) + value
    return out


STATS = re.compile(r"Avg prompt throughput: ([\d.]+) tokens/s, Avg generation throughput: ([\d.]+) tokens/s, "
                   r"Running: (\d+) reqs")


def stats_lines(log: Path) -> list[tuple[float, float, int]]:
    return [(float(a), float(b), int(c)) for a, b, c in STATS.findall(log.read_text(errors="replace"))]


def wait_idle_stats(log: Path, after: int, timeout: float = 60.0) -> list[tuple[float, float, int]]:
    """Stats lines once one after the `after` first says nothing runs and nothing more was generated: every
    token of the work before is then in the log (vLLM logs its throughput every 10 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = stats_lines(log)
        if any(run == 0 and gen == 0.0 for _, gen, run in lines[after:]):
            return lines
        time.sleep(1.0)
    raise AssertionError(f"no idle stats line in {log} after {timeout:.0f}s: {stats_lines(log)[after:]}")
