"""Fixture run directories for the report tests, made through the real runner, store and scorer.

Two brains answer the smoke pack on the fake server: a disciplined one and a sloppy one (a hallucinated
tool name that shows as an error, an answer given without the lookups it needed: a silent failure).
Speed legs, host and server meta are added the way the speed helper and `brainbench run` store them.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from pathlib import Path

from brainbench.packs import BUILTIN_DIR, load_pack
from brainbench.runner.run import RunPlan, execute, prepare
from brainbench.store import RunStore
from brainbench.testing import ByConversation, FakeServer, Reply
from brainbench.client import ChatClient, Endpoint
from test_runner_store import perfect_smoke

HOST = {"cpu": "Test CPU 9000", "cores": 8, "ram_bytes": 32 * 2**30, "gpus": [{"name": "Fake GPU 24G", "memory_bytes": 24 * 2**30}],
        "os": "Linux 6.1", "arch": "x86_64", "python": "3.11.7", "brainbench": "0.1.0", "llama_cpp": "0.3.36"}


good_brain = perfect_smoke  # the scripted brain that does every smoke scenario right


class SloppyBrain:
    """Right on chat; calls a tool that does not exist first; guesses the orders count without looking."""

    def __init__(self):
        self.n = itertools.count()
        self.lock = threading.Lock()

    def __call__(self, messages):
        user = next(m["content"] for m in messages if m["role"] == "user")
        tools_done = [m for m in messages if m["role"] == "tool"]
        with self.lock:
            i = next(self.n)
        if "capital of France" in user:
            return Reply.text("Paris")
        if "17 + 25" in user:
            return Reply.text("41" if i % 3 == 0 else "42")
        if "temperature in Paris" in user:
            if not tools_done:
                return Reply.call("get_wether", {"city": "Paris"})
            return Reply.text("It is warm in Paris <b>now</b>.")
        if "Ada Lovelace" in user:
            return Reply.text("Ada Lovelace has 2 orders.")
        raise AssertionError(user)


def sweep(scale: float, watts: float | None = None):
    rows = []
    for c in (1, 2, 4, 8):
        agg = scale * c / (1 + 0.15 * (c - 1))
        row = {"concurrency": c, "requests": 8 * c, "errors": 0, "ttft_ms_median": 80.0 * c, "ttft_ms_p99": 150.0 * c,
               "itl_ms_median": 1000 / (agg / c), "itl_ms_p99": 1500 / (agg / c), "gen_tps_aggregate": agg,
               "gen_tps_per_request": agg / c, "completions_per_min": agg * 60 / 200}
        if watts:  # the energy block `brainbench speed` stores per level
            row["energy"] = {"measured": True, "avg_watts": watts + 10 * c, "joules_per_token": (watts + 10 * c) / agg}
        rows.append(row)
    return rows


async def _run(srv: FakeServer, run_dir: Path, model: str, trials: int) -> None:
    plan = RunPlan(packs=[load_pack(BUILTIN_DIR / "smoke")], model=model, config={"backend": {"brain": model}}, trials=trials,
                   concurrency=2)
    with RunStore(run_dir, create=True) as store:
        store.set_meta("run", {"packs": ["smoke"], "suites": [], "backend": {"brain": model}, "trials": trials,
                               "concurrency": 2, "retries": 1, "timeout": 30.0, "pack_dirs": []})
        store.set_meta("server", {"brain": model, "server": "llama-server", "args": ["-c", "8192", "--parallel", "2"]})
        store.set_meta("host", HOST)
        todo = prepare(plan, store)
        async with ChatClient(Endpoint(srv.base_url, model), backoff=0.01) as client:
            await execute(plan, client, store, todo)


def make_run(run_dir: Path, model: str, brain, *, trials: int = 3, speed_scale: float | None = None,
             watts: float | None = None, chunk_gap: float = 0.0) -> Path:
    def script(messages):
        reply = brain(messages)
        reply.chunk_gap = chunk_gap
        return reply

    with FakeServer(ByConversation(script), models=[model]) as srv:
        asyncio.run(_run(srv, run_dir, model, trials))
    if speed_scale and watts:  # the shape `brainbench speed --out RUN_DIR` stores: one result per leg
        with RunStore(run_dir) as store:
            store.put_result("speed", "summary", model, {"model": model, "energy": {"measured": False, "reason": "x"}})
            store.put_result("speed", "decode", model, {"decode_tps": {"count": 5, "mean": speed_scale, "median": speed_scale,
                                                                       "cv": 0.02},
                                                        "energy": {"measured": True, "avg_watts": watts + 10,
                                                                   "joules_per_token": (watts + 10) / speed_scale}})
            store.put_result("speed", "sweep", model, {"levels": sweep(speed_scale, watts), "knee": None})
    elif speed_scale:  # the matrix runner's shape: decode_tps and the sweep levels in one result
        with RunStore(run_dir) as store:
            store.put_result("speed", "sweep", model, {"decode_tps": {"count": 5, "mean": speed_scale, "median": speed_scale,
                                                                      "cv": 0.02}, "sweep": sweep(speed_scale)})
    return run_dir
