"""Ollama (`ollama serve`): its native API by default; the model's chat template lives in its Modelfile."""

from __future__ import annotations

from pydantic import model_validator

from .base import ServerConfig, ServerKind, register


class OllamaConfig(ServerConfig):
    """Ollama's profile fields (the shared ones; a chat template is not one of them)."""

    @model_validator(mode="after")
    def _no_template(self) -> OllamaConfig:
        if self.chat_template_file or self.chat_template:
            raise ValueError("kind=ollama takes its chat template from the Modelfile, not from the profile")
        return self


@register
class Ollama(ServerKind):
    name = "ollama"
    config = OllamaConfig
    api = "ollama"
    health_path = "/api/tags"
    log_miner = "ollama"
    version_path = "/api/version"

    def default_command(self, cfg: ServerConfig, model: str) -> list[str]:
        return ["ollama", "serve"]

    def environment(self, cfg: ServerConfig, port: int | None) -> dict[str, str]:
        return {"OLLAMA_HOST": f"{cfg.host}:{port or 11434}"}
