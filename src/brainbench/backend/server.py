"""Start and stop a real `llama-server` for an embedded brain (or any GGUF file).

A `brainbench.servers.RunningServer` of kind llama-server (the same handle matrix profiles use): binds
127.0.0.1 on a free port, waits for `/health` to say ready (never races a loading server), writes the
server's output into the run directory, and stops it on exit, on Ctrl-C, and (through PR_SET_PDEATHSIG)
even when brainbench itself is killed with SIGKILL: never an orphan.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

from ..servers import RunningServer, ServerFailed, free_port
from ..servers.llama_server import LlamaServerConfig
from .build import binary
from .fetch import SetupError

__all__ = ["LlamaServer", "free_port"]


class LlamaServer(RunningServer):
    """A managed llama-server process. Use as a context manager; `.base_url` ends in /v1."""

    def __init__(self, model_path: Path, *, log_path: Path, ctx_per_slot: int = 8192, parallel: int = 1,
                 threads: int | None = None, alias: str | None = None, extra_args: list[str] | None = None,
                 ready_timeout: float = 300.0, brain: str | None = None):
        exe = binary("llama-server")
        if exe is None:
            raise SetupError("llama-server is not built yet: run `brainbench setup`")
        cfg = LlamaServerConfig(
            kind="llama-server", model_path=str(model_path), brain=brain, binary=str(exe), port=free_port(),
            ctx_per_slot=ctx_per_slot, parallel=parallel, threads=threads, args=list(extra_args or []),
            ready_timeout_s=ready_timeout)
        super().__init__(cfg, Path(log_path), alias)
        self.ready_timeout = ready_timeout

    @property
    def cmd(self) -> list[str]:
        return self.command()

    @property
    def args(self) -> list[str]:
        return self.cmd[1:]

    def profile(self) -> dict[str, Any]:
        """The server record (no port, no paths that differ between machines)."""
        return self.record().dump()

    def start(self) -> Self:
        """Start and wait until healthy; a failure is a SetupError (what run/speed/serve report for setup)."""
        try:
            super().start()
        except ServerFailed as e:
            raise SetupError(str(e)) from None
        return self
