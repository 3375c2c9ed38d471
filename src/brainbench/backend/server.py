"""Start and stop a real `llama-server` for an embedded brain.

Binds 127.0.0.1 on a free port, waits for `/health` to say ready (never races a loading server),
writes the server's output into the run directory, and stops it on exit, on Ctrl-C, and (through
PR_SET_PDEATHSIG) even when brainbench itself is killed with SIGKILL: never an orphan.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from .build import binary
from .fetch import SetupError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """Runs in the child before exec: ask the kernel to SIGTERM it when the parent dies (Linux)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass
    os.setsid()


class LlamaServer:
    """A managed llama-server process. Use as a context manager; `.base_url` ends in /v1."""

    def __init__(self, model_path: Path, *, log_path: Path, ctx_per_slot: int = 8192, parallel: int = 1,
                 threads: int | None = None, alias: str | None = None, extra_args: list[str] | None = None, ready_timeout: float = 300.0):
        exe = binary("llama-server")
        if exe is None:
            raise SetupError("llama-server is not built yet: run `brainbench setup`")
        self.port = free_port()
        self.log_path = log_path
        self.ready_timeout = ready_timeout
        extra = list(extra_args or [])
        ctx = [] if any(a in ("-c", "--ctx-size") for a in extra) else ["-c", str(ctx_per_slot * parallel)]
        self.args = [
            "-m", str(model_path), "--host", "127.0.0.1", "--port", str(self.port), "--jinja",
            *ctx, "--parallel", str(parallel), "--no-webui",
            *(["-t", str(threads)] if threads else []), *(["--alias", alias] if alias else []), *extra,
        ]
        self.cmd = [str(exe), *self.args]
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def profile(self) -> dict[str, Any]:
        """The server config as it affects results (no port, no paths that differ between machines)."""
        skip = {"--port", "--host", "-m"}
        args, out, i = self.args, [], 0
        while i < len(args):
            if args[i] in skip:
                i += 2
                continue
            out.append(args[i])
            i += 1
        return {"server": "llama-server", "args": out}

    def start(self) -> "LlamaServer":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        log.write(f"$ {' '.join(self.cmd)}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     preexec_fn=_die_with_parent)
        log.close()
        self._await_ready()
        return self

    def _await_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        url = f"http://127.0.0.1:{self.port}/health"
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise SetupError(self._exit_message())
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SetupError(f"llama-server not ready after {self.ready_timeout:.0f}s; log: {self.log_path}")

    def _exit_message(self) -> str:
        """One line on why the server died before it was ready; a signal (SIGILL: wrong CPU) is named."""
        code = self.proc.returncode if self.proc is not None else None
        if code is not None and code < 0:
            try:
                sig = signal.Signals(-code).name
            except ValueError:
                sig = f"signal {-code}"
            hint = " (an instruction this CPU lacks: rebuild with `brainbench setup`)" if sig == "SIGILL" else ""
            return f"llama-server was killed by {sig} during start-up{hint}; last line: {self._last_log_line()}; log: {self.log_path}"
        return f"llama-server exited during start-up ({self._last_log_line()}); log: {self.log_path}"

    def _last_log_line(self) -> str:
        try:
            lines = [ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]
            return lines[-1][:200] if lines else "no output"
        except OSError:
            return "no log"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> "LlamaServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
