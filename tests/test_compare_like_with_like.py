"""`brainbench compare` compares like with like: the packs both runs ran (ALL over those), speed at the
concurrency levels both measured, never a verdict across different concurrency. Runs are real (runner, store,
scorer on the fake server)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from brainbench.cli import app
from brainbench.client import ChatClient, Endpoint
from brainbench.packs import limit, select
from brainbench.report.data import ReportError, build_report
from brainbench.runner.run import RunPlan, execute, prepare
from brainbench.store import RunStore
from brainbench.testing import ByConversation, FakeServer, Reply
from test_runner_store import perfect_smoke

MODEL = "brain-small"


def brain(messages):
    user = next(m["content"] for m in messages if m["role"] == "user")
    smoke = any(k in user for k in ("capital of France", "17 + 25", "temperature in Paris", "Ada Lovelace"))
    reply = perfect_smoke(messages) if smoke else Reply.text("The answer is 42.")
    reply.chunk_gap = 0.01  # streamed slowly enough for the run's own decode figure
    return reply


def run_packs(run_dir: Path, packs: list[str], *, trials: int = 2, only: int | None = None) -> Path:
    """A real run of `packs` (2 scenarios each); `only` stores just the first N attempts (an interrupted run)."""
    async def go(srv: FakeServer) -> None:
        plan = RunPlan(packs=limit(select(packs), 2), model=MODEL, config={"backend": {"brain": MODEL}},
                       trials=trials, concurrency=2)
        with RunStore(run_dir, create=True) as store:
            store.set_meta("run", {"packs": packs, "suites": [], "backend": {"brain": MODEL}, "trials": trials,
                                   "concurrency": 2, "retries": 1, "timeout": 30.0, "pack_dirs": [],
                                   "limit_per_pack": 2})
            todo = prepare(plan, store)
            async with ChatClient(Endpoint(srv.base_url, MODEL), backoff=0.01) as client:
                await execute(plan, client, store, todo[:only])

    with FakeServer(ByConversation(brain), models=[MODEL]) as srv:
        asyncio.run(go(srv))
    return run_dir


def put_sweep(run_dir: Path, levels: list[int], tps: float) -> None:
    rows = [{"concurrency": c, "requests": 8, "errors": 0, "gen_tps_aggregate": tps * c, "gen_tps_per_request": tps,
             "completions_per_min": tps * c / 10} for c in levels]
    with RunStore(run_dir) as store:
        store.put_result("speed", "sweep", MODEL, {"sweep": rows})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("like")
    base = run_packs(root / "base", ["smoke"])
    put_sweep(base, [1, 2, 4, 8], 30.0)
    cur = run_packs(root / "cur", ["smoke", "math"])
    put_sweep(cur, [4, 8, 16], 10.0)
    other = run_packs(root / "other", ["math"])
    return {"base": base, "cur": cur, "other": other}


def test_only_the_common_packs_are_compared(runs):
    full = build_report([runs["cur"]], runs["base"])
    assert set(full.entries[0].summary["packs"]) == {"smoke", "math"}  # the report keeps everything
    rep = build_report([runs["cur"]], runs["base"], common_packs=True)
    e = rep.entries[0]
    assert set(e.summary["packs"]) == {"smoke"}
    assert e.summary["overall"]["attempts"] == e.summary["packs"]["smoke"]["attempts"] == 4  # ALL over smoke only
    assert set(e.delta["packs"]) == {"smoke", "ALL"}
    assert rep.left_out == ["packs left out: math (only this run); every row, ALL included, is over smoke"]
    same = build_report([runs["base"]], runs["base"], common_packs=True)
    assert same.left_out == []
    with pytest.raises(ReportError, match="no pack in common"):
        build_report([runs["other"]], runs["base"], common_packs=True)


def test_speed_only_at_common_concurrency_never_worse_across_levels(runs):
    rep = build_report([runs["cur"]], runs["base"], common_packs=True)
    lv = rep.entries[0].delta["levels"]
    assert [x["concurrency"] for x in lv["common"]] == [4, 8]
    assert lv["only_base"] == [1, 2] and lv["only_cur"] == [16]
    assert lv["common"][0]["rel"] == pytest.approx(10 / 30 - 1)
    # decode: the baseline's is single-stream (its sweep at 1), this run's from its own requests at 2 at once
    d = rep.entries[0].delta["decode"]
    assert d["concurrency"] == [2, 1] and d["verdict"] == "not judged: different concurrency"


def test_decode_is_judged_at_the_same_concurrency():
    from brainbench.report.data import _decode_delta
    from brainbench.report.model import Entry

    def entry(value, at):
        return Entry(model="m", label="m", run_dir="r", run_name="r", summary={},
                     decode={"value": value, "ci95": [value - 1, value + 1], "concurrency": at})

    assert _decode_delta(entry(10, 1), entry(30, 1))["verdict"] == "worse"
    assert _decode_delta(entry(10, 4), entry(30, 1))["verdict"] == "not judged: different concurrency"


def test_compare_says_what_it_left_out(runs):
    r = CliRunner().invoke(app, ["compare", str(runs["base"]), str(runs["cur"])], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert any(ln.startswith("packs left out: math (only this run)") for ln in lines), r.output
    assert "aggregate tok/s at concurrency 4" in r.output and "aggregate tok/s at concurrency 16" not in r.output
    assert "concurrency levels left out: 1, 2 (only the baseline); 16 (only this run)" in r.output
    assert "decode tok/s (concurrency 1 vs 2)" in r.output and "at concurrency 16" in r.output
    assert not re.search(r"(?<!/)worse", r.output)  # slower per request at other concurrency is not a loss
