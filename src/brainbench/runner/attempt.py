"""One attempt: a multi-turn tool-calling conversation between a brain and a simulated environment.

The harness plays the dispatcher: a turn that ends in plain text while the environment still has an
open obligation gets the turn-end nudge; a dispatch that still ends with it open is a protocol
violation and is re-dispatched (up to `retries` times) with a short reminder. Infrastructure failures
end the attempt as `infra_error`, never as a model failure.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ..client import ChatClient, InfraError
from ..client.parse import recover_text_calls
from ..client.types import ChatResult
from ..envs import Environment, get_env
from ..packs import Scenario
from .records import AttemptRecord, Dispatch, ToolResult, Turn


def _opening(scenario: Scenario, reminder: str | None) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = [{"role": "system", "content": scenario.system}] if scenario.system else []
    msgs += [dict(m) for m in scenario.messages]
    if reminder:
        msgs.append({"role": "user", "content": reminder})
    return msgs


async def _run_calls(env: Environment, result: ChatResult, offered: list[str] | None) -> list[ToolResult]:
    out = []
    for call in result.tool_calls:
        outcome = await env.call(call.name, call.arguments, offered, call.parse_error)
        out.append(ToolResult(call_id=call.id, name=call.name, ok=outcome.ok, output=outcome.output,
                              error_kind=outcome.error_kind, in_text=call.in_text))
    return out


def _append_results(messages: list[dict[str, Any]], result: ChatResult, results: list[ToolResult]) -> None:
    """Feed results back as `tool` messages, one per call (recovered text calls included)."""
    messages.append(result.assistant_message())
    messages += [{"role": "tool", "tool_call_id": r.call_id, "content": r.output} for r in results]


class AttemptRunner:
    """Runs attempts for one client; stateless between attempts."""

    def __init__(self, client: ChatClient, retries: int = 1, workroot: Path | None = None):
        self.client = client
        self.retries = retries
        self.workroot = workroot

    async def run(self, scenario: Scenario, record: AttemptRecord) -> AttemptRecord:
        workdir = Path(tempfile.mkdtemp(prefix="bb-attempt-", dir=self.workroot))
        record.started = time.time()
        try:
            env = get_env(scenario.env)(scenario.state, workdir)
            await self._dispatches(scenario, env, record)
            record.final_state = json.loads(json.dumps(env.final_state(), default=str))
        except InfraError as e:
            record.status, record.error = "infra_error", str(e)
            record.infra_events += e.events
        finally:
            record.ended = time.time()
            shutil.rmtree(workdir, ignore_errors=True)
        return record

    async def _dispatches(self, scenario: Scenario, env: Environment, record: AttemptRecord) -> None:
        reminder = None
        for d in range(self.retries + 1):
            dispatch = await self._dispatch(scenario, env, record, d, reminder)
            record.dispatches.append(dispatch)
            if dispatch.open_obligation is None:
                return
            reminder = env.reminder_text(dispatch.open_obligation)

    async def _dispatch(self, scenario: Scenario, env: Environment, record: AttemptRecord, d: int,
                        reminder: str | None) -> Dispatch:
        messages = _opening(scenario, reminder)
        tools = env.tool_specs(scenario.tools)
        nudges = 0
        for _ in range(scenario.max_turns):
            turn = await self._turn(scenario, env, record, messages, tools, d)
            if turn.tool_results:
                continue
            obligation = env.open_obligation()
            if obligation is None or nudges >= env.max_nudges:
                return Dispatch(index=d, end_reason="stop", open_obligation=obligation, messages=messages)
            nudges += 1
            turn.nudge = env.nudge_text(obligation)
            messages += [turn.result.assistant_message(), {"role": "user", "content": turn.nudge}]
        return Dispatch(index=d, end_reason="turn_budget", open_obligation=env.open_obligation(), messages=messages)

    async def _turn(self, scenario, env, record, messages, tools, d) -> Turn:
        result = await self.client.chat(messages, tools=tools or None, **scenario.params)
        result.request = {k: v for k, v in result.request.items() if k != "messages"}  # messages_before says which
        record.infra_events += result.events
        if not result.tool_calls and tools:
            result.tool_calls = recover_text_calls(result.content)
        turn = Turn(index=len(record.turns), dispatch=d, messages_before=len(messages), result=result)
        record.turns.append(turn)
        if result.tool_calls:
            turn.tool_results = await _run_calls(env, result, scenario.tools)
            _append_results(messages, result, turn.tool_results)
        return turn
