"""Classify live traffic with the packs' failure taxonomy.

Per reply (`read_calls`): calls written as text (recovered with the client's own parser, raw text kept),
unknown tools (not among the request's `tools`), malformed arguments (unparseable, or invalid against the
request's own JSON schema), commands outside a shell rule's allow-list. When the agent's next request arrives
(`absorb_followup`), the tool results it carries say which calls the tools refused (`tool_error`) and any
user text after a plain reply is the agent's nudge. Per conversation (`judge`): repeated failures, loops,
empty replies, degenerate text, and the protocol rules' obligations (`omitted_closeout`,
`premature_closeout`, `call_after_closeout`, `narrated_action`). The same detectors and thresholds as the
pack scorer (`core.taxonomy`, `scoring.score`).
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema

from ..client.parse import recover_text_calls
from ..core.records import AttemptRecord, ToolResult, Turn
from ..core.taxonomy import layer
from ..core.types import ChatResult, ToolCall
from ..core.verdict import Verdict
from ..envs._agentic import call_signature
from ..envs.base import ToolError
from ..envs.shell import HANDSHAKE_SCRIPTS, STANDARD_SCRIPTS, Denied
from ..envs.shell import classify as shell_classify
from ..runner.attempt import REJECTED_CALL, recover_more_text_calls
from ..scoring.score import call_repeats, narrates, reply_failures
from .rules import Rule

_ERRORISH = re.compile(r"^\s*(error\b|\[error\]|traceback|exception\b|denied\b)", re.IGNORECASE)


def tool_specs(tools: list[Any] | None) -> dict[str, dict[str, Any]]:
    """Offered tools by name -> their parameters schema (OpenAI and Ollama write tools the same way)."""
    out: dict[str, dict[str, Any]] = {}
    for t in tools or []:
        fn = t.get("function") if isinstance(t, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            params = fn.get("parameters")
            out[fn["name"]] = params if isinstance(params, dict) else {}
    return out


def _schema_error(schema: dict[str, Any], args: dict[str, Any]) -> str | None:
    try:
        err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(args))
    except (jsonschema.exceptions.SchemaError, jsonschema.exceptions.UnknownType, TypeError, ValueError,
            RecursionError):
        return None  # the agent's own schema is broken: nothing to hold the model to
    if err is None:
        return None
    where = ".".join(str(p) for p in err.absolute_path)
    return f"{where + ': ' if where else ''}{err.message}"[:300]


def _shell_scripts(rule: Rule) -> dict[str, dict[str, Any]]:
    assert rule.shell is not None
    return rule.shell.scripts if rule.shell.scripts is not None else {**STANDARD_SCRIPTS, **HANDSHAKE_SCRIPTS}


def _check_call(call: ToolCall, specs: dict[str, dict[str, Any]], rules: list[Rule]) -> tuple[str | None, str]:
    """(failure id or None, why) for one call, judged against the request's tools and the shell rules."""
    if call.name == REJECTED_CALL or call.parse_error:
        return "malformed_args", call.parse_error or "arguments could not be parsed"
    if specs and call.name not in specs:
        return "unknown_tool", f"{call.name!r} is not among the request's tools ({', '.join(sorted(specs))})"
    if call.name in specs and (why := _schema_error(specs[call.name], call.arguments or {})):
        return "malformed_args", why
    for rule in rules:
        if rule.shell and rule.shell.tool == call.name:
            cmd = (call.arguments or {}).get(rule.shell.argument)
            try:
                shell_classify(cmd if isinstance(cmd, str) else "", _shell_scripts(rule))
            except Denied as e:
                return f"disallowed_command.{e.sub}", str(e)
            except ToolError as e:
                return "malformed_args", str(e)
    return None, ""


def read_calls(result: ChatResult, tools: list[Any] | None, rules: list[Rule]) -> list[ToolResult]:
    """Recover calls written as text (only where tools were offered) and judge every call of one reply.

    Each call gets a ToolResult: `ok` False with its failure id when the tap can tell it failed; the output
    is filled in when the agent sends the tool's answer back."""
    specs = tool_specs(tools)
    if not result.tool_calls and specs and result.content.strip():
        result.tool_calls = recover_text_calls(result.content) or recover_more_text_calls(
            result.content, list(specs))
    out = []
    for call in result.tool_calls:
        kind, why = _check_call(call, specs, rules)
        out.append(ToolResult(call_id=call.id, name=call.name, ok=kind is None, output=why, error_kind=kind,
                              in_text=call.in_text))
    return out


def rejected_result(detail: str, sent: float) -> ChatResult:
    """The server refused the model's own broken call (HTTP 500): one malformed call we never saw."""
    from ..core.types import Timing

    call = ToolCall(name=REJECTED_CALL, arguments=None, parse_error=f"the server could not parse this tool "
                    f"call ({detail})")
    return ChatResult(tool_calls=[call], finish_reason="server_rejected", timing=Timing(sent=sent))


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return "" if content is None else json.dumps(content)


def opening_text(messages: list[Any]) -> str:
    """A conversation's system and user text, which a rule's `message_regex` reads."""
    return "\n".join(_text(m.get("content")) for m in messages if isinstance(m, dict) and m.get("role") in ("system", "user"))


def rules_for(rules: list[Rule], tools: list[Any] | None, opening: str) -> list[Rule]:
    """The rules that hold a conversation with these tools and this opening."""
    names = set(tool_specs(tools))
    return [r for r in rules if r.applies_to(names, opening)]


def _errorish(output: str) -> bool:
    """A tool answer that says it failed: `{"error": ...}`, or text that starts with an error word."""
    try:
        data = json.loads(output)
    except (ValueError, RecursionError):
        return bool(_ERRORISH.match(output))
    return isinstance(data, dict) and bool(data.get("error"))


