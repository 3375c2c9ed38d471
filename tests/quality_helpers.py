"""Build stored attempts by hand for grader tests (no server involved)."""

from __future__ import annotations

import json
from typing import Any

from brainbench.client.parse import make_call
from brainbench.core.types import ChatResult, Timing, Usage
from brainbench.core.records import AttemptRecord, Dispatch, Turn
from brainbench.scoring.checks import AttemptView


def result(content: str = "", calls: list[tuple[str, Any]] | None = None, finish: str = "stop",
           reasoning: str = "", tools: list[dict] | None = None, in_text: bool = False) -> ChatResult:
    tcs = [make_call(n, a if isinstance(a, str) else json.dumps(a), in_text=in_text) for n, a in (calls or [])]
    req = {"tools": tools} if tools else {}
    return ChatResult(content=content, reasoning=reasoning, tool_calls=tcs, finish_reason=finish,
                      usage=Usage(completion_tokens=10), timing=Timing(sent=0.0, end=1.0), request=req)


def record(*results: ChatResult) -> AttemptRecord:
    turns = [Turn(index=i, dispatch=0, messages_before=1 + 2 * i, result=r) for i, r in enumerate(results)]
    return AttemptRecord(key="k", scenario_id="s", pack="p", scenario_hash="h", model="m", config_hash="c", trial=0,
                         status="completed", turns=turns, dispatches=[Dispatch(index=0, end_reason="stop")])


def view(content: str = "", calls: list[tuple[str, Any]] | None = None, **kw: Any) -> AttemptView:
    return AttemptView.of(record(result(content, calls, **kw)))


def views(*results: ChatResult) -> AttemptView:
    return AttemptView.of(record(*results))


def check(check_type: str, v: AttemptView, **spec: Any):
    """The reason the typed check fails (validated as a pack would be), or None when it holds."""
    from brainbench.scoring.checks import load_check

    out = load_check({"type": check_type, **spec}).verdict(v)
    return out[0] if out else None
