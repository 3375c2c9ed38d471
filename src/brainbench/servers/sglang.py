"""SGLang (`python -m sglang.launch_server`): OpenAI API; /metrics when started with --enable-metrics."""

from __future__ import annotations

import sys

from .base import ServerConfig, ServerKind, register
from .vllm import HubModelConfig


@register
class Sglang(ServerKind):
    name = "sglang"
    config = HubModelConfig
    metrics_path = "/metrics"
    version_path = "/get_server_info"

    def default_command(self, cfg: ServerConfig, model: str) -> list[str]:
        return [sys.executable, "-m", "sglang.launch_server", "--model-path", model, "--host", "{host}",
                "--port", "{port}", "--served-model-name", model]

    def template_flags(self, cfg: ServerConfig) -> list[str]:
        t = cfg.chat_template_file or cfg.chat_template
        return ["--chat-template", t] if t else []
