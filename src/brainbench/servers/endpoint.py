"""A server already running somewhere: brainbench starts and stops nothing, it only waits for it to answer."""

from __future__ import annotations

from typing import Any

from pydantic import model_validator

from .base import ServerConfig, ServerKind, register


class EndpointConfig(ServerConfig):
    """Where the running server is, and (optionally) its process to watch."""

    base_url: str | None = None
    """The running server's base URL (e.g. http://127.0.0.1:8000/v1)."""
    pid: int | None = None
    """A server process to watch for memory growth and death (optional)."""

    @model_validator(mode="after")
    def _has_url(self) -> EndpointConfig:
        if not self.base_url:
            raise ValueError("kind=endpoint needs base_url (e.g. http://127.0.0.1:8000/v1)")
        return self


@register
class Endpoint(ServerKind):
    name = "endpoint"
    config = EndpointConfig
    starts_process = False

    def root_url(self, cfg: EndpointConfig, port: int | None) -> str:  # type: ignore[override]
        return (cfg.base_url or "").rstrip("/").removesuffix("/v1")

    def base_url(self, cfg: EndpointConfig, port: int | None) -> str:  # type: ignore[override]
        return cfg.base_url or ""

    def health_url(self, cfg: EndpointConfig, port: int | None) -> str:  # type: ignore[override]
        base = (cfg.base_url or "").rstrip("/")
        return base.removesuffix("/v1") + "/api/tags" if cfg.wire_api == "ollama" else base + "/models"

    def watched_pid(self, cfg: EndpointConfig) -> int | None:  # type: ignore[override]
        return cfg.pid

    def describe(self, cfg: EndpointConfig) -> dict[str, Any]:  # type: ignore[override]
        return {"base_url": cfg.base_url}
