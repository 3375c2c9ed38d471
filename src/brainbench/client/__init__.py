"""Talking to model servers: OpenAI-compatible chat completions and Ollama's native API."""

from .chat import ChatClient, Endpoint
from ..core.errors import BrainbenchError, EndpointError, InfraError
from ..core.types import ChatResult, InfraEvent, Timing, ToolCall, Usage

__all__ = [
    "BrainbenchError", "ChatClient", "ChatResult", "Endpoint", "EndpointError", "InfraError", "InfraEvent",
    "Timing", "ToolCall", "Usage",
]
