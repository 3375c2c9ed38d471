"""Where the brain runs: the embedded llama-server (built and fetched here) or any user endpoint."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ..client import Endpoint, EndpointError
from ..servers import RunningServer
from ..servers.vllm import TOOL_CALL_PARSER
from .build import binary, build
from .fetch import MODELS, SetupError, assemble_model, get_model_spec
from .server import LlamaServer


@dataclass
class BackendSpec:
    """Either an embedded brain (`brain`) or a user endpoint (`endpoint` + `model`). Stored without the key."""

    brain: str | None = None
    engine: str = "llama"
    """Which embedded engine serves the brain: llama (llama-server, the GGUF) or vllm (bf16 from the same GGUF)."""
    endpoint: str | None = None
    replicas: list[str] = field(default_factory=list)
    """Further endpoints serving the same model (see `RunConfig.backend.replicas`); in `public()` only when set."""
    model: str | None = None
    api: str = "openai"
    api_key_env: str | None = None
    server_args: list[str] = field(default_factory=list)
    """Extra llama-server flags for an embedded brain (e.g. ["-ub", "256"])."""
    threads: int | None = None
    allow_remote: bool = False
    """Let `server_args` bind beyond 127.0.0.1 (never part of the results' identity)."""

    def label(self) -> str:
        return self.brain or self.model or "?"

    def public(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, [], "") and k != "allow_remote"
                and not (k == "engine" and v == "llama")}  # the default stays out: stored attempt keys keep theirs


LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_EMBEDDED_SLOTS = 64
"""Slots the embedded llama-server gets at most: each slot holds its own context, so -c 1024 would allocate a
thousand contexts (minutes of start-up, gigabytes); requests beyond the slots wait in the server's queue."""


def bind_host(server_args: list[str]) -> str | None:
    """The host `--host`/`--host=` in the extra server flags binds to, when it is not loopback."""
    for i, a in enumerate(server_args):
        host = a.split("=", 1)[1] if a.startswith("--host=") else \
            server_args[i + 1] if a == "--host" and i + 1 < len(server_args) else None
        if host and host not in LOOPBACK:
            return host
    return None


ENGINES = ("llama", "vllm")
"""The embedded engines: llama-server (built here) and vLLM (a pinned CPU build in a venv under the cache)."""


def check_engine(engine: str, endpoint: str | None = None) -> None:
    """--engine names an embedded engine: one of ENGINES, and meaningless beside --endpoint."""
    if engine not in ENGINES:
        raise SetupError(f"--engine must be {' or '.join(ENGINES)}, not {engine!r}")
    if endpoint and engine != "llama":
        raise SetupError("--engine picks the embedded engine; an --endpoint is already running its own")


def ensure_engine(name: str, engine: str = "llama", progress: Callable[[str, int, int], None] | None = None) -> Path:
    """Everything the embedded `engine` needs to serve brain `name`; returns the model it loads (file or folder)."""
    check_engine(engine)
    if engine == "vllm":
        from .vllm import ensure_vllm

        return ensure_vllm(name, progress)
    return ensure_brain(name, progress)


def ensure_brain(name: str, progress: Callable[[str, int, int], None] | None = None) -> Path:
    """Build llama-server and fetch the model if needed; returns the model path."""
    spec = get_model_spec(name)
    if progress and binary("llama-server") is None:
        progress("fetch + build llama-server (once, minutes)", 0, 100)
    build(on_percent=(lambda p: progress("fetch + build llama-server (once, minutes)", p, 100)) if progress else None)
    done = [0]

    def on_bytes(n: int) -> None:
        done[0] += n
        if progress:
            progress(f"assemble {name}", done[0], spec.size)

    return assemble_model(spec, on_bytes)


def api_key(spec: BackendSpec) -> str | None:
    if not spec.api_key_env:
        return None
    key = os.environ.get(spec.api_key_env)
    if not key:
        raise SetupError(f"--api-key-env {spec.api_key_env}: that environment variable is empty or unset")
    return key


