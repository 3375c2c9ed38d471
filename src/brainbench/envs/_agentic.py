"""What the agentic environments (kanban, shell, home, refusal) share.

- The call counter and the closing call: each environment records which tool call (1-based, in the
  order the harness dispatched them) closed the task, so scoring can count calls made after it.
- The repeated-failure guard, as hermes-agent does it: the 2nd identical failing call (same tool, same
  arguments) gets a loop warning appended to its error; from the 5th identical failure on, the call is
  refused without running. Thresholds: `REPEAT_WARN`, `REPEAT_BLOCK` (README, "Failure taxonomy").
- A workspace: files from the scenario state written under the per-attempt workdir (never the host's
  paths), and read back for scoring.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core.taxonomy import REPEAT_BLOCK, REPEAT_WARN
from .base import Environment, ToolOutcome

MAX_FILE_BYTES = 64_000


def call_signature(name: str, arguments: dict[str, Any] | None, raw: str | None = None) -> str:
    """Canonical identity of a call: tool name + arguments as sorted JSON (so key order never matters)."""
    if arguments is None:
        return f"{name}:{raw or ''}"
    return f"{name}:{json.dumps(arguments, sort_keys=True, default=str)}"


class AgenticEnv(Environment):
    """Base of the agentic environments: call counting, closing call, repeated-failure guard, workspace."""

    def __init__(self, state: dict[str, Any], workdir: Path):
        self._ncalls = 0
        self._closed_at: int | None = None
        self._failures: dict[str, tuple[int, str | None]] = {}
        super().__init__(state, workdir)

    # -- workspace ----------------------------------------------------------------------------------

    def write_workspace(self, files: dict[str, str]) -> None:
        for rel, text in files.items():
            p = self.confine(rel)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text, encoding="utf-8")

    def read_workspace(self) -> dict[str, str]:
        root = self.workdir.resolve()
        out = {}
        for p in sorted(root.rglob("*")):
            if p.is_file():
                out[p.relative_to(root).as_posix()] = p.read_bytes()[:MAX_FILE_BYTES].decode("utf-8", "replace")
        return out

    # -- closing ------------------------------------------------------------------------------------

    def mark_closed(self) -> None:
        """Call from the tool that closes the task; the first close wins."""
        if self._closed_at is None:
            self._closed_at = self._ncalls

    @property
    def closed(self) -> bool:
        """Closed once a tool called `mark_closed` (the first close wins)."""
        return self._closed_at is not None

    def final_state(self) -> dict[str, Any]:
        return {**self.state, "_calls": self._ncalls, "_closed_at_call": self._closed_at}

    def note_unparsed_call(self) -> None:
        self._ncalls += 1

    # -- the dispatcher's view of a call ------------------------------------------------------------

    async def call(self, name: str, arguments: dict[str, Any] | None, offered: list[str] | None = None,
                   parse_error: str | None = None) -> ToolOutcome:
        self._ncalls += 1
        sig = call_signature(name, arguments, parse_error)
        seen, kind = self._failures.get(sig, (0, None))
        if seen + 1 >= REPEAT_BLOCK:
            self._failures[sig] = (seen + 1, kind)
            msg = (f"[Tool loop guard: repeated_exact_failure; count={seen + 1}] this exact call has failed "
                   f"{seen} times and is blocked; change your approach")
            return ToolOutcome(False, json.dumps({"error": msg}), kind)
        outcome = await super().call(name, arguments, offered, parse_error)
        if outcome.ok:
            return outcome
        self._failures[sig] = (seen + 1, outcome.error_kind)
        if seen + 1 >= REPEAT_WARN:
            warning = (f"[Tool loop warning: repeated_exact_failure_warning; count={seen + 1}; "
                       f"{name} has failed with these exact arguments before]")
            try:
                body = json.loads(outcome.output)
                body["warning"] = warning
                outcome.output = json.dumps(body)
            except (json.JSONDecodeError, TypeError):
                outcome.output = f"{outcome.output}\n{warning}"
        return outcome
