"""Helpers for the agentic pack tests: a scripted brain that replays each scenario's `meta.solution`,
and a one-call runner over the fake server (real HTTP, real runner, real store)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable

from brainbench.packs import BUILTIN_DIR, Pack, Scenario, load_pack
from brainbench.runner.run import RunPlan, execute, prepare
from brainbench.scoring import attempt_rows
from brainbench.store import RunStore
from brainbench.testing import ByConversation, Reply
from conftest import client_for

AGENTIC = ["kanban", "shell", "home", "refusal"]


def step_reply(step: dict[str, Any]) -> Reply:
    if "call" in step:
        return Reply.call(step["call"], step.get("args", {}))
    if "calls" in step:
        return Reply.calls(*[(n, a) for n, a in step["calls"]])
    return Reply.text(step["text"])


def first_user(messages: list[dict[str, Any]]) -> str:
    return next(m["content"] for m in messages if m["role"] == "user")


def assistant_turns(messages: list[dict[str, Any]]) -> int:
    return sum(1 for m in messages if m["role"] == "assistant")


def solution_script(scenarios: list[Scenario]) -> Callable[[list[dict[str, Any]]], Reply]:
    """A brain that replays `meta.solution` of the scenario whose opening user message it receives."""
    by_opening = {s.messages[-1]["content"]: s for s in scenarios}
    assert len(by_opening) == len(scenarios), "scenario openings must be unique to script them"

    def script(messages: list[dict[str, Any]]) -> Reply:
        sc = by_opening[first_user(messages)]
        steps = sc.meta["solution"]
        i = assistant_turns(messages)
        return step_reply(steps[min(i, len(steps) - 1)])

    return script


def by_script(scenario_scripts: dict[str, list[Reply] | Callable[[list[dict[str, Any]]], Reply]],
              scenarios: list[Scenario]) -> ByConversation:
    """Per-scenario scripts keyed by scenario id: a list of replies (by assistant turn) or a function."""
    by_opening = {s.messages[-1]["content"]: s.id for s in scenarios}

    def script(messages: list[dict[str, Any]]) -> Reply:
        sid = by_opening[first_user(messages)]
        s = scenario_scripts[sid]
        if callable(s):
            return s(messages)
        return s[min(assistant_turns(messages), len(s) - 1)]

    return ByConversation(script)


@functools.cache
def pack(name: str) -> Pack:
    """One built-in pack, loaded once per test session (discovering every pack each time is slow)."""
    return load_pack(BUILTIN_DIR / name)


def scenario(pack_name: str, sid: str) -> Scenario:
    return next(s for s in pack(pack_name).scenarios if s.id == sid)


def only(pack_name: str, *ids: str) -> Pack:
    p = pack(pack_name)
    return p.model_copy(update={"scenarios": [s for s in p.scenarios if s.id in ids]})


async def run_packs(srv, tmp_path: Path, packs: list[Pack], trials: int = 1, concurrency: int = 4,
                    retries: int = 1, client_retries: int = 3) -> tuple[RunStore, list[dict[str, Any]]]:
    """Run packs through the real runner and store; `retries` = re-dispatches, `client_retries` = HTTP retries."""
    store = RunStore(tmp_path / "run", create=True)
    plan = RunPlan(packs=packs, model="fake-model", config={"t": 1}, trials=trials, concurrency=concurrency,
                   retries=retries)
    todo = prepare(plan, store)
    async with client_for(srv, retries=client_retries) as c:
        await execute(plan, c, store, todo)
    return store, attempt_rows(store)


async def run_one(fake, tmp_path: Path, pack: str, sid: str, replies, **kw: Any) -> dict[str, Any]:
    """Run one scenario against a scripted list of replies (or a messages -> Reply function); return its row."""
    p = only(pack, sid)
    srv = fake(by_script({sid: replies}, p.scenarios))
    _, rows = await run_packs(srv, tmp_path, [p], **kw)
    (row,) = rows
    return row
