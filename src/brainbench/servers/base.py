"""The contract every server kind fulfils, and the registry that maps a profile's `kind:` to it.

A kind is a `ServerKind` subclass decorated with `@register`; its module sits in this package and is imported
by the package itself, so a new engine is one new file here and nothing else. Modules of this package import
`brainbench.backend` only inside functions (the backend starts its embedded server through this package).
"""

from __future__ import annotations

import difflib
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..core.errors import BrainbenchError


class UnknownKind(BrainbenchError):
    """A profile or record names a server kind that no module registers."""


class ServerConfig(BaseModel):
    """The profile fields every kind shares; a kind with fields of its own subclasses this (its `config`)."""

    model_config = ConfigDict(extra="forbid")

    kind: str = "llama-server"
    """Which registered server kind starts (or finds) the server: `brainbench matrix --schema` lists them."""
    model: str | None = None
    """The model name sent in requests (default: the brain, the alias, or the profile name)."""
    command: list[str] | str | None = None
    """The full command line (required for kind=command; replaces the default for the others).
    Placeholders: {host} {port} {model} {model_path} {python} {chat_template_file}."""
    args: list[str] = Field(default_factory=list)
    """Extra flags appended to the command line (placeholders work here too)."""
    env: dict[str, str] = Field(default_factory=dict)
    """Environment variables for the server process (added to brainbench's own)."""
    host: str = "127.0.0.1"
    """The address the server binds (loopback unless the profile says otherwise)."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """Fixed port; default a free one."""
    health_url: str | None = None
    """Polled until it answers HTTP 200 (default: the kind's own health URL)."""
    ready_timeout_s: float = Field(default=300.0, gt=0)
    """How long the server may take to become healthy."""
    api: Literal["openai", "ollama"] | None = None
    """Wire API (default: the kind's; openai for all but ollama)."""
    api_key_env: str | None = None
    """Environment variable holding the API key requests carry."""
    chat_template_file: str | None = None
    """A Jinja chat template file: llama-server --chat-template-file, vLLM/SGLang --chat-template FILE."""
    chat_template: str | None = None
    """A built-in template name (llama-server --chat-template NAME) or, for vLLM, an inline template."""

    @model_validator(mode="after")
    def _one_template(self) -> ServerConfig:
        if self.chat_template_file and self.chat_template:
            raise ValueError("give chat_template_file or chat_template, not both")
        return self

    @property
    def wire_api(self) -> str:
        return self.api or get_kind(self.kind).api


class ServerKind:
    """One engine: how to start it, when it is healthy, where its metrics are, which miner reads its log,
    and how it describes itself for the record. Subclass, set `name`, decorate with `@register`."""

    name: ClassVar[str] = ""
    """The profile's `kind:` value."""
    config: ClassVar[type[ServerConfig]] = ServerConfig
    """The pydantic model of this kind's profile fields (a ServerConfig subclass when it has fields of its own)."""
    api: ClassVar[str] = "openai"
    """The wire API a profile gets unless it says `api:`."""
    starts_process: ClassVar[bool] = True
    """False for a server brainbench only finds (kind=endpoint): nothing is started or stopped."""
    health_path: ClassVar[str] = "/health"
    """Polled on the server's root until HTTP 200."""
    metrics_path: ClassVar[str | None] = None
    """Where the server serves Prometheus text (for `brainbench watch`), if it does."""
    log_miner: ClassVar[str | None] = None
    """The `brainbench logs <miner>` that reads this server's log, if any."""
    version_path: ClassVar[str | None] = None
    """A JSON endpoint that says the engine's version (read once the server is healthy)."""
    param_aliases: ClassVar[dict[str, list[str]]] = {}
    """Short sweep parameter names (`--param ubatch=...`) and the flags each one sets."""
    path_fields: ClassVar[tuple[str, ...]] = ("chat_template_file",)
    """Config fields holding paths, resolved relative to the profile file."""
    record_strip: ClassVar[tuple[str, ...]] = ("--host", "--port")
    """Flags whose value differs between machines and runs: left out of the record's args."""

    def default_command(self, cfg: ServerConfig, model: str) -> list[str]:
        """The command line when the profile gives none (placeholders allowed)."""
        raise BrainbenchError(f"kind={self.name} needs command (the server's command line)")

    def template_flags(self, cfg: ServerConfig) -> list[str]:
        """The flags that hand the profile's chat template to this engine."""
        return []

    def prepare(self, cfg: ServerConfig) -> None:
        """Fetch or build what the command needs, before a start (never for printing a command line)."""

    def placeholders(self, cfg: ServerConfig) -> dict[str, str]:
        """Extra command-line placeholders (no side effects: `prepare` does the fetching)."""
        return {}

    def environment(self, cfg: ServerConfig, port: int | None) -> dict[str, str]:
        """Variables the engine needs beyond the profile's `env` (the profile's win); port None: not chosen yet."""
        return {}

    def root_url(self, cfg: ServerConfig, port: int | None) -> str:
        return f"http://{cfg.host}:{port}"

    def base_url(self, cfg: ServerConfig, port: int | None) -> str:
        """Where requests go: the root plus /v1 for the OpenAI API."""
        root = self.root_url(cfg, port)
        return root if cfg.wire_api == "ollama" else root + "/v1"

    def health_url(self, cfg: ServerConfig, port: int | None) -> str:
        return self.root_url(cfg, port) + self.health_path

    def metrics_url(self, cfg: ServerConfig, port: int | None) -> str | None:
        return self.root_url(cfg, port) + self.metrics_path if self.metrics_path else None

    def watched_pid(self, cfg: ServerConfig) -> int | None:
        """For a server brainbench did not start: a process to watch for memory and death."""
        return None

    def version(self, cfg: ServerConfig, port: int | None) -> str | None:
        """The engine's own word on its version, read from `version_path`; None when it does not say."""
        if not self.version_path:
            return None
        try:
            data = httpx.get(self.root_url(cfg, port) + self.version_path, timeout=5.0).json()
        except (httpx.HTTPError, ValueError):
            return None
        return self.version_from(data) if isinstance(data, dict) else None

    def version_from(self, data: dict[str, Any]) -> str | None:
        v = data.get("version")
        return str(v) if v else None

    def record_words(self, cfg: ServerConfig, words: list[str]) -> list[str]:
        """The command line as the record keeps it: `record_strip` flags (and their values) left out."""
        from .record import strip_flags

        return strip_flags(words, self.record_strip)

    def describe(self, cfg: ServerConfig) -> dict[str, Any]:
        """Fields of the server record beyond the common ones (e.g. the embedded brain and its sha256)."""
        return {}


_KINDS: dict[str, ServerKind] = {}


def register(cls: type[ServerKind]) -> type[ServerKind]:
    """Class decorator: make `cls` the kind its `name` says (a later registration of the name replaces it)."""
    if not cls.name:
        raise TypeError(f"{cls.__name__}: a server kind needs a name")
    _KINDS[cls.name] = cls()
    return cls


def get_kind(name: str) -> ServerKind:
    """The registered kind `name`; one line naming the nearest kind when there is none."""
    if name not in _KINDS:
        near = difflib.get_close_matches(name, list(_KINDS), n=1, cutoff=0.6)
        hint = f"; did you mean {near[0]!r}?" if near else f" (known: {', '.join(sorted(_KINDS))})"
        raise UnknownKind(f"unknown server kind {name!r}{hint}")
    return _KINDS[name]


def kinds() -> dict[str, ServerKind]:
    """All registered kinds by name."""
    return dict(_KINDS)