@contextlib.contextmanager
def open_backend(spec: BackendSpec, run_dir: Path, parallel: int = 1
                 ) -> Iterator[tuple[Endpoint, dict[str, Any], RunningServer | None]]:
    """Yield (endpoint, server record, the embedded server or None); an embedded server lives exactly as long as
    the block."""
    if spec.brain and spec.engine == "vllm":
        with embedded_vllm(spec.brain, run_dir / "server.log", spec.server_args) as srv:
            yield Endpoint(srv.base_url, spec.brain, "openai"), srv.record().dump(), srv
        return
    if spec.brain:
        model_path = ensure_brain(spec.brain)
        slots = min(max(1, parallel), MAX_EMBEDDED_SLOTS)
        with LlamaServer(model_path, log_path=run_dir / "server.log", parallel=slots, alias=spec.brain,
                         threads=spec.threads, extra_args=spec.server_args, brain=spec.brain) as srv:
            yield Endpoint(srv.base_url, spec.brain, "openai"), srv.profile(), srv
        return
    if not spec.endpoint or not spec.model:
        raise SetupError("give either --brain NAME or both --endpoint URL and --model NAME")
    yield Endpoint(spec.endpoint, spec.model, spec.api, api_key(spec)), endpoint_record(spec), None


@contextlib.contextmanager
def embedded_vllm(brain: str, log_path: Path, extra_args: list[str] | None = None,
                  tool_call_parser: str | None = TOOL_CALL_PARSER) -> Iterator[RunningServer]:
    """brainbench's own vLLM serving `brain` on 127.0.0.1 (a free port), healthy on entry, stopped on exit;
    a start-up failure is a SetupError, as for llama-server."""
    from ..servers import ServerFailed
    from ..servers.vllm import VllmConfig

    cfg = VllmConfig(kind="vllm", brain=brain, args=list(extra_args or []), tool_call_parser=tool_call_parser,
                     ready_timeout_s=1800.0)
    srv = RunningServer(cfg, log_path, brain)
    try:
        srv.start()
    except ServerFailed as e:
        srv.stop()
        raise SetupError(str(e)) from None
    except BaseException:
        srv.stop()
        raise
    try:
        yield srv
    finally:
        srv.stop()


def endpoint_record(spec: BackendSpec) -> dict[str, Any]:
    """The server record of a user endpoint (kind endpoint: found, not started), in the one recorded shape."""
    from ..servers.endpoint import EndpointConfig

    cfg = EndpointConfig.model_validate({"kind": "endpoint", "base_url": spec.endpoint, "model": spec.model, "api": spec.api})
    return RunningServer(cfg, Path(os.devnull)).record().dump()


def check_model_served(ep: Endpoint, timeout: float = 10.0) -> str | None:
    """Fail early, in one line, on a dead endpoint or a model name the server does not serve. Returns a warning
    when the server answers to any name (llama-server) and the name given is not the one it lists: the results
    would be stored under a name that is not the model's."""
    base = ep.base_url.rstrip("/")
    url = base.removesuffix("/v1") + "/api/tags" if ep.api == "ollama" else base + "/models"
    headers = {"Authorization": f"Bearer {ep.api_key}"} if ep.api_key else {}
    try:
        resp = httpx.get(url, timeout=timeout, headers=headers)
    except httpx.HTTPError as e:
        raise EndpointError(f"{ep.base_url}: endpoint not reachable ({type(e).__name__}: {e})") from None
    if resp.status_code != 200:
        return None  # not every server lists models; the first request will tell
    try:
        data = resp.json()
    except ValueError:
        return None
    if not isinstance(data, dict):  # a list, a string, null: not a model list we can read; the first request will tell
        return None
    items = data.get("models" if ep.api == "ollama" else "data") or []
    if not isinstance(items, list):
        return None
    items = [m for m in items if isinstance(m, dict)]
    names = {str(m.get("name") or m.get("id") or m.get("model")) for m in items}
    if any(m.get("owned_by") == "llamacpp" for m in items):  # llama-server serves its one model under any name
        if names and ep.model not in names:
            return (f"{ep.base_url} is llama-server serving {', '.join(sorted(names))} whatever name is asked for; "
                    f"results are stored under {ep.model!r}")
        return None
    if names and ep.model not in names and not any(n.split(":")[0] == ep.model for n in names):
        raise EndpointError(f"{ep.base_url} does not serve model {ep.model!r}; it serves: {', '.join(sorted(names))}")
    return None


__all__ = ["ENGINES", "BackendSpec", "LlamaServer", "check_engine", "embedded_vllm", "ensure_engine", "MODELS", "SetupError", "binary", "build", "check_model_served",
           "ensure_brain", "open_backend"]