def absorb_followup(turn: Turn, new_messages: list[Any]) -> list[str]:
    """What the agent sent after `turn`: tool answers (matched by call id, else in order) and user text (after a
    reply with no structured call: the agent's nudge). Returns the ids of the calls the agent answered."""
    by_id = {r.call_id: r for r in turn.tool_results}
    unmatched = [r for r in turn.tool_results]
    user: list[str] = []
    answered: list[str] = []
    structured = any(not c.in_text for c in turn.result.tool_calls)
    for m in new_messages:
        if not isinstance(m, dict):
            continue
        if m.get("role") == "tool":
            r = by_id.get(str(m.get("tool_call_id") or "")) or next(
                (x for x in unmatched if not x.output or x.error_kind), None)
            if r is None:
                continue
            if r in unmatched:
                unmatched.remove(r)
            answered.append(r.call_id)
            out = _text(m.get("content"))
            r.output = out if not r.error_kind else f"{r.output}\n-- tool answered: {out}"[:4000]
            if r.ok and _errorish(out):
                r.ok, r.error_kind = False, "tool_error"
        elif m.get("role") in ("user", "system") and not structured:
            user.append(_text(m.get("content")))
    if user:
        turn.nudge = "\n".join(user)[:2000]
    return answered


# -- per conversation -----------------------------------------------------------------------------------


def _calls(rec: AttemptRecord) -> list[tuple[ToolCall, ToolResult | None]]:
    out = []
    for t in rec.turns:
        res = {r.call_id: r for r in t.tool_results}
        out += [(c, res.get(c.id)) for c in t.result.tool_calls]
    return out


def _ok(r: ToolResult | None) -> bool:
    return r is None or r.ok


def _trace(rec: AttemptRecord) -> list[str]:
    """The failures visible in the call trace and the replies (as the pack scorer counts them)."""
    calls = _calls(rec)
    out = [r.error_kind for _, r in calls if r is not None and r.error_kind]
    out += ["tool_call_in_text" for c, _ in calls if c.in_text]
    out += call_repeats([(call_signature(c.name, c.arguments, c.arguments_raw), _ok(r)) for c, r in calls])
    for t in rec.turns:
        out += reply_failures(t.result)
    return out


def _rule_state(rule: Rule, rec: AttemptRecord) -> dict[str, Any]:
    """Where a conversation stands with one rule: closed by which call, premature, calls after the close.

    A close-out written as text closes only if the agent answered it (a tool message came back for it): most
    agents never run a call they did not get in the tool-call channel, so the card stays open."""
    closed_at, worked, premature = None, False, False
    calls = _calls(rec)
    answered = set(rec.final_state.get("answered", []))
    for i, (c, r) in enumerate(calls):
        ran = not c.in_text or c.id in answered
        if closed_at is None and ran and _ok(r) and rule.closes(c.name, c.arguments):
            closed_at = i
            premature = c.name in rule.needs_work_before and not worked
        elif _ok(r) and not rule.closes(c.name, c.arguments) and c.name not in rule.not_work:
            worked = True
    return {"closed_by": calls[closed_at][0].name if closed_at is not None else None,
            "premature": premature, "after": 0 if closed_at is None else len(calls) - closed_at - 1}


def judge(rec: AttemptRecord, rules: list[Rule], tool_names: list[str], ended: str | None) -> Verdict:
    """The verdict on a conversation so far. `ended`: why it is over ('idle', 'shutdown'), or None while the
    agent may still continue: then an open obligation counts only if the last reply had no structured call (the
    agent's loop ends there). A conversation cut off by the infrastructure owes nothing."""
    failures = _trace(rec)
    reasons: list[str] = []
    states: dict[str, Any] = {}
    last = rec.turns[-1] if rec.turns else None
    text_end = last is not None and all(c.in_text for c in last.result.tool_calls)  # no structured call: loop ends
    infra_end = bool(rec.final_state.get("ended_by_infra"))
    obliged = False
    for rule in rules:
        st = _rule_state(rule, rec)
        states[rule.id] = st
        if not rule.must_end_with:
            continue
        obliged = True
        if st["premature"]:
            failures.append("premature_closeout")
            reasons.append(f"{rule.id}: closed with {st['closed_by']} before any work call")
        failures += ["call_after_closeout"] * st["after"]
        is_open = st["closed_by"] is None
        st["open"] = is_open
        if is_open and not infra_end and (ended or text_end):
            failures.append("omitted_closeout")
            reasons.append(f"{rule.id}: ended without " + " or ".join(m.tool for m in rule.must_end_with))
            if text_end and last is not None and not last.result.tool_calls and narrates(last.result.content, tool_names):
                failures.append("narrated_action")
    failures += ["context_exhausted" for d in rec.dispatches if d.end_reason == "context_exhausted"]
    nudged = any(t.nudge for t in rec.turns)
    passed = not any(layer(f) == "silent" for f in failures)
    in_text = sum(1 for c, _ in _calls(rec) if c.in_text)
    calls = _calls(rec)
    return Verdict(
        passed=passed,
        clean=passed and not nudged and not any(layer(f) == "error_line" for f in failures),
        failures=failures,
        details={
            "reasons": reasons, "dispatches": 1, "tool_calls": len(calls),
            "tool_errors": sum(1 for _, r in calls if not _ok(r)), "protocol_violation": nudged,
            "first_dispatch_open": nudged and obliged, "obligation": obliged, "in_text_calls": in_text,
            "strict_passed": passed and in_text == 0, "denied": False, "recovered": False,
            "error_line_failures": sum(1 for f in failures if layer(f) == "error_line"),
            "silent_failures": sum(1 for f in failures if layer(f) == "silent"),
            "rules": states, "ended": ended,
        },
    )
