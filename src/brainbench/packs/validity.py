"""The validity gate: trivial policies that must fail every scenario.

A verdict is only worth betting on if doing nothing cannot earn it. `brainbench packs --check` runs each
policy below as a scripted brain on the in-process fake server (real HTTP/SSE), through the real runner and
scorer, against every scenario; any pass is a defect of the scenario (or an exemption it declares, with a
reason, in `validity_exempt`).
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import Pack, Scenario

Policy = Callable[[Scenario | None, dict[str, Any]], Any]
"""(the scenario or None when unknown, the request body) -> the first reply (a `Reply`)."""


@dataclass
class Finding:
    """One (scenario, policy) pair: a trivial policy passed a scenario."""

    scenario: str
    """`pack/id`."""
    policy: str
    """The policy's name."""
    reason: str = ""
    """The exemption's reason; empty for a defect."""


@dataclass
class GateReport:
    """What the gate found over some packs."""

    scenarios: int = 0
    """Scenarios gated."""
    policies: list[str] = field(default_factory=list)
    """The policies run."""
    failures: list[Finding] = field(default_factory=list)
    """Passes by a trivial policy that no exemption covers: each one makes the command exit 1."""
    exempt: list[Finding] = field(default_factory=list)
    """Passes covered by a declared exemption, listed with its reason."""

    def as_dict(self) -> dict[str, Any]:
        return {"scenarios": self.scenarios, "policies": self.policies,
                "failures": [f.__dict__ for f in self.failures], "exempt": [f.__dict__ for f in self.exempt]}


# -- the policies -----------------------------------------------------------------------------------------


def _user_text(body: dict[str, Any]) -> str:
    return next((str(m.get("content") or "") for m in body.get("messages", []) if m.get("role") == "user"), "")


