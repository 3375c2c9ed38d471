"""Errors the client raises. Each carries one line a person can act on."""

from __future__ import annotations

from .types import InfraEvent


class BrainbenchError(Exception):
    """Base for errors shown to the user as one line (the CLI prints `str(e)`, never a traceback)."""


class InfraError(BrainbenchError):
    """The server could not give a usable answer after all retries. Never a model failure."""

    def __init__(self, message: str, events: list[InfraEvent]):
        super().__init__(message)
        self.events = events


class EndpointError(BrainbenchError):
    """The endpoint refused the request for a reason retrying will not fix (bad model name, bad URL, 4xx)."""

    def __init__(self, message: str, events: list[InfraEvent] | None = None):
        super().__init__(message)
        self.events = events or []


class ContextExhausted(BrainbenchError):
    """The server refused the next request because the conversation no longer fits its context window
    (llama-server: "exceeds the available context size"; vLLM: "maximum context length"). The server is fine and
    the endpoint is right, so it is neither infrastructure nor a reason to stop the run: the attempt's dispatch
    ends there and is scored, with `context_exhausted` among its failures."""


class ServerRejectedOutput(BrainbenchError):
    """The server could not parse the model's own output (llama-server answers HTTP 500 "Failed to parse tool
    call arguments as JSON" when the model writes a broken call). A model failure, not infrastructure: retrying
    would re-sample and hide it, so the attempt records it as `malformed_args` and goes on."""
