"""Speed legs on the real wire (fake and timing servers): sweep contract, errors, agent turns, the CLI."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from brainbench.client import ChatClient, Endpoint
from brainbench.perf.energy import EnergyMeter, SimulatedDevice, SimulatedSource
from brainbench.perf.legs import Driver, SpeedOptions, agent_leg, decode_leg, prefill_leg, sweep_leg
from brainbench.perf.timing_server import Schedule, TimingServer
from brainbench.perf.stream import RawStreamClient
from brainbench.perf.wire import timed_http
from brainbench.store import RunStore
from brainbench.testing import Reply, ScriptedBrain

SWEEP_KEYS = {"concurrency", "requests", "errors", "ttft_ms_median", "ttft_ms_p99", "itl_ms_median", "itl_ms_p99",
              "gen_tps_aggregate", "gen_tps_per_request", "completions_per_min"}
EIGHT = "one two three four five six seven eight"


def driver(url, model="fake-model", client="raw"):
    ep = Endpoint(url, model)
    timed = RawStreamClient(url, model, timeout=30.0) if client == "raw" else \
        ChatClient(ep, retries=0, http=timed_http(None, 30.0))
    setup = ChatClient(ep, retries=2, backoff=0.01)
    return Driver(timed, setup), timed, setup


class RejectsMinTokens:
    """llama.cpp-like: accepts ignore_eos, refuses min_tokens; every 5th timed request fails with a 500."""

    def __init__(self):
        self.n = 0
        self.requests = []

    def __call__(self, body):
        self.requests.append(body)
        if "min_tokens" in body:
            return Reply.http_error(400, "unknown field min_tokens")
        self.n += 1
        if self.n > 4 and self.n % 5 == 0:
            return Reply.http_error(500, "boom")
        return Reply.text(EIGHT, chunk_gap=0.001)


@pytest.mark.parametrize("client", ["raw", "httpx"])
async def test_probe_falls_back_and_sweep_counts_errors_without_retrying(fake, client):
    brain = RejectsMinTokens()
    srv = fake(brain)
    d, timed, setup = driver(srv.base_url, client=client)
    async with timed, setup:
        probe = await d.probe()
        assert probe["fixed_length_fields"] == ["ignore_eos"] and probe["calibration"]["measured"]
        meter = EnergyMeter(SimulatedSource([SimulatedDevice(0, 100.0), SimulatedDevice(1, 200.0)]))
        opt = SpeedOptions(concurrency=[1, 4], requests_per_level=10, gen_tokens=8, prompt_tokens=64)
        report, samples = await sweep_leg(d, opt, meter)
    levels = report["levels"]
    assert [lv["concurrency"] for lv in levels] == [1, 4]
    for lv in levels:
        assert SWEEP_KEYS <= set(lv)
        assert lv["requests"] == 10 and lv["errors"] == 2 and lv["error_rate"] == 0.2
        assert "HTTP 500" in lv["first_errors"][0]
        assert lv["gen_tps_aggregate"] > 0 and lv["completions_per_min"] > 0
        assert lv["energy"]["measured"] and len(lv["energy"]["devices"]) == 2
        assert lv["energy"]["joules_per_token"] > 0
    timed_bodies = [b for b in brain.requests if b.get("max_tokens") == 8 and "min_tokens" not in b]
    assert all(b["ignore_eos"] is True for b in timed_bodies)
    assert len({b["messages"][0]["content"] for b in timed_bodies}) == len(timed_bodies)  # cache-busted


async def test_decode_gate_prefill_and_llama_timings_cross_check():
    srv = await TimingServer(Schedule(ttft_s=0.02, itl_s=0.004, tokens=8, llama_timings=True)).start()
    try:
        d, timed, setup = driver(srv.base_url, "timing-model")
        async with timed, setup:
            await d.probe()
            opt = SpeedOptions(gen_tokens=8, decode_runs=3, max_runs=4, cv_max=0.5, prefill_lengths=[64, 256],
                               prefill_runs=2)
            dec, _ = await decode_leg(d, opt)
            pre, _ = await prefill_leg(d, opt)
    finally:
        await srv.close()
    assert dec["gate"]["runs_total"] in (3, 4) and 120 < dec["decode_tps"]["median"] < 450  # ≈ 8 / (7 × 4 ms), loose: shared CPU
    assert dec["fixed_length"] and dec["completion_tokens"]["median"] == 8
    xc = dec["cross_check"]
    assert xc["server"] == "llama-server" and xc["token_count_mismatches"] == 0 and abs(xc["gap_median"]) < 0.25
    assert dec["energy"] == {"measured": False, "reason": "energy metering is off", "joules_per_token": None,
                             "tokens_per_s_per_kw": None, "joules_per_request": None}
    assert [r["target_tokens"] for r in pre["lengths"]] == [64, 256]
    assert pre["lengths"][1]["prompt_tokens"] > pre["lengths"][0]["prompt_tokens"]
    assert pre["lengths"][0]["cold"]["cross_check"]["server"] == "llama-server"


async def test_agent_turns_grow_and_tool_deltas_are_timed(fake):
    def script(messages):
        if len(messages) == 2:
            return Reply.call("read_file", {"path": "notes.txt"}, chunk_gap=0.001)
        return Reply.text("The notes describe a plan.", chunk_gap=0.001)

    from brainbench.testing import ByConversation

    srv = fake(ByConversation(script))
    d, timed, setup = driver(srv.base_url)
    async with timed, setup:
        await d.probe()
        opt = SpeedOptions(agent_turns=3, agent_concurrency=[1, 2], agent_system_tokens=64, agent_tool_tokens=32)
        report, samples = await agent_leg(d, opt, EnergyMeter(None))
    assert [(lv["mode"], lv["concurrency"]) for lv in report["levels"]] == [("warm", 1), ("warm", 2), ("cold", 1), ("cold", 2)]
    lv = report["levels"][1]
    assert lv["turns_completed"] == 6 and lv["errors"] == 0 and lv["turns_with_tool_calls"] == 2
    assert lv["ttft_tool_ms_median"] is not None and lv["ttft_content_ms_median"] is not None
    prompts = [t["prompt_tokens_median"] for t in lv["per_turn"]]
    assert prompts[0] < prompts[1] < prompts[2]  # the context grows turn by turn
    assert lv["energy"]["measured"] is False and lv["energy"]["joules_per_turn"] is None
    tool_msgs = [m for m in srv.httpd.brain.requests[-1]["messages"] if m["role"] == "tool"]
    assert tool_msgs and tool_msgs[0]["tool_call_id"]


@pytest.mark.parametrize("client", ["raw", "httpx"])
async def test_timing_server_schedule_is_measured_and_role_chunk_ignored(client):
    srv = await TimingServer(Schedule(ttft_s=0.06, itl_s=0.006, tokens=12, role="immediate")).start()
    try:
        d, timed, setup = driver(srv.base_url, "timing-model", client=client)
        async with timed, setup:
            await d.probe()
            opt = SpeedOptions(concurrency=[1, 4], requests_per_level=4, gen_tokens=12)
            report, _ = await sweep_leg(d, opt, EnergyMeter(None))
        stats = srv.stats.to_dict()
    finally:
        await srv.close()
    for lv in report["levels"]:
        # loose bounds: this is a correctness test, the precision goals live in bench/measurement_truth.py
        assert 55 <= lv["ttft_ms_median"] <= 150, lv  # ~0 if the role-only chunk started the clock
        assert 4.0 <= lv["itl_ms_median"] <= 10.0, lv
        assert lv["completion_tokens_median"] == 12
    assert stats["completed"] >= 8 and stats["requests"][0]["tokens"] in (8, 1, 12)


def test_speed_cli_json_contract_and_store(fake, tmp_path):
    srv = fake(ScriptedBrain([Reply.text(EIGHT, chunk_gap=0.001)]))
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "brainbench", "speed", "--endpoint", srv.base_url, "--model", "fake-model",
         "--concurrency", "1,4", "--gen-tokens", "8", "--requests-per-level", "4", "--legs", "decode,sweep",
         "--runs", "2", "--warmup", "0", "--energy", "off", "--json", "--out", str(run_dir)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [lv["concurrency"] for lv in out["sweep"]] == [1, 4]
    assert all(SWEEP_KEYS <= set(lv) for lv in out["sweep"])
    assert out["energy"]["measured"] is False and "--energy off" in out["energy"]["reason"]
    assert out["roofline"]["computed"] is False
    with RunStore(run_dir) as store:
        names = [r["name"] for r in store.results("speed")]
        sweep = next(r for r in store.results("speed") if r["name"] == "sweep")
    assert names == ["summary", "decode", "sweep"]
    assert len(sweep["data"]["requests"]) == 8 and sweep["data"]["requests"][0]["label"] == "c=1"


def test_speed_cli_errors_are_clear(fake, tmp_path):
    from typer.testing import CliRunner

    from brainbench.cli import app
    from brainbench.core.errors import BrainbenchError

    srv = fake(ScriptedBrain([Reply.text("hi")]))
    for args, needle in [(["--endpoint", srv.base_url], "--model"),
                         (["--endpoint", srv.base_url, "--model", "nope"], "does not serve model"),
                         (["--endpoint", srv.base_url, "--model", "fake-model", "--concurrency", "1,x"], "--concurrency"),
                         (["--endpoint", srv.base_url, "--model", "fake-model", "--legs", "warp"], "--legs"),
                         *([(["--endpoint", srv.base_url, "--model", "fake-model", "--energy", "nvml",
                              "--legs", "sweep"], "--energy nvml")] if importlib.util.find_spec("pynvml") is None else [])]:
        result = CliRunner().invoke(app, ["speed", *args, "--out", str(tmp_path / "r")])
        assert isinstance(result.exception, BrainbenchError), (args, result.output, result.exception)
        assert needle in str(result.exception), str(result.exception)


def test_embedded_server_gets_one_shared_kv_pool_sized_for_the_legs():
    from brainbench.backend import BackendSpec
    from brainbench.perf.run import embedded_server_args

    opt = SpeedOptions(concurrency=[1, 64], prompt_tokens=128, gen_tokens=64, prefill_lengths=[128, 2048])
    assert opt.max_parallel() == 64
    args = embedded_server_args(BackendSpec(brain="brain-small"), opt).server_args
    assert args[-1] == "--kv-unified" and int(args[-2]) >= 64 * (128 + 64) and int(args[-2]) % 256 == 0
    mine = embedded_server_args(BackendSpec(brain="brain-small", server_args=["-c", "4096"]), opt).server_args
    assert mine == ["-c", "4096"]
    assert embedded_server_args(BackendSpec(endpoint="http://x/v1", model="m"), opt).server_args == []


async def test_ollama_native_api_sweep_with_eval_counts(fake):
    srv = fake(ScriptedBrain([Reply.text(EIGHT, chunk_gap=0.001)]))
    ep = Endpoint(srv.base_url, "fake-model", api="ollama")
    async with ChatClient(ep, retries=0, http=timed_http(None, 30.0)) as timed, ChatClient(ep, retries=1) as setup:
        d = Driver(timed, setup, api="ollama")
        probe = await d.probe()
        assert probe["fixed_length_fields"] == []  # Ollama cannot hold the length: actual lengths are reported
        report, samples = await sweep_leg(d, SpeedOptions(concurrency=[2], requests_per_level=4, gen_tokens=8),
                                          EnergyMeter(None))
    lv = report["levels"][0]
    assert lv["errors"] == 0 and lv["completion_tokens_median"] == 8
    assert lv["cross_check"]["server"] == "ollama"
    assert all(s.ttft_content_s is not None for s in samples)
