"""An optional LLM judge, run as a separate pass over stored transcripts (never during a run).

Only open-ended cases are judged: scenarios with a rubric in `meta.judge` (or every completed attempt with
`judge_all`). The judge sees the WHOLE conversation (system prompt, every user and assistant turn, tool
calls and results, harness nudges), because a judge that sees only the last reply cannot tell a correct
recall of an earlier turn from nonsense. Prompts are versioned; a verdict is stored under the scorer name
`judge:<prompt version>` next to the deterministic one, which it never replaces or changes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from ..client import ChatClient, Endpoint
from ..core.errors import BrainbenchError
from ..core.records import AttemptRecord
from ..packs import Scenario
from ..store.db import RunStore
from .checks.answer import extract_json

PROMPT_VERSION = "v1"

PROMPTS: dict[str, str] = {
    "v1": """You are grading the final reply of an AI assistant in the conversation below.
You see the whole conversation, including every earlier turn: facts, names and instructions given earlier
count as known, so a reply that correctly uses them is correct. Judge only the FINAL reply.

What a good final reply does (the rubric):
{rubric}

=== CONVERSATION ===
{conversation}
=== END OF CONVERSATION ===

FINAL REPLY TO GRADE:
{final}

Reply with one JSON object and nothing else:
{{"verdict": "pass" or "fail", "score": <1 to 5>, "reason": "<one sentence>"}}""",
}

DEFAULT_RUBRIC = ("It does what the user asked, correctly and completely, consistent with the earlier turns, "
                  "without invented facts.")


def scorer_name(version: str = PROMPT_VERSION) -> str:
    return f"judge:{version}"


def transcript(scenario: Scenario, rec: AttemptRecord) -> tuple[str, str]:
    """(the conversation up to the final reply, the final reply) as plain text for the judge."""
    lines: list[str] = []
    if scenario.system:
        lines.append(f"[system] {scenario.system}")
    for m in scenario.messages:
        lines.append(f"[{m.get('role', 'user')}] {m.get('content') or ''}")
    turns = rec.turns
    for i, t in enumerate(turns):
        if i and t.dispatch != turns[i - 1].dispatch:
            lines.append("[harness] (the task was dispatched again after the previous attempt ended early)")
        r = t.result
        if i == len(turns) - 1:
            break
        if r.content.strip():
            lines.append(f"[assistant] {r.content}")
        for c in r.tool_calls:
            lines.append(f"[assistant calls tool] {c.name}({c.arguments_raw})")
        for tr in t.tool_results:
            lines.append(f"[tool result: {tr.name}] {tr.output[:2000]}")
        if t.nudge:
            lines.append(f"[user] {t.nudge}")
    last = turns[-1].result if turns else None
    if last is None:
        final = ""
    elif last.tool_calls:
        final = (last.content + "\n" if last.content.strip() else "") + "\n".join(
            f"(calls tool) {c.name}({c.arguments_raw})" for c in last.tool_calls)
    else:
        final = last.content
    return "\n".join(lines), final


def build_prompt(scenario: Scenario, rec: AttemptRecord, version: str = PROMPT_VERSION) -> str:
    if version not in PROMPTS:
        raise BrainbenchError(f"unknown judge prompt version {version!r}; known: {', '.join(PROMPTS)}")
    conversation, final = transcript(scenario, rec)
    rubric = (scenario.meta or {}).get("judge") or DEFAULT_RUBRIC
    return PROMPTS[version].format(rubric=rubric, conversation=conversation, final=final or "(empty reply)")


def parse_verdict(text: str) -> dict[str, Any] | None:
    """{'passed', 'score', 'reason'} from the judge's reply, or None when it is not a verdict."""
    value, err = extract_json(text)
    if err or not isinstance(value, dict):
        return None
    verdict = str(value.get("verdict", "")).strip().lower()
    if verdict not in ("pass", "fail"):
        return None
    score = value.get("score")
    return {"passed": verdict == "pass", "score": score if isinstance(score, (int, float)) else None,
            "reason": str(value.get("reason", ""))[:500]}


@dataclass
class JudgeStats:
    judged: int = 0
    passed: int = 0
    unparseable: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


def wanted(scenario: Scenario, judge_all: bool) -> bool:
    return judge_all or bool((scenario.meta or {}).get("judge"))


async def judge_store(store: RunStore, endpoint: Endpoint, *, judge_all: bool = False, version: str = PROMPT_VERSION,
                      concurrency: int = 1, max_tokens: int = 300, timeout: float = 300.0,
                      client: ChatClient | None = None) -> JudgeStats:
    """Judge every eligible completed attempt of a run; verdicts go under `judge:<version>`."""
    from . import stored_scenarios

    scenarios = stored_scenarios(store)
    stats = JudgeStats()
    todo = []
    for rec in store.attempts(status="completed"):
        sc = scenarios.get(rec.scenario_hash)
        if sc is None or not wanted(sc, judge_all):
            stats.skipped += 1
            continue
        todo.append((sc, rec))
    sem = asyncio.Semaphore(max(1, concurrency))
    own = client is None
    client = client or ChatClient(endpoint, timeout=timeout)

    async def one(sc: Scenario, rec: AttemptRecord) -> None:
        prompt = build_prompt(sc, rec, version)
        async with sem:
            res = await client.chat([{"role": "user", "content": prompt}], temperature=0, max_tokens=max_tokens)
        v = parse_verdict(res.content)
        if v is None:
            stats.unparseable += 1
            stats.errors.append(f"{rec.pack}/{rec.scenario_id}: judge reply is not a verdict: {res.content[:120]!r}")
            return
        stats.judged += 1
        stats.passed += int(v["passed"])
        details = {**v, "prompt_version": version, "judge_model": endpoint.model, "judge_endpoint": endpoint.base_url,
                   "judge_reply": res.content[:2000]}
        store.put_verdict(rec.key, scorer_name(version), v["passed"], v["passed"], [] if v["passed"] else ["judge_fail"],
                          details)

    try:
        await asyncio.gather(*(one(sc, rec) for sc, rec in todo))
    finally:
        if own:
            await client.__aexit__(None, None, None)
    return stats


def judge_run(store: RunStore, url: str, model: str, *, api_key: str | None = None, judge_all: bool = False,
              version: str = PROMPT_VERSION, concurrency: int = 1) -> JudgeStats:
    """Synchronous entry point for the CLI."""
    ep = Endpoint(url, model, "openai", api_key)
    return asyncio.run(judge_store(store, ep, judge_all=judge_all, version=version, concurrency=concurrency))


__all__ = ["PROMPTS", "PROMPT_VERSION", "JudgeStats", "build_prompt", "judge_run", "judge_store", "parse_verdict",
           "scorer_name", "transcript"]
