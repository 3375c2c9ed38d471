"""Wire-neutral records of one chat turn: what was asked, what came back, and when.

Everything here is stored verbatim in the run database, so a run can be re-scored or re-timed later
without calling the model again.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ToolCall(BaseModel):
    """One tool call the model made (structured, or recovered from its text)."""

    id: str = ""
    """The call id the server gave (or one we made up for calls recovered from text)."""
    name: str
    """Function name as the model wrote it (may name a tool that was never offered)."""
    arguments_raw: str = ""
    """The arguments exactly as received, before parsing."""
    arguments: dict[str, Any] | None = None
    """Parsed arguments; None when `arguments_raw` is not a JSON object."""
    parse_error: str | None = None
    """Why `arguments_raw` could not be parsed, if it could not."""
    in_text: bool = False
    """True when the call was written as text (fenced JSON, `<tool_call>` tags) rather than as `tool_calls`."""
    raw_text: str | None = None
    """For calls recovered from text: the exact text span they came from."""


class Usage(BaseModel):
    """Token counts as the server reported them (never counted from chunks)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    """Prompt tokens served from the server's prefix cache, where the server says so."""
    reasoning_tokens: int | None = None


class Timing(BaseModel):
    """Client-side clock of one request, in seconds from `perf_counter` (monotonic)."""

    sent: float
    """When the request left (just before the HTTP send)."""
    first_byte: float | None = None
    """When the response headers arrived."""
    first_token: float | None = None
    """First chunk carrying content, reasoning or a tool-call delta (role-only chunks do not count)."""
    chunks: list[float] = Field(default_factory=list)
    """Arrival time of every chunk that carried content, reasoning or a tool-call delta."""
    end: float | None = None
    """When the response was complete."""

    @property
    def ttft(self) -> float | None:
        return None if self.first_token is None else self.first_token - self.sent

    @property
    def wall(self) -> float | None:
        return None if self.end is None else self.end - self.sent


class InfraEvent(BaseModel):
    """Something the infrastructure did wrong (never a model failure)."""

    kind: str
    """Stable id: connect_error, timeout, http_5xx, loading_model, stream_reset, stream_truncated, bad_json, http_4xx,
    context_too_small (the server refused a scenario's opening request: its context is too small for it), replica_dead
    (a replica of a run over several endpoints was marked dead), replica_failover (the attempt was re-run on another
    replica because the one it ran on died)."""
    detail: str
    """One line, for people."""
    at: float = 0.0
    """Wall-clock time (epoch seconds)."""
    retried: bool = True
    """Whether the client retried after this event."""


class ChatResult(BaseModel):
    """One completed chat turn."""

    content: str = ""
    """The answer text, with any `<think>` block removed."""
    reasoning: str = ""
    """Reasoning text (`reasoning_content` or `<think>` blocks), kept apart from the answer."""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
    timing: Timing
    server_timings: dict[str, Any] | None = None
    """The server's own clock where it reports one (llama-server `timings`, Ollama `eval_duration`...)."""
    request: dict[str, Any] = Field(default_factory=dict)
    """The request body sent (never headers: API keys stay out of the store)."""
    response: Any = None
    """The raw response: the JSON body, or the list of SSE data objects when streaming."""
    events: list[InfraEvent] = Field(default_factory=list)
    """Infrastructure events met on the way (retries that eventually succeeded)."""
    normalized: list[str] = Field(default_factory=list)
    """Shape repairs the client made to the server's reply (e.g. tool-call arguments sent as a JSON object
    instead of a string): accepted, and recorded so a server's deviation from the protocol stays visible."""

    def assistant_message(self) -> dict[str, Any]:
        """The OpenAI-format assistant message to append to the conversation.

        Calls recovered from text are replayed in the structured channel, so the chat template renders
        the history the way the model was trained to read it; the raw text stays in the store.
        """
        texted = any(c.in_text for c in self.tool_calls)
        msg: dict[str, Any] = {"role": "assistant", "content": "" if texted else self.content}
        if self.tool_calls:
            msg["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments_raw}}
                for c in self.tool_calls
            ]
        return msg
