"""One attempt: a multi-turn tool-calling conversation between a brain and a simulated environment.

The harness plays the dispatcher: a turn that ends in plain text while the environment still has an
open obligation gets the turn-end nudge; a dispatch that still ends with it open is a protocol
violation and is re-dispatched (up to `retries` times) with a short reminder. Where the environment
says the task is closed (`env.closed`: the terminal call was made), the model gets one more turn; if that
turn makes calls again, they run (scoring counts them as calls after the close-out) and the dispatch
ends, instead of letting a model that cannot stop burn its turn budget. Infrastructure failures
end the attempt as `infra_error`, never as a model failure.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from ..client import ChatClient, InfraError
from ..client.parse import recover_text_calls
from ..core.errors import ContextExhausted, ServerRejectedOutput
from ..core.records import AttemptRecord, Dispatch, ToolResult, Turn
from ..core.types import ChatResult, InfraEvent, Timing, ToolCall
from ..envs import Environment, get_env
from ..packs import Scenario
from .harness import Wrapped, wrap

_CALL_NAME = re.compile(r'"name"\s*:\s*"([A-Za-z_][\w.\-]*)"')


def recover_more_text_calls(content: str, offered: list[str] | None = None) -> list[ToolCall]:
    """What `recover_text_calls` leaves: several bare JSON calls one after another (JSON lines), and a call
    written as text that is not valid JSON (e.g. a missing closing brace). In a reply that does not start
    with JSON, only objects naming an offered tool are taken as calls.

    The broken call (only for a name in `offered`, so prose quoting JSON is never taken for a call) is kept
    as one call with `arguments=None` and a parse error: the environment answers it with a `malformed_args`
    error the model can act on, instead of the harness reading it as prose.
    """
    dec = json.JSONDecoder()
    calls: list[ToolCall] = []
    i = 0
    while True:
        i = min((j for j in (content.find("{", i), content.find("[", i)) if j >= 0), default=-1)
        if i < 0:
            break
        try:
            _, end = dec.raw_decode(content, i)
        except json.JSONDecodeError:
            i += 1
            continue
        calls += recover_text_calls(content[i:end])
        i = end
    if not content.lstrip().startswith(("{", "[")):  # JSON inside prose: only calls of offered tools count
        calls = [c for c in calls if c.name in (offered or [])]
    if calls:
        return calls
    m = next((m for m in _CALL_NAME.finditer(content) if m.group(1) in (offered or [])), None)
    if not m:
        return []
    return [ToolCall(id=f"call_{uuid.uuid4().hex[:12]}", name=m.group(1), arguments_raw="{}", arguments=None,
                     parse_error="the tool call written as text is not valid JSON", in_text=True, raw_text=content)]


REJECTED_CALL = "(unparsed call)"


def _rejected_turn(record: AttemptRecord, messages: list[dict[str, Any]], d: int, detail: str) -> Turn:
    """The server refused the model's reply because it could not parse its tool call: the model made a
    malformed call we never saw. Record it as one `malformed_args` call and tell the model, as a tool error
    would, so the attempt goes on (a retry would re-sample and hide the failure)."""
    call = ToolCall(id=f"call_{uuid.uuid4().hex[:12]}", name=REJECTED_CALL, arguments=None,
                    parse_error=f"the server could not parse this tool call ({detail})")
    result = ChatResult(tool_calls=[call], finish_reason="server_rejected", timing=Timing(sent=time.perf_counter()))
    turn = Turn(index=len(record.turns), dispatch=d, messages_before=len(messages), result=result)
    error = "Your last tool call could not be parsed: its arguments were not valid JSON. Call the tool again " \
            "with a JSON object as its arguments."
    turn.tool_results = [ToolResult(call_id=call.id, name=call.name, ok=False, output=json.dumps({"error": error}),
                                    error_kind="malformed_args")]
    messages.append({"role": "user", "content": error})
    record.turns.append(turn)
    return turn


def _opening_too_long(e: ContextExhausted) -> InfraError:
    """The server refused the opening request, before the model wrote a word: its context (with the scenario's
    max_tokens) is too small for the scenario. A server setting, never a model failure: the attempt is an
    infrastructure error (left out of every rate; --resume re-runs it once the server has room)."""
    detail = f"the scenario's opening does not fit the server's context; give it more (-c) or lower max_tokens: {e}"
    return InfraError(detail, [InfraEvent(kind="context_too_small", detail=detail, at=time.time(), retried=False)])


def _opening(wrapped: Wrapped, reminder: str | None) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = [{"role": "system", "content": wrapped.system}] if wrapped.system else []
    msgs += [dict(m) for m in wrapped.messages]
    if reminder:
        msgs.append({"role": "user", "content": reminder})
    return msgs


async def _run_calls(env: Environment, result: ChatResult, offered: list[str] | None,
                     wrapped: Wrapped) -> list[ToolResult]:
    out = []
    for call in result.tool_calls:
        outcome = wrapped.deny(call.name) or await env.call(call.name, call.arguments, offered, call.parse_error)
        out.append(ToolResult(call_id=call.id, name=call.name, ok=outcome.ok, output=outcome.output,
                              error_kind=outcome.error_kind, in_text=call.in_text))
    return out


def _append_results(messages: list[dict[str, Any]], result: ChatResult, results: list[ToolResult]) -> None:
    """Feed results back as `tool` messages, one per call (recovered text calls included)."""
    messages.append(result.assistant_message())
    messages += [{"role": "tool", "tool_call_id": r.call_id, "content": r.output} for r in results]


class AttemptRunner:
    """Runs attempts for one client; stateless between attempts."""

    def __init__(self, client: ChatClient, retries: int = 1, workroot: Path | None = None, harness: str = "minimal"):
        self.client = client
        self.retries = retries
        self.workroot = workroot
        self.harness = harness

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
        # wrapped per dispatch: a tool description may carry live data (the shell's allow-list)
        wrapped = wrap(self.harness, scenario, env.tool_specs(scenario.tools), env.tool_names())
        messages = _opening(wrapped, reminder)
        nudges = closed_turns = 0
        for _ in range(scenario.max_turns):
            try:
                turn = await self._turn(scenario, env, record, messages, wrapped, d)
            except ContextExhausted as e:  # the conversation no longer fits: this dispatch ends, scored as it stands
                if not any(m["role"] == "assistant" for m in messages):
                    raise _opening_too_long(e) from None
                return Dispatch(index=d, end_reason="context_exhausted", open_obligation=env.open_obligation(),
                                messages=messages, detail=str(e))
            if turn.tool_results:
                if env.closed:  # the closing call is terminal: one more turn, then stop
                    closed_turns += 1
                    if closed_turns > 1:
                        return Dispatch(index=d, end_reason="stop", open_obligation=env.open_obligation(),
                                        messages=messages)
                continue
            obligation = env.open_obligation()
            if obligation is None or nudges >= env.max_nudges:
                return Dispatch(index=d, end_reason="stop", open_obligation=obligation, messages=messages)
            nudges += 1
            turn.nudge = env.nudge_text(obligation)
            messages += [turn.result.assistant_message(), {"role": "user", "content": turn.nudge}]
        return Dispatch(index=d, end_reason="turn_budget", open_obligation=env.open_obligation(), messages=messages)

    async def _turn(self, scenario, env, record, messages, wrapped: Wrapped, d) -> Turn:
        tools = wrapped.tools
        try:
            result = await self.client.chat(messages, tools=tools or None, **scenario.params)
        except ServerRejectedOutput as e:
            env.note_unparsed_call()
            return _rejected_turn(record, messages, d, str(e))
        result.request = {k: v for k, v in result.request.items() if k != "messages"}  # messages_before says which
        record.infra_events += result.events
        if not result.tool_calls and tools:
            result.tool_calls = recover_text_calls(result.content) or recover_more_text_calls(
                result.content, [t["function"]["name"] for t in tools])
        turn = Turn(index=len(record.turns), dispatch=d, messages_before=len(messages), result=result)
        record.turns.append(turn)
        if result.tool_calls:
            turn.tool_results = await _run_calls(env, result, scenario.tools, wrapped)
            _append_results(messages, result, turn.tool_results)
        return turn
