"""Core check types: the answer text, which tools were called, and the environment's final state.

Argument values are compared by value and type (strings case- and space-insensitively), never as raw strings.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import Field

from . import AttemptView, Check, Outcome, Regex, get_path, values_match

Flags = Field(default="", pattern=r"^i?$")


def _re_flags(flags: str) -> int:
    return re.IGNORECASE if "i" in flags else 0


class ContentRegex(Check):
    """The final answer matches a regular expression."""

    type: Literal["content_regex"] = "content_regex"
    pattern: Regex
    """Regular expression searched in the final answer (`.` matches newlines)."""
    flags: str = Flags
    """`i` to ignore case."""

    def run(self, view: AttemptView) -> Outcome:
        if re.search(self.pattern, view.final_content, _re_flags(self.flags) | re.DOTALL):
            return None
        return f"answer does not match /{self.pattern}/"


class ContentNotRegex(Check):
    """The final answer does not match a regular expression."""

    type: Literal["content_not_regex"] = "content_not_regex"
    pattern: Regex
    """Regular expression that must not be found in the final answer."""
    flags: str = Flags
    """`i` to ignore case."""

    def run(self, view: AttemptView) -> Outcome:
        if re.search(self.pattern, view.final_content, _re_flags(self.flags) | re.DOTALL):
            return f"answer matches forbidden /{self.pattern}/"
        return None


class ToolCalled(Check):
    """A tool was called (with matching arguments) at least `min` times."""

    type: Literal["tool_called"] = "tool_called"
    name: str
    """Tool name."""
    args: dict[str, Any] = Field(default_factory=dict)
    """Arguments the call must have (a subset, compared by value; other arguments may be present)."""
    min: int = Field(default=1, ge=0)
    """How many matching calls are needed."""

    def run(self, view: AttemptView) -> Outcome:
        hits = [c for c in view.calls if c["name"] == self.name and c["arguments"] is not None
                and values_match(self.args, c["arguments"])]
        if len(hits) >= self.min:
            return None
        return f"no call {self.name}({self.args})" if self.args else f"{self.name} was never called"


class NotCalled(Check):
    """A tool was never called."""

    type: Literal["not_called"] = "not_called"
    name: str
    """Tool name."""

    def run(self, view: AttemptView) -> Outcome:
        bad = [c for c in view.calls if c["name"] == self.name]
        return f"{self.name} was called {len(bad)}x" if bad else None


class NoToolCalls(Check):
    """No tool was called at all."""

    type: Literal["no_tool_calls"] = "no_tool_calls"
    default_failure: ClassVar[str] = "unneeded_call"

    def run(self, view: AttemptView) -> Outcome:
        return f"{len(view.calls)} tool call(s) where none was needed" if view.calls else None


class CallSequence(Check):
    """The named calls happen in this order (other calls may come between)."""

    type: Literal["call_sequence"] = "call_sequence"
    names: list[str] = Field(min_length=1)
    """Tool names, in the order they must be called."""
    count_failed: bool = False
    """Count calls that failed too (default: only successful calls)."""

    def run(self, view: AttemptView) -> Outcome:
        names = iter(c["name"] for c in view.calls if c["ok"] or self.count_failed)
        missing = [n for n in self.names if not any(x == n for x in names)]
        return f"calls not made in order {self.names}" if missing else None


class State(Check):
    """A value in the environment's final state: absent, equal to a value, or matching a regex."""

    type: Literal["state"] = "state"
    path: str
    """Dotted path into the final state (`cards.t1.status`; list indexes allowed)."""
    equals: Any = None
    """Expected value (compared by value; omit to only require the path to exist)."""
    regex: Regex | None = None
    """Regular expression the value (as text) must match."""
    absent: bool = False
    """The path must not exist."""
    flags: str = Flags
    """`i` to ignore case in `regex`."""

    def run(self, view: AttemptView) -> Outcome:
        try:
            value = get_path(view.record.final_state, self.path)
        except (KeyError, IndexError):
            return None if self.absent else f"state {self.path} is missing"
        if self.absent:
            return f"state {self.path} should be absent"
        if "equals" in self.model_fields_set and not values_match(self.equals, value):
            return f"state {self.path} = {value!r}, expected {self.equals!r}"
        if self.regex is not None and not re.search(self.regex, str(value), _re_flags(self.flags) | re.DOTALL):
            return f"state {self.path} does not match /{self.regex}/"
        return None


class MaxCalls(Check):
    """At most `max` tool calls in the whole attempt."""

    type: Literal["max_calls"] = "max_calls"
    max: int = Field(ge=0)
    """The most tool calls allowed."""

    def run(self, view: AttemptView) -> Outcome:
        n = len(view.calls)
        return f"{n} tool calls, more than {self.max}" if n > self.max else None
