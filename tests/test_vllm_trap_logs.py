"""Against the real embedded vLLM started WITHOUT auto tool choice (the field's most common vLLM mistake), once
for the module: brainbench's one-line hint on the real error text, `logs vllm` on the server's own log
agreeing with its /metrics counters, and `watch` on its real /metrics. Marker `vllm` (see vllm_helpers)."""

import asyncio
import json

import pytest

from brainbench.backend import embedded_vllm
from brainbench.client import ChatClient, Endpoint
from brainbench.core.errors import EndpointError
from test_cli import bb
from vllm_helpers import BRAIN, counters, require_vllm, stats_lines, wait_idle_stats

pytestmark = pytest.mark.vllm

TOOL = {"type": "function", "function": {"name": "get_time", "description": "The current time.",
                                         "parameters": {"type": "object", "properties": {}}}}


@pytest.fixture(scope="module")
def trap(tmp_path_factory):
    require_vllm()
    log = tmp_path_factory.mktemp("vllm-trap") / "server.log"
    with embedded_vllm(BRAIN, log, tool_call_parser=None) as srv:
        yield srv


async def _load(srv, n: int, concurrency: int, max_tokens: int = 24) -> None:
    sem = asyncio.Semaphore(concurrency)
    async with ChatClient(srv.endpoint, timeout=300) as client:
        async def one(i: int) -> None:
            async with sem:
                await client.chat([{"role": "user", "content": f"Count from {i} to {i + 20}."}],
                                  max_tokens=max_tokens, temperature=0)
        await asyncio.gather(*(one(i) for i in range(n)))


async def test_tools_trap_hint_on_the_real_error(trap):
    """No --enable-auto-tool-choice: vLLM refuses `tools` with tool_choice auto; the one line says the real
    error and what to add, and it is an endpoint error (the server's configuration), not a model failure."""
    assert "--enable-auto-tool-choice" not in " ".join(trap.command())
    async with ChatClient(Endpoint(trap.base_url, BRAIN), timeout=120) as client:
        with pytest.raises(EndpointError) as e:
            await client.chat([{"role": "user", "content": "What time is it?"}], tools=[TOOL], tool_choice="auto",
                              max_tokens=16)
    msg = str(e.value)
    assert "\n" not in msg and "HTTP 400" in msg
    assert "--enable-auto-tool-choice" in msg.split("(vLLM needs")[0], msg  # vLLM's own words name the flag ...
    assert msg.endswith("(vLLM needs `--enable-auto-tool-choice --tool-call-parser <parser>` to accept `tools`)")
    assert [ev.kind for ev in e.value.events] == ["http_4xx"]


def test_logs_vllm_agrees_with_metrics(trap, tmp_path):
    """The miner on vLLM's own log against vLLM's own counters: completions exactly; prompt and generation
    tokens within what the log's 10 s throughput lines (one decimal of tok/s) can resolve."""
    before = counters(trap)
    seen = len(stats_lines(trap.log_path))
    asyncio.run(_load(trap, n=6, concurrency=3))
    lines = wait_idle_stats(trap.log_path, seen)
    after = counters(trap)
    out = bb("logs", "vllm", str(trap.log_path), "--json", timeout=120)
    assert out.returncode == 0, out.stderr
    rep = json.loads(out.stdout)
    total_done = after["vllm:request_success_total"]
    assert rep["parse"]["completions"] == total_done, (rep["parse"], after)  # every completion, the warm-up too
    assert after["vllm:request_success_total"] - before.get("vllm:request_success_total", 0) == 6
    dt = rep["parse"]["interval_s"]
    assert 9.0 <= dt <= 11.0
    gen = sum(b["gen_tps_mean"] * b["samples"] for b in rep["buckets"]) * dt
    prompt = sum((b["prefill_tps_sustained"] or 0) * b["samples"] for b in rep["buckets"]) * dt
    n = len(lines)
    slack = 0.5 * n + 0.06  # per line: tok/s printed to one decimal x 10 s, and the interval's jitter
    for mined, name in ((gen, "vllm:generation_tokens_total"), (prompt, "vllm:prompt_tokens_total")):
        true = after[name]
        assert abs(mined - true) <= slack + 0.06 * true, (name, mined, true, n)


def test_watch_on_real_metrics(trap, tmp_path):
    """`brainbench watch` records the real /metrics while requests run, is stopped with Ctrl-C once they are
    done (as a user stops it), and finds the generated tokens and the completed requests."""
    import signal
    import subprocess
    import sys
    import time

    run_dir = tmp_path / "watch"
    watch = subprocess.Popen([sys.executable, "-m", "brainbench", "watch", "--metrics-url", trap.metrics_url(),
                              "--run-dir", str(run_dir), "--interval", "1", "--duration", "600", "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(5)  # recording before the load starts
    asyncio.run(_load(trap, n=4, concurrency=2, max_tokens=16))
    time.sleep(3)  # a scrape after the last completion
    watch.send_signal(signal.SIGINT)
    stdout, stderr = watch.communicate(timeout=120)
    assert watch.returncode == 0, stderr
    rep = json.loads(stdout)
    assert rep["source"] == "metrics" and rep["parse"]["failed_scrapes"] == 0 and rep["parse"]["scrapes"] >= 8
    busy = [b for b in rep["buckets"] if b["running"] >= 1]
    assert busy and any((b["gen_tps_mean"] or 0) > 0 for b in busy), rep["buckets"]
    assert sum(b["completions_per_min"] or 0 for b in rep["buckets"]) > 0
