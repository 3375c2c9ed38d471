"""Any command line that starts an OpenAI-compatible server (the profile's `command`, placeholders filled in)."""

from __future__ import annotations

from pydantic import model_validator

from .base import ServerConfig, ServerKind, register


class CommandConfig(ServerConfig):
    """A server started by the profile's own command line."""

    @model_validator(mode="after")
    def _has_command(self) -> CommandConfig:
        if not self.command:
            raise ValueError("kind=command needs command (the server's command line)")
        return self


@register
class Command(ServerKind):
    name = "command"
    config = CommandConfig
