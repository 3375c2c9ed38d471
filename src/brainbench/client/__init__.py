"""Talking to model servers: OpenAI-compatible chat completions and Ollama's native API."""

from ..core.errors import BrainbenchError, EndpointError, InfraError
from ..core.types import ChatResult, InfraEvent, Timing, ToolCall, Usage
from .chat import ChatClient, Endpoint

__all__ = [
    "BrainbenchError", "ChatClient", "ChatResult", "Endpoint", "EndpointError", "InfraError", "InfraEvent",
    "Timing", "ToolCall", "Usage",
]
