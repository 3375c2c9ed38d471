"""The one recorded shape of a server's configuration: `run`, `speed` and matrix legs all store a ServerRecord.

Run directories written before the registry hold one of two older shapes; `ServerRecord.from_stored` reads
all three, so a reader never needs to know which one it got.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD")


def mask_env(env: dict[str, str]) -> dict[str, str]:
    """Environment for the record: values of secret-looking names become ***."""
    return {k: ("***" if any(w in k.upper() for w in SECRET_WORDS) else v) for k, v in env.items()}


def strip_flags(words: list[str], flags: tuple[str, ...]) -> list[str]:
    """`words` without each `flag value` pair (and `flag=value`) named in `flags`."""
    out, i = [], 0
    while i < len(words):
        w = words[i]
        if w in flags:
            i += 2
            continue
        if w.split("=", 1)[0] in flags and "=" in w:
            i += 1
            continue
        out.append(w)
        i += 1
    return out


class ServerRecord(BaseModel):
    """A server's configuration as it affects results: no port, no host, no machine paths, secrets masked."""

    model_config = ConfigDict(extra="ignore")

    kind: str
    """The registered server kind (llama-server, vllm, sglang, ollama, command, endpoint)."""
    model: str | None = None
    """The model name requests carry."""
    brain: str | None = None
    """The embedded brain, when it is one."""
    model_sha256: str | None = None
    """SHA-256 of the model file, where brainbench knows it (embedded brains)."""
    model_file: str | None = None
    """The model file's name (not its directory), when the profile gives a path."""
    program: str | None = None
    """The executable's name (not its directory); none for an endpoint."""
    args: list[str] = Field(default_factory=list)
    """The command line after the program, less host, port and the model file path."""
    env: dict[str, str] = Field(default_factory=dict)
    """The profile's environment for the server, secrets masked (***)."""
    base_url: str | None = None
    """kind=endpoint: where the running server was found."""
    api: str = "openai"
    """Wire API: openai or ollama."""
    chat_template_file: str | None = None
    """The chat template file the profile hands the server (its content counts in profile_id)."""
    profile_id: str | None = None
    """The matrix profile's identity hash, when a profile started it."""
    version: str | None = None
    """The engine's version as the server (or brainbench's pinned build) says it; None when unknown."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def server(self) -> str:
        """The kind again, under the key the first stored shape used (reports written for it read it)."""
        return self.kind

    def dump(self) -> dict[str, Any]:
        """The dict stored in run meta (`server`, `speed_server`) and in attempt configs."""
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def from_stored(cls, data: dict[str, Any] | None) -> ServerRecord | None:
        """Any stored shape: this one, the first run/speed shape, or the first matrix shape; None for none."""
        if not data:
            return None
        d = dict(data)
        if "kind" not in d and "endpoint" in d:  # first run shape, user endpoint: {endpoint, api}
            return cls(kind="endpoint", base_url=d["endpoint"], api=d.get("api") or "openai")
        if "kind" not in d:  # first run shape, embedded brain: {brain, model_sha256, server, args}
            d["kind"] = d.get("server") or "llama-server"
        elif isinstance(d.get("command"), list) and "program" not in d:  # first matrix shape: the full command
            cmd = [str(w) for w in d.pop("command")]
            d["program"], d["args"] = (Path(cmd[0]).name, cmd[1:]) if cmd else (None, [])
        return cls.model_validate(d)