def _offered(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [t["function"] for t in body.get("tools") or [] if "function" in t]


def _ids(sc: Scenario | None, text: str) -> list[str]:
    """Ids of the scenario's state (keys one level down, e.g. card ids) that the opening names: what a lazy
    brain would pass to a close-out call without doing anything else."""
    keys = [k for v in (sc.state.values() if sc else []) if isinstance(v, dict) for k in v if isinstance(k, str)]
    named = [k for k in keys if k in text]
    return named or keys[:1]


def minimal_args(fn: dict[str, Any], ident: str = "", strings: bool = False) -> dict[str, Any]:
    """Schema-minimal arguments: every required parameter with the smallest value of its type (an id-like
    string parameter gets `ident`); `strings` also fills the optional string ones (a close-out's summary)."""
    params = fn.get("parameters") or {}
    props = params.get("properties") or {}
    names = [n for n in props if n in params.get("required", []) or (strings and _kind(props[n]) == "string")]
    return {n: _minimal(n, props[n], ident) for n in names}


def _kind(prop: dict[str, Any]) -> str:
    return prop.get("type") or next((p.get("type") for p in prop.get("anyOf", []) if p.get("type") != "null"), "")


def _minimal(name: str, prop: dict[str, Any], ident: str) -> Any:
    if prop.get("enum"):
        return prop["enum"][0]
    kind = _kind(prop)
    if kind == "string":
        return ident if ident and (name == "id" or name.endswith("_id")) else "Done."
    if kind in ("integer", "number"):
        return prop.get("minimum", 0)
    return {"boolean": False, "array": [], "object": {}}.get(kind, "")


def _closeout(tool: str) -> Policy:
    def policy(sc: Scenario | None, body: dict[str, Any]) -> Any:
        from ..testing import Reply

        fn = next((f for f in _offered(body) if f["name"] == tool), None)
        if fn is None:
            return Reply.text("Done.")
        return Reply.calls(*[(tool, minimal_args(fn, i, strings=True)) for i in _ids(sc, _user_text(body)) or [""]])
    return policy


def _every_tool(sc: Scenario | None, body: dict[str, Any]) -> Any:
    from ..testing import Reply

    ids = _ids(sc, _user_text(body))
    fns = _offered(body)
    return Reply.calls(*[(f["name"], minimal_args(f, ids[0] if ids else "")) for f in fns]) if fns else Reply.text("")


def _plausible_calls(sc: Scenario | None, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The calls a right answer would make: the reference solution's, else the checks' expected calls, else
    the first offered tool with minimal arguments."""
    steps = (sc.meta.get("solution") or []) if sc else []
    calls = [{"name": s["call"], "arguments": s.get("args", {})} for s in steps if "call" in s]
    calls += [{"name": n, "arguments": a} for s in steps for n, a in s.get("calls", [])]
    if not calls and sc:
        dumps = [c.model_dump() for c in sc.checks]
        calls = [{"name": d["name"], "arguments": d.get("args") or {}} for d in dumps
                 if isinstance(d.get("name"), str) and "call" in d["type"]]
    fns = _offered(body)
    return calls or ([{"name": fns[0]["name"], "arguments": minimal_args(fns[0])}] if fns else [])


def _text_call(sc: Scenario | None, body: dict[str, Any]) -> Any:
    from ..testing import Reply

    calls = _plausible_calls(sc, body)
    return Reply.text("\n".join(json.dumps(c) for c in calls) if calls else "Done.")


def _say(text: str) -> Policy:
    def policy(sc: Scenario | None, body: dict[str, Any]) -> Any:
        from ..testing import Reply

        return Reply.text(text)
    return policy


def _echo(sc: Scenario | None, body: dict[str, Any]) -> Any:
    from ..testing import Reply

    said = [str(m.get("content") or "") for m in body.get("messages", []) if m.get("role") == "user"]
    return Reply.text(said[-1] if said else "")


BASE_POLICIES: dict[str, Policy] = {
    "nothing": _say(""),
    "done": _say("Done."),
    "every-tool": _every_tool,
    "echo": _echo,
    "text-call": _text_call,
}
"""Policies every scenario is gated against; `closeout:<tool>` policies are added per terminal tool."""

STRICT = {"text-call"}
"""Policies judged on the strict verdict: the runner recovers a call written as text and runs it, by design
(the lenient verdict credits the work, `tool_call_in_text` marks it), so only the strict pass is trivial."""


def policies_for(packs: list[Pack]) -> dict[str, tuple[Policy, list[Pack]]]:
    """Each policy with the packs it gates: the base policies gate every scenario; one `closeout:<tool>` per
    terminal tool the environments declare gates the scenarios that offer it."""
    from ..envs import get_env

    out: dict[str, tuple[Policy, list[Pack]]] = {n: (fn, packs) for n, fn in BASE_POLICIES.items()}
    envs = sorted({s.env for p in packs for s in p.scenarios})
    for tool in dict.fromkeys(t for e in envs for t in get_env(e).terminal_tools):
        subset = [p.model_copy(update={"scenarios": [s for s in p.scenarios if _offers(s, tool)]}) for p in packs]
        out[f"closeout:{tool}"] = (_closeout(tool), [p for p in subset if p.scenarios])
    return out


def _offers(s: Scenario, tool: str) -> bool:
    from ..envs import get_env

    return tool in get_env(s.env).terminal_tools and (s.tools is None or tool in s.tools)


# -- running them -----------------------------------------------------------------------------------------


def _brain(policy: Policy, scenarios: list[Scenario]) -> Callable[[dict[str, Any]], Any]:
    """The scripted brain of one policy: its own move on the first turn, then "Done." (silence for the
    policy that says nothing)."""
    from ..testing import Reply

    by_opening: dict[str, Scenario] = {}
    for s in scenarios:
        by_opening.setdefault(next((str(m.get("content")) for m in s.messages if m.get("role") == "user"), ""), s)
    after = Reply.text("" if policy is BASE_POLICIES["nothing"] else "Done.")

    def brain(body: dict[str, Any]) -> Any:
        sc = by_opening.get(_user_text(body))
        scripted = sum(m.get("role") == "assistant" for m in sc.messages) if sc else 0  # turns the opening holds
        if sum(m.get("role") == "assistant" for m in body.get("messages", [])) > scripted:
            return after
        return policy(sc, body)

    return brain


async def run_policy(policy: Policy, packs: list[Pack], workdir: Path, concurrency: int = 16) -> list[dict[str, Any]]:
    """Every scenario of `packs` against one policy, over the real wire, runner and scorer: the stored rows."""
    from ..client import ChatClient, Endpoint
    from ..runner.run import RunPlan, execute, prepare
    from ..scoring import attempt_rows
    from ..store import RunStore
    from ..testing import FakeServer

    scenarios = [s for p in packs for s in p.scenarios]
    with FakeServer(_brain(policy, scenarios), models=["validity-gate"]) as srv:
        store = RunStore(workdir, create=True)
        plan = RunPlan(packs=packs, model="validity-gate", config={"gate": True}, concurrency=concurrency)
        todo = prepare(plan, store)
        async with ChatClient(Endpoint(srv.base_url, "validity-gate"), backoff=0.01, retries=1) as client:
            await execute(plan, client, store, todo)
        return attempt_rows(store)


async def gate(packs: list[Pack], concurrency: int = 16) -> GateReport:
    """Run every policy over `packs` (policies in parallel) and sort the passes into failures and exemptions."""
    packs = [p for p in packs if p.scenarios]
    policies = policies_for(packs)
    exempt = {s.key: s.validity_exempt for p in packs for s in p.scenarios}
    report = GateReport(scenarios=sum(len(p.scenarios) for p in packs), policies=list(policies))
    with tempfile.TemporaryDirectory(prefix="bb-gate-") as tmp:
        results = await asyncio.gather(*[run_policy(fn, sub, Path(tmp) / re.sub(r"\W", "_", name), concurrency)
                                         for name, (fn, sub) in policies.items()])
    for name, rows in zip(policies, results):
        for r in rows:
            if not r["strict_passed" if name in STRICT else "passed"]:
                continue
            key = f"{r['pack']}/{r['scenario']}"
            reason = exempt.get(key, {}).get(name)
            (report.exempt if reason else report.failures).append(Finding(key, name, reason or ""))
    return report
