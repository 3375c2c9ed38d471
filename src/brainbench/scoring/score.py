"""Score stored attempts: checks + failure classification -> a verdict. Never calls a model."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from ..packs import Scenario
from ..runner.records import AttemptRecord
from .checks import CHECKS, AttemptView

SCORER = "deterministic"

_PLUGINS = ("brainbench.scoring.quality",)
"""Modules that register extra check types when imported (a missing one is skipped)."""


def load_check_plugins() -> None:
    for mod in _PLUGINS:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise


load_check_plugins()


@dataclass
class Verdict:
    passed: bool
    clean: bool
    """Passed on the first dispatch with no turn-end nudge and no protocol violation."""
    failures: list[str] = field(default_factory=list)
    """Failure-taxonomy ids, one entry per occurrence (a class may repeat)."""
    details: dict[str, Any] = field(default_factory=dict)


def _classify_trace(view: AttemptView) -> list[str]:
    """Failures visible in the call trace and the turns."""
    rec = view.record
    out = [c["error_kind"] for c in view.calls if c["error_kind"]]
    out += ["tool_call_in_text" for c in view.calls if c["in_text"]]
    for t in rec.turns:
        r = t.result
        if not r.content.strip() and not r.tool_calls and not r.reasoning.strip():
            out.append("empty_response")
    if any(d.end_reason == "turn_budget" for d in rec.dispatches):
        out.append("turn_budget_exhausted")
    return out


def _run_hook(scenario: Scenario, view: AttemptView) -> tuple[list[str], list[str]]:
    """A scenario hook returns (failed check reasons, extra failure ids)."""
    module, _, fn = (scenario.hook or "").partition(":")
    result = getattr(importlib.import_module(module), fn)(scenario, view)
    return list(result.get("reasons", [])), list(result.get("failures", []))


def score_attempt(scenario: Scenario, rec: AttemptRecord) -> Verdict:
    """The deterministic verdict for one completed attempt."""
    view = AttemptView.of(rec)
    reasons: list[str] = []
    failures = _classify_trace(view)
    for check in scenario.checks:
        spec = check.model_dump()
        fn = CHECKS.get(check.type)
        why = f"unknown check type {check.type!r}" if fn is None else fn(view, spec)
        if why:
            fid = spec.get("failure", "unneeded_call" if check.type == "no_tool_calls" else "wrong_result")
            if isinstance(why, tuple):
                why, fid = why
            reasons.append(why)
            failures.append(fid)
    if scenario.hook:
        extra_reasons, extra_failures = _run_hook(scenario, view)
        reasons += extra_reasons
        failures += extra_failures
    final_open = rec.dispatches[-1].open_obligation if rec.dispatches else None
    if final_open:
        failures.append("omitted_closeout")
        reasons.append(f"ended with an open obligation: {final_open}")
    passed = not reasons
    violated = len(rec.dispatches) > 1 or any(t.nudge for t in rec.turns)
    return Verdict(
        passed=passed,
        clean=passed and not violated,
        failures=failures,
        details={"reasons": reasons, "dispatches": len(rec.dispatches), "tool_calls": len(view.calls),
                 "tool_errors": sum(1 for c in view.calls if not c["ok"]), "protocol_violation": violated},
    )
