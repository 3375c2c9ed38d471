"""Tool-call checks: which calls were made, with which arguments, compared by value AND type.

The argument matcher (`arg_mismatch`, with `$any`/`$regex`/`$approx`/... operators) is public: the
structured-output checks use it for JSON fields too.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import jsonschema
from pydantic import Field

from ..matching import bipartite
from . import Args, AttemptView, Check, Outcome, Regex
from .answer import Range, norm_text, numbers_close


def _is_op(x: Any) -> bool:
    return isinstance(x, dict) and bool(x) and all(isinstance(k, str) and k.startswith("$") for k in x)


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "integer" if v.is_integer() else "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def arg_mismatch(expected: Any, actual: Any, where: str = "") -> str | None:
    """Why `actual` does not match `expected` (None when it does). Values by value AND type:
    strings case/space-insensitively, numbers numerically (5 == 5.0, but never "5" == 5), booleans
    strictly, lists in order, objects key by key. Operators: {"$any": [..]}, {"$regex": ".."},
    {"$approx": x, "$tol": t}, {"$type": "integer"}, {"$contains": ".."}, {"$set": [..]} (any order),
    {"$optional": v} / {"$absent": true} (inside an object: may be missing / must be missing)."""
    at = where or "value"
    if _is_op(expected):
        if "$any" in expected:
            ok = any(arg_mismatch(e, actual, where) is None for e in expected["$any"])
            return None if ok else f"{at}={actual!r}, expected one of {expected['$any']!r}"
        if "$regex" in expected:
            matched = isinstance(actual, str) and re.search(expected["$regex"], actual, re.I | re.S)
            return None if matched else f"{at}={actual!r} does not match /{expected['$regex']}/"
        if "$approx" in expected:
            tol = float(expected.get("$tol", 1e-6))
            ok = isinstance(actual, (int, float)) and not isinstance(actual, bool) and abs(actual - expected["$approx"]) <= tol
            return None if ok else f"{at}={actual!r}, expected {expected['$approx']}±{tol}"
        if "$type" in expected:
            t = _json_type(actual)
            want = expected["$type"]
            ok = t == want or (want == "number" and t == "integer")
            return None if ok else f"{at} has type {t}, expected {want}"
        if "$contains" in expected:
            ok = isinstance(actual, str) and norm_text(expected["$contains"]) in norm_text(actual)
            return None if ok else f"{at}={actual!r} does not contain {expected['$contains']!r}"
        if "$set" in expected:
            want = list(expected["$set"])
            if not isinstance(actual, list) or len(actual) != len(want):
                return f"{at}={actual!r}, expected the items {want!r} in any order"
            ok = bipartite([[arg_mismatch(w, a) is None for a in actual] for w in want]) is not None
            return None if ok else f"{at}={actual!r}, expected the items {want!r} in any order"
        if "$optional" in expected:
            return arg_mismatch(expected["$optional"], actual, where)
        if "$absent" in expected:
            return f"{at} should be absent"
        return f"unknown operator in {expected!r}"
    if isinstance(expected, bool) or isinstance(actual, bool):
        return None if expected is actual else f"{at}={actual!r}, expected {expected!r}"
    if isinstance(expected, (int, float)):
        if not isinstance(actual, (int, float)):
            return f"{at}={actual!r} ({_json_type(actual)}), expected the number {expected!r}"
        return None if numbers_close(float(expected), float(actual), 1e-9, 1e-9) else f"{at}={actual!r}, expected {expected!r}"
    if isinstance(expected, str):
        if not isinstance(actual, str):
            return f"{at}={actual!r} ({_json_type(actual)}), expected the string {expected!r}"
        return None if " ".join(expected.casefold().split()) == " ".join(actual.casefold().split()) else \
            f"{at}={actual!r}, expected {expected!r}"
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return f"{at}={actual!r}, expected {expected!r}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            why = arg_mismatch(e, a, f"{at}[{i}]")
            if why:
                return why
        return None
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{at}={actual!r}, expected an object"
        return args_mismatch(expected, actual, exact=False, where=at)
    if expected is None:
        return None if actual is None else f"{at}={actual!r}, expected null"
    return None if expected == actual else f"{at}={actual!r}, expected {expected!r}"


def match_arg(expected: Any, actual: Any) -> bool:
    return arg_mismatch(expected, actual) is None


def args_mismatch(expected: dict, actual: dict, exact: bool = True, where: str = "") -> str | None:
    """Object match: every expected key present and matching (unless $optional/$absent); with `exact`,
    no keys beyond the expected ones."""
    pre = f"{where}." if where else ""
    for k, want in expected.items():
        if _is_op(want) and "$absent" in want:
            if k in actual:
                return f"{pre}{k} should not be given"
            continue
        if k not in actual:
            if _is_op(want) and "$optional" in want:
                continue
            return f"missing argument {pre}{k}"
        why = arg_mismatch(want, actual[k], f"{pre}{k}")
        if why:
            return why
    if exact:
        extra = sorted(set(actual) - set(expected))
        if extra:
            return f"unexpected argument(s) {', '.join(pre + e for e in extra)}"
    return None


class ToolCheck(Check):
    """Arguments of every check over the tool calls."""

    turn: Literal["all", "first"] = "all"
    """Which calls are graded: every turn's (default) or only the first reply's."""
    text_calls: bool = True
    """Count calls the model wrote as text (recovered by the parser); false: structured calls only."""

    def graded_calls(self, view: AttemptView) -> list[dict[str, Any]]:
        """The calls this check looks at."""
        if self.turn == "first":
            turns = view.record.turns[:1]
            calls = [{"name": c.name, "arguments": c.arguments, "in_text": c.in_text}
                     for t in turns for c in t.result.tool_calls]
        else:
            calls = list(view.calls)
        if not self.text_calls:
            calls = [c for c in calls if not c["in_text"]]
        return calls


class ExpectedCall(Args):
    """One call a `tool_calls_match` check expects."""

    name: str
    """Tool name."""
    args: dict[str, Any] = Field(default_factory=dict)
    """Expected arguments (values or `$` operators: $any, $regex, $approx/$tol, $type, $contains, $set,
    $optional, $absent)."""
    exact: bool | None = None
    """No arguments beyond `args` (default: the check's `exact`)."""


class ToolCallsMatch(ToolCheck):
    """The model's calls match `calls`: each expected call by a distinct actual call (bipartite, so parallel
    calls may come in any order unless `order: strict`), arguments by value and type."""

    type: Literal["tool_calls_match"] = "tool_calls_match"
    calls: list[ExpectedCall] = Field(default_factory=list)
    """The expected calls; [] means no call at all."""
    count: Literal["exact", "at_least"] = "exact"
    """`exact` forbids calls beyond the expected ones; `at_least` allows them."""
    order: Literal["any", "strict"] = "any"
    """`strict`: the expected calls must come in this order."""
    exact: bool = True
    """No arguments beyond the expected ones (each call may override it)."""

    def _why(self, w: ExpectedCall, c: dict) -> str | None:
        if c["name"] != w.name:
            return f"called {c['name']}, expected {w.name}"
        if c["arguments"] is None:
            return f"{c['name']}: arguments are not a JSON object"
        return args_mismatch(w.args, c["arguments"], exact=self.exact if w.exact is None else w.exact, where="")

    def run(self, view: AttemptView) -> Outcome:
        calls, want = self.graded_calls(view), self.calls
        if self.count == "exact" and len(calls) != len(want):
            names = [c["name"] for c in calls]
            return f"{len(calls)} call(s) {names}, expected {len(want)} {[w.name for w in want]}"
        if len(calls) < len(want):
            return f"{len(calls)} call(s), expected at least {len(want)}"
        return self._in_order(calls) if self.order == "strict" else self._any_order(calls)

    def _in_order(self, calls: list[dict]) -> Outcome:
        i = 0
        for w in self.calls:
            while i < len(calls) and self._why(w, calls[i]) is not None:
                if self.count == "exact":
                    return f"call #{i + 1}: {self._why(w, calls[i])}"
                i += 1
            if i >= len(calls):
                return f"no call {w.name}({w.args}) in order"
            i += 1
        return None

    def _any_order(self, calls: list[dict]) -> Outcome:
        table = [[self._why(w, c) is None for c in calls] for w in self.calls]
        if bipartite(table) is not None:
            return None
        for r, w in enumerate(self.calls):
            if not any(table[r]):
                same = [self._why(w, c) for c in calls if c["name"] == w.name]
                return f"no call matches {w.name}: {same[0]}" if same else f"{w.name} was not called"
        return "calls match individually but not one-to-one"


class ToolCallCount(ToolCheck, Range):
    """The number of calls (to `name`, or to any tool) is within bounds."""

    type: Literal["tool_call_count"] = "tool_call_count"
    name: str | None = None
    """Count only calls to this tool."""

    def run(self, view: AttemptView) -> Outcome:
        calls = self.graded_calls(view)
        if self.name:
            calls = [c for c in calls if c["name"] == self.name]
        return self.out_of_range(len(calls), f"{self.name if self.name is not None else 'tool'} call(s)")


def offered_tools(view: AttemptView) -> dict[str, dict]:
    """Tool name -> parameters schema, as offered in the first request of the attempt."""
    for t in view.record.turns:
        tools = (t.result.request or {}).get("tools") or []
        if tools:
            return {x["function"]["name"]: x["function"].get("parameters") or {} for x in tools if "function" in x}
    return {}


class ToolArgsSchema(ToolCheck):
    """Every call names an offered tool and its arguments validate against that tool's JSON schema."""

    type: Literal["tool_args_schema"] = "tool_args_schema"

    def run(self, view: AttemptView) -> Outcome:
        tools = offered_tools(view)
        for c in self.graded_calls(view):
            if c["name"] not in tools:
                return f"called {c['name']}, which was not offered"
            if c["arguments"] is None:
                return f"{c['name']}: arguments are not a JSON object"
            errs = list(jsonschema.Draft202012Validator(tools[c["name"]]).iter_errors(c["arguments"]))
            if errs:
                e = jsonschema.exceptions.best_match(errs) or errs[0]
                return f"{c['name']}: {'/'.join(map(str, e.absolute_path)) or 'arguments'}: {e.message[:160]}"
        return None


class ToolArgLength(ToolCheck):
    """A call to `name` whose string argument `arg` has at least `min_chars` characters (and matches `regex`):
    the long tool-call prefill check."""

    type: Literal["tool_arg_length"] = "tool_arg_length"
    name: str
    """Tool name."""
    arg: str
    """The string argument measured."""
    min_chars: int = Field(default=0, ge=0)
    """Characters the argument needs."""
    regex: Regex | None = None
    """Regular expression the argument must match too."""

    def run(self, view: AttemptView) -> Outcome:
        best = 0
        for c in self.graded_calls(view):
            if c["name"] != self.name or not isinstance(c["arguments"], dict):
                continue
            v = c["arguments"].get(self.arg)
            if not isinstance(v, str):
                continue
            best = max(best, len(v))
            if len(v) >= self.min_chars and (not self.regex or re.search(self.regex, v, re.S)):
                return None
        return f"no {self.name} call with a complete {self.arg} (longest {best} chars, needed {self.min_chars})"
