"""The options of one run, typed, with their defaults in one place.

`brainbench run` and `demo` build a `RunConfig`, the run directory stores it (meta `run`), `--resume` loads
it back, and matrix/profile agentic legs build one from their leg. Run directories written before this
model (a hand-built dict, sometimes with a stray `think_mode`) load through `RunConfig.load`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import BrainbenchError


class BackendOptions(BaseModel):
    """Which brain answers: an embedded brain (`brain`) or a user endpoint (`endpoint` + `model`). No API key."""

    model_config = ConfigDict(extra="forbid")

    brain: str | None = None
    """Embedded brain name (e.g. brain-small); None with an endpoint."""
    engine: Literal["llama", "vllm"] = "llama"
    """The embedded engine serving the brain: llama (llama-server, the GGUF) or vllm (bf16 from the same GGUF)."""
    endpoint: str | None = None
    """OpenAI-compatible base URL, e.g. http://host:8000/v1."""
    replicas: list[str] = Field(default_factory=list)
    """Further base URLs serving the same model (`--endpoint` given more than once): the run is spread over
    `endpoint` and these (`runner.replicas`). Empty for one endpoint, so its stored options and keys are unchanged."""
    model: str | None = None
    """Model name the endpoint serves."""
    api: Literal["openai", "ollama"] = "openai"
    """Wire API: openai (chat completions) or ollama (native /api/chat)."""
    api_key_env: str | None = None
    """Environment variable holding the API key (the key itself is never stored)."""
    server_args: list[str] = Field(default_factory=list)
    """Extra llama-server flags for an embedded brain (e.g. ["-ub", "256"])."""
    threads: int | None = None
    """llama-server threads for an embedded brain (None: its default)."""
    allow_remote: bool = False
    """Let `server_args` bind the embedded server beyond 127.0.0.1 (`--host 0.0.0.0`); off, such a flag is refused."""

    @property
    def endpoints(self) -> list[str]:
        """Every endpoint the run talks to: `endpoint` first, then the replicas."""
        return [self.endpoint, *self.replicas] if self.endpoint else []

    def stored(self) -> dict[str, Any]:
        """The compact form the run meta keeps (only what was set, as before this model)."""
        return self.model_dump(mode="json", exclude_defaults=True)


class RunConfig(BaseModel):
    """Everything `brainbench run` needs besides the run directory; stored so `--resume` repeats it."""

    model_config = ConfigDict(extra="forbid")

    packs: list[str] = Field(default_factory=list)
    """Packs to run (the CLI uses ["smoke"] when neither a pack nor a suite is named)."""
    suites: list[str] = Field(default_factory=list)
    """Named groups of packs, e.g. "agentic"."""
    pack_dirs: list[str] = Field(default_factory=list)
    """Extra folders of packs."""
    backend: BackendOptions = Field(default_factory=BackendOptions)
    """Which brain answers."""
    trials: int = Field(default=1, ge=1)
    """Trials per scenario (for pass^k)."""
    concurrency: int = Field(default=1, ge=1)
    """Attempts in flight at once, per replica where the run has several (the only option --resume may change)."""
    retries: int = Field(default=1, ge=0)
    """Re-dispatches after a protocol violation."""
    timeout: float = Field(default=300.0, gt=0)
    """Seconds per request before it counts as an infrastructure timeout."""
    request_timeout: float | None = Field(default=None, gt=0)
    """Total seconds one request may take end to end (a stream that never ends is cut there); None: the read
    timeout plus max_tokens at 2 tok/s."""
    limit_per_pack: int | None = Field(default=None, ge=1)
    """At most this many scenarios per pack, spread evenly over it (`brainbench.packs.limit`); None: all."""
    think: Literal["on", "off", "both"] | None = None
    """Reasoning switch (chat_template_kwargs.enable_thinking); both: each pack twice. None: the server's default."""
    harness: Literal["minimal", "agent"] = "minimal"
    """How each scenario is wrapped: minimal (as written) or agent (a long agent-framework system prompt, 20-40
    tools with distractors, the task in ticket context). Part of the attempt key except for minimal."""

    def stored(self) -> dict[str, Any]:
        """The JSON the run directory keeps (meta `run`; the export's `run` object)."""
        return {**self.model_dump(mode="json"), "backend": self.backend.stored()}

    @classmethod
    def load(cls, data: dict[str, Any], source: str = "run options") -> RunConfig:
        """Read stored options; older run dirs kept a hand-built dict: unknown keys (think_mode) are dropped."""
        known = {k: v for k, v in data.items() if k in cls.model_fields and v is not None}
        return cls.build(source, **known)

    @classmethod
    def build(cls, source: str = "run options", **fields: Any) -> RunConfig:
        """Validate, turning a bad value into one `error:` line instead of a traceback."""
        try:
            return cls.model_validate(fields)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(x) for x in err["loc"]) or "options"
            raise BrainbenchError(f"{source}: {where}: {err['msg']}") from None


DEFAULTS = RunConfig()
"""The defaults, for option declarations elsewhere (CLI, profile legs) to read instead of repeating."""
