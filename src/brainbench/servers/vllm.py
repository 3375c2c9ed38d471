"""vLLM (`vllm serve`): OpenAI API, Prometheus /metrics, a stats log `brainbench logs vllm` reads."""

from __future__ import annotations

from pydantic import model_validator

from .base import ServerConfig, ServerKind, register


class HubModelConfig(ServerConfig):
    """Profile fields of an engine that serves a Hugging Face model by id or path (vLLM, SGLang)."""

    @model_validator(mode="after")
    def _has_model(self) -> HubModelConfig:
        if not (self.model or self.command):
            raise ValueError(f"kind={self.kind} needs model (the Hugging Face id or path to serve)")
        return self


@register
class Vllm(ServerKind):
    name = "vllm"
    config = HubModelConfig
    metrics_path = "/metrics"
    log_miner = "vllm"
    version_path = "/version"

    def default_command(self, cfg: ServerConfig, model: str) -> list[str]:
        return ["vllm", "serve", model, "--host", "{host}", "--port", "{port}", "--served-model-name", model]

    def template_flags(self, cfg: ServerConfig) -> list[str]:
        t = cfg.chat_template_file or cfg.chat_template
        return ["--chat-template", t] if t else []
