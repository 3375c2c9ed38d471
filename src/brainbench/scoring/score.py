"""Score stored attempts: checks + failure classification -> a verdict. Never calls a model.

The verdict's `failures` holds one failure-taxonomy id per occurrence (see `taxonomy.py`): the tool
errors the environment classified, what the checks found, and what the trace shows about turn
discipline (text-channel calls, repeated failures, loops, narrated actions, calls after the closing
call, prose around calls where the protocol wants calls only).
"""

from __future__ import annotations

import importlib
import re
from collections import Counter
from typing import TYPE_CHECKING, Any

from ..core.records import AttemptRecord
from ..core.taxonomy import LOOP_CALLS, is_denial, layer
from ..core.verdict import Verdict
from ..envs import get_env
from ..envs._agentic import call_signature
from .checks import AttemptView
from .text import TRACE_LOOPS, loop_reason

if TYPE_CHECKING:  # packs imports the check types from scoring, so scoring must not import packs at load time
    from ..packs import Scenario

SCORER = "deterministic"


# -- trace detectors ----------------------------------------------------------------------------------

_CLAIM = re.compile(
    r"\b(mark(ed|ing)?|mov(ed|ing)|clos(ed|ing)|complet(ed|ing)|block(ed|ing)|spawn(ed|ing)|hand(ed|ing) off|set)\b"
    r"[^.\n]{0,60}\b(done|complete|completed|closed|blocked|awaiting_eval|evaluator)\b",
    re.IGNORECASE,
)


def degenerate(text: str) -> bool:
    """Repetitive text, by the trace classifier's loop thresholds (see `scoring.text`)."""
    return loop_reason(text, TRACE_LOOPS) is not None


_INTENT = (r"\b(i will|i'll|i am going to|i'm going to|let me|let's|i need to|i should|we need to|now i|i would|"
           r"calling|i can call|you can call)\b[^.\n]{0,80}?")


def narrates(text: str, tool_names: list[str], intent_only: bool = False) -> bool:
    """The text narrates an action instead of calling it.

    On a text-only turn that left the task open: it names a tool or claims a closing action. On any other
    text-only turn that ended a dispatch (`intent_only`): it announces a call ("I will call the
    `calendar_update` function ...") or writes one in a syntax no parser takes (`<draft_create to=...>`,
    `light_set(room=...)`). Only identifier-like names (with an underscore: kanban_complete, light_set)
    count, so everyday words that happen to be tool names ("read", "bash") never do."""
    names = [re.escape(n) for n in tool_names if "_" in n]
    if not names:
        return False if intent_only else bool(_CLAIM.search(text))
    alt = "|".join(names)
    if re.search(_INTENT + rf"`?\b({alt})\b", text, re.IGNORECASE) or re.search(rf"<({alt})\b|\b({alt})\s*\(", text):
        return True
    if intent_only:
        return False
    return bool(re.search(rf"\b({alt})\b", text)) or bool(_CLAIM.search(text))


def _prose_outside_calls(turn) -> str:
    text = turn.result.content
    for c in turn.result.tool_calls:
        if c.raw_text:
            text = text.replace(c.raw_text, "")
    text = re.sub(r"</?tool_call>|```[a-z_]*", "", text)
    return text.strip()


def _env_info(scenario: Scenario) -> tuple[list[str], bool, bool]:
    """(names worth matching in narration, call_only_turns, requires_closeout): what the environment declares."""
    try:
        cls = get_env(scenario.env)
    except KeyError:  # a stored scenario of an environment this version no longer has: no env-specific rules
        return [], False, False
    names = list(scenario.tools if scenario.tools is not None else cls.tool_names())
    names += [*cls.terminal_tools, *cls.narration_names]
    return sorted(set(names)), cls.call_only_turns, cls.requires_closeout(scenario.state)


def _sig(c: dict[str, Any]) -> str:
    return call_signature(c["name"], c["arguments"], c.get("raw"))


def call_repeats(calls: list[tuple[str, bool]]) -> list[str]:
    """From (call signature, ok) in order: a `repeated_failure` per failing call identical to an earlier failing
    one, and a `loop` per signature made LOOP_CALLS times or more. Shared by the pack scorer and the tap."""
    out: list[str] = []
    failed: Counter[str] = Counter()
    for sig, ok in calls:
        if not ok:
            if failed[sig]:
                out.append("repeated_failure")
            failed[sig] += 1
    return out + ["loop" for n in Counter(sig for sig, _ in calls).values() if n >= LOOP_CALLS]


