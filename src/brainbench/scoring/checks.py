"""Deterministic checks: each is a pure function of a stored attempt, so scoring never calls a model.

Add a check type with the `register` decorator (from any module, e.g. `scoring/quality.py` or an
environment module) on a function `(view, spec) -> str | None` (None = holds, else why not). A check may
also return `(reason, failure_id)` to say which failure-taxonomy id its failure counts as; otherwise it
counts as the spec's `failure` field, or `wrong_result`. Argument values are compared by value and type (strings case- and
space-insensitively), never as raw strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from ..core.records import AttemptRecord


@dataclass
class AttemptView:
    """The parts of an attempt checks look at, computed once."""

    record: AttemptRecord
    calls: list[dict[str, Any]] = field(default_factory=list)
    """Every tool call in order: {name, arguments, ok, error_kind, in_text, raw, turn}."""
    final_content: str = ""
    """The last non-empty answer text of the attempt."""

    @classmethod
    def of(cls, rec: AttemptRecord) -> "AttemptView":
        view = cls(record=rec)
        for turn in rec.turns:
            results = {r.call_id: r for r in turn.tool_results}
            for c in turn.result.tool_calls:
                r = results.get(c.id)
                view.calls.append({"name": c.name, "arguments": c.arguments, "ok": bool(r and r.ok),
                                   "error_kind": r.error_kind if r else None, "in_text": c.in_text,
                                   "raw": c.arguments_raw, "turn": turn.index})
            if turn.result.content.strip() and not any(c.in_text for c in turn.result.tool_calls):
                view.final_content = turn.result.content
        return view


def values_match(expected: Any, actual: Any) -> bool:
    """Value equality: strings case/space-insensitive, numbers numerically, dicts as subsets, lists in order."""
    if isinstance(expected, str) and isinstance(actual, str):
        return " ".join(expected.lower().split()) == " ".join(actual.lower().split())
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return abs(expected - actual) <= 1e-9 * max(1.0, abs(expected))
    if isinstance(expected, dict) and isinstance(actual, dict):
        return all(k in actual and values_match(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(values_match(e, a) for e, a in zip(expected, actual))
    return expected == actual


def get_path(data: Any, path: str) -> Any:
    """Follow a dotted path (`cards.t1.status`, list indexes allowed); raises KeyError when absent."""
    for part in path.split(".") if path else []:
        if isinstance(data, list) and part.lstrip("-").isdigit():
            data = data[int(part)]
        elif isinstance(data, dict) and part in data:
            data = data[part]
        else:
            raise KeyError(path)
    return data


def _flags(spec: dict) -> int:
    return re.IGNORECASE if "i" in spec.get("flags", "") else 0


def _check_content_regex(view: AttemptView, spec: dict) -> str | None:
    if re.search(spec["pattern"], view.final_content, _flags(spec) | re.DOTALL):
        return None
    return f"answer does not match /{spec['pattern']}/"


def _check_content_not_regex(view: AttemptView, spec: dict) -> str | None:
    if re.search(spec["pattern"], view.final_content, _flags(spec) | re.DOTALL):
        return f"answer matches forbidden /{spec['pattern']}/"
    return None


def _check_tool_called(view: AttemptView, spec: dict) -> str | None:
    want = spec.get("args") or {}
    hits = [c for c in view.calls if c["name"] == spec["name"] and c["arguments"] is not None
            and values_match(want, c["arguments"])]
    if len(hits) >= spec.get("min", 1):
        return None
    return f"no call {spec['name']}({want})" if want else f"{spec['name']} was never called"


def _check_not_called(view: AttemptView, spec: dict) -> str | None:
    bad = [c for c in view.calls if c["name"] == spec["name"]]
    return f"{spec['name']} was called {len(bad)}x" if bad else None


def _check_no_tool_calls(view: AttemptView, spec: dict) -> str | None:
    return f"{len(view.calls)} tool call(s) where none was needed" if view.calls else None


def _check_call_sequence(view: AttemptView, spec: dict) -> str | None:
    """The named calls happen in this order (other calls may come between)."""
    names = iter(c["name"] for c in view.calls if c["ok"] or spec.get("count_failed", False))
    missing = [n for n in spec["names"] if not any(x == n for x in names)]
    return f"calls not made in order {spec['names']}" if missing else None


def _check_state(view: AttemptView, spec: dict) -> str | None:
    try:
        value = get_path(view.record.final_state, spec["path"])
    except (KeyError, IndexError):
        return None if spec.get("absent") else f"state {spec['path']} is missing"
    if spec.get("absent"):
        return f"state {spec['path']} should be absent"
    if "equals" in spec and not values_match(spec["equals"], value):
        return f"state {spec['path']} = {value!r}, expected {spec['equals']!r}"
    if "regex" in spec and not re.search(spec["regex"], str(value), _flags(spec) | re.DOTALL):
        return f"state {spec['path']} does not match /{spec['regex']}/"
    return None


def _check_max_calls(view: AttemptView, spec: dict) -> str | None:
    n = len(view.calls)
    return f"{n} tool calls, more than {spec['max']}" if n > spec["max"] else None


CheckFn = Callable[[AttemptView, dict], "str | tuple[str, str] | None"]

CHECKS: dict[str, CheckFn] = {
    "content_regex": _check_content_regex,
    "content_not_regex": _check_content_not_regex,
    "tool_called": _check_tool_called,
    "not_called": _check_not_called,
    "no_tool_calls": _check_no_tool_calls,
    "call_sequence": _check_call_sequence,
    "state": _check_state,
    "max_calls": _check_max_calls,
}


def register(name: str) -> Callable[[CheckFn], CheckFn]:
    """Register a check type: `@register("file_regex") def check(view, spec): ...`.

    Registering a name twice with a different function is an error (two modules fighting over a name).
    """

    def deco(fn: CheckFn) -> CheckFn:
        if name in CHECKS and CHECKS[name] is not fn:
            raise ValueError(f"check type {name!r} is already registered by {CHECKS[name].__module__}")
        CHECKS[name] = fn
        return fn

    return deco
