"""What one attempt leaves behind: the stored unit that scoring, export and reports read."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from .types import ChatResult, InfraEvent


class ToolResult(BaseModel):
    """The environment's answer to one tool call."""

    call_id: str
    name: str
    ok: bool
    output: str
    """Exactly what the model was shown."""
    error_kind: str | None = None
    """Failure-taxonomy id when the call failed (unknown_tool, malformed_args, blocked_path, ...)."""
    in_text: bool = False
    """The call was recovered from the model's text, not from structured `tool_calls`."""


class Turn(BaseModel):
    """One model reply and what the harness did with it."""

    index: int
    dispatch: int
    """Which dispatch (0 = first, 1+ = re-dispatch after a protocol violation)."""
    messages_before: int
    """How many conversation messages were sent with this request (the request body is that prefix)."""
    result: ChatResult
    tool_results: list[ToolResult] = Field(default_factory=list)
    nudge: str | None = None
    """A reminder the harness sent after this turn (turn-end guard), if any."""


class Dispatch(BaseModel):
    """One dispatch of the task to the model: a conversation that ends in stop, budget or violation."""

    index: int
    end_reason: Literal["stop", "turn_budget", "context_exhausted", "infra"]
    open_obligation: str | None = None
    """What was still undone when the dispatch ended (e.g. 'card still in_progress'): a protocol violation."""
    detail: str | None = None
    """The server's own words when it ended the dispatch (context_exhausted: the 400 it answered)."""
    messages: list[dict[str, Any]] = Field(default_factory=list)


class AttemptRecord(BaseModel):
    """One trial of one scenario against one brain/config."""

    key: str
    scenario_id: str
    pack: str
    scenario_hash: str
    model: str
    config_hash: str
    trial: int
    status: Literal["completed", "infra_error"]
    """infra_error attempts are kept for the record but never scored as model failures; resume re-runs them."""
    dispatches: list[Dispatch] = Field(default_factory=list)
    turns: list[Turn] = Field(default_factory=list)
    final_state: dict[str, Any] = Field(default_factory=dict)
    infra_events: list[InfraEvent] = Field(default_factory=list)
    error: str | None = None
    replica: str | None = None
    """The endpoint that answered, in a run spread over replicas (None with one endpoint or an embedded brain)."""
    started: float = 0.0
    ended: float = 0.0

    @property
    def wall_s(self) -> float:
        return max(0.0, self.ended - self.started)


def attempt_key(scenario_hash: str, model: str, config_hash: str, trial: int) -> str:
    """Content key of an attempt: never a list position, so reordering a pack cannot misattribute results."""
    blob = json.dumps([scenario_hash, model, config_hash, trial])
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