def reply_failures(r: Any) -> list[str]:
    """A reply's own failures: degenerate repetition (`loop`) and nothing at all (`empty_response`)."""
    out = ["loop"] if degenerate(r.content) or degenerate(r.reasoning) else []
    if not r.content.strip() and not r.tool_calls and not r.reasoning.strip():
        out.append("empty_response")
    return out


def classify_trace(view: AttemptView, scenario: Scenario) -> list[str]:
    """Failures visible in the call trace and the turns (independent of the scenario's checks)."""
    rec = view.record
    names, call_only, _ = _env_info(scenario)
    out = [c["error_kind"] for c in view.calls if c["error_kind"]]
    out += ["tool_call_in_text" for c in view.calls if c["in_text"]]
    out += call_repeats([(_sig(c), bool(c["ok"])) for c in view.calls])
    for t in rec.turns:
        r = t.result
        out += reply_failures(r)
        if call_only and r.tool_calls and _prose_outside_calls(t):
            out.append("mixed_turn")
    open_end = {d.index for d in rec.dispatches if d.open_obligation and d.end_reason == "stop"}
    last_turn = {t.dispatch: t.index for t in rec.turns}
    for t in rec.turns:
        text_only = not t.result.tool_calls
        left_open = t.nudge is not None or (t.dispatch in open_end and last_turn.get(t.dispatch) == t.index)
        ended = last_turn.get(t.dispatch) == t.index
        if text_only and (left_open or ended) and narrates(t.result.content, names, intent_only=not left_open):
            out.append("narrated_action")
    closed_at = rec.final_state.get("_closed_at_call")
    if isinstance(closed_at, int):
        out += ["call_after_closeout"] * max(0, len(view.calls) - closed_at)
    if any(d.end_reason == "turn_budget" for d in rec.dispatches):
        out.append("turn_budget_exhausted")
    out += ["context_exhausted" for d in rec.dispatches if d.end_reason == "context_exhausted"]
    return out


def _recovery(view: AttemptView, passed: bool) -> tuple[bool, bool]:
    """(denied, recovered): a call was denied; afterwards a different call succeeded and the task passed."""
    idx = next((i for i, c in enumerate(view.calls) if not c["ok"] and is_denial(c["error_kind"])), None)
    if idx is None:
        return False, False
    denied_sig = _sig(view.calls[idx])
    pivot = any(c["ok"] and _sig(c) != denied_sig for c in view.calls[idx + 1:])
    return True, passed and pivot


def _run_hook(scenario: Scenario, view: AttemptView) -> tuple[list[str], list[str]]:
    """A scenario hook returns (failed check reasons, extra failure ids)."""
    module, _, fn = (scenario.hook or "").partition(":")
    result = getattr(importlib.import_module(module), fn)(scenario, view)
    return list(result.get("reasons", [])), list(result.get("failures", []))


def score_attempt(scenario: Scenario, rec: AttemptRecord) -> Verdict:
    """The deterministic verdict for one completed attempt."""
    view = AttemptView.of(rec)
    reasons: list[str] = []
    failures = classify_trace(view, scenario)
    for check in scenario.checks:
        failed = check.verdict(view)
        if failed:
            reasons.append(failed[0])
            failures.append(failed[1])
    if scenario.hook:
        extra_reasons, extra_failures = _run_hook(scenario, view)
        reasons += extra_reasons
        failures += extra_failures
    final_open = rec.dispatches[-1].open_obligation if rec.dispatches else None
    if final_open:
        if "omitted_closeout" not in failures:
            failures.append("omitted_closeout")
        reasons.append(f"ended with an open obligation: {final_open}")
    passed = not reasons
    violated = len(rec.dispatches) > 1 or any(t.nudge for t in rec.turns)
    first_open = bool(rec.dispatches and rec.dispatches[0].open_obligation)
    denied, recovered = _recovery(view, passed)
    in_text = sum(1 for c in view.calls if c["in_text"])
    _, _, obligation = _env_info(scenario)
    return Verdict(
        passed=passed,
        clean=passed and not violated,
        failures=failures,
        details={
            "reasons": reasons, "dispatches": len(rec.dispatches), "tool_calls": len(view.calls),
            "tool_errors": sum(1 for c in view.calls if not c["ok"]), "protocol_violation": violated,
            "first_dispatch_open": first_open, "obligation": obligation, "in_text_calls": in_text,
            "strict_passed": passed and in_text == 0, "denied": denied, "recovered": recovered,
            "error_line_failures": sum(1 for f in failures if layer(f) == "error_line"),
            "silent_failures": sum(1 for f in failures if layer(f) == "silent"),
        },
    )
