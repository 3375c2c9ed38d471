"""llama-server (llama.cpp): the embedded brains, or any GGUF file; built from source by brainbench if needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from .base import ServerConfig, ServerKind, register

ALIASES: dict[str, list[str]] = {
    "ubatch": ["-ub"], "batch": ["-b"], "kv": ["-ctk", "-ctv"], "cache_type": ["-ctk", "-ctv"],
    "ctk": ["-ctk"], "ctv": ["-ctv"], "flash_attn": ["-fa"], "threads_batch": ["-tb"], "ngl": ["-ngl"],
}
"""Short names a sweep may use (`--param ubatch=128,512`); `kv` sets both K and V cache types."""


class LlamaServerConfig(ServerConfig):
    """llama-server's profile fields."""

    brain: str | None = None
    """An embedded brain (built and fetched on first use), e.g. brain-small."""
    model_path: str | None = None
    """A GGUF file (relative paths are relative to the profile file)."""
    binary: str | None = None
    """The executable (default: the one brainbench built)."""
    threads: int | None = Field(default=None, ge=1)
    """llama-server -t."""
    parallel: int = Field(default=1, ge=1)
    """Slots (--parallel); the context is ctx_per_slot × parallel unless args give -c."""
    ctx_per_slot: int = Field(default=8192, ge=256)
    """Context tokens per slot."""

    @field_validator("brain")
    @classmethod
    def _known_brain(cls, v: str | None) -> str | None:
        from ..backend.fetch import known_brain

        return known_brain(v)

    @model_validator(mode="after")
    def _has_model(self) -> LlamaServerConfig:
        if not (self.brain or self.model_path or self.command):
            raise ValueError("kind=llama-server needs brain (e.g. brain-small) or model_path")
        return self


def _built_binary() -> str:
    """brainbench's own build (just the name while it is not built: `prepare` builds it before a start)."""
    from ..backend.build import binary

    return str(binary("llama-server") or "llama-server")


@register
class LlamaServer(ServerKind):
    name = "llama-server"
    config = LlamaServerConfig
    metrics_path = "/metrics"  # served when started with --metrics
    log_miner = "llama"
    version_path = "/props"
    param_aliases = ALIASES
    path_fields = ("chat_template_file", "model_path")
    record_strip = ("--host", "--port", "-m", "--model")

    def default_command(self, cfg: LlamaServerConfig, model: str) -> list[str]:  # type: ignore[override]
        own_ctx = any(a.split("=", 1)[0] in ("-c", "--ctx-size") for a in cfg.args)
        return [cfg.binary or _built_binary(), "-m", "{model_path}", "--host", "{host}", "--port", "{port}", "--jinja",
                *([] if own_ctx else ["-c", str(cfg.ctx_per_slot * cfg.parallel)]), "--parallel", str(cfg.parallel),
                "--no-webui", *(["-t", str(cfg.threads)] if cfg.threads else []), *(["--alias", model] if model else [])]

    def template_flags(self, cfg: ServerConfig) -> list[str]:
        if cfg.chat_template_file:
            return ["--chat-template-file", cfg.chat_template_file]
        return ["--chat-template", cfg.chat_template] if cfg.chat_template else []

    def prepare(self, cfg: LlamaServerConfig) -> None:  # type: ignore[override]
        """Build llama-server (unless the profile names a binary) and fetch the brain, once; cached after."""
        from ..backend import ensure_brain
        from ..backend.build import build

        if not cfg.binary:
            build()
        if cfg.brain and not cfg.model_path:
            ensure_brain(cfg.brain)

    def placeholders(self, cfg: LlamaServerConfig) -> dict[str, str]:  # type: ignore[override]
        if cfg.model_path or not cfg.brain:
            return {"model_path": cfg.model_path or ""}
        from ..backend.fetch import MODELS

        return {"model_path": str(MODELS[cfg.brain].path())}  # where ensure_brain puts it

    def version_from(self, data: dict[str, Any]) -> str | None:
        v = data.get("build_info")
        return str(v) if v else None

    def version(self, cfg: LlamaServerConfig, port: int | None) -> str | None:  # type: ignore[override]
        from ..backend.build import LLAMA_CPP_PYTHON, binary

        said = super().version(cfg, port)
        ours = not cfg.binary or Path(cfg.binary) == binary("llama-server")
        return said or (f"llama.cpp of {LLAMA_CPP_PYTHON}" if ours else None)

    def describe(self, cfg: LlamaServerConfig) -> dict[str, Any]:  # type: ignore[override]
        if cfg.brain:
            from ..backend.fetch import MODELS

            return {"brain": cfg.brain, "model_sha256": MODELS[cfg.brain].sha256}
        return {"model_file": Path(cfg.model_path).name} if cfg.model_path else {}
