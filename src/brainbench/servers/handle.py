"""One running server of any kind: start it, wait until healthy, watch it, stop it on every exit path.

Every kind goes through the same path: a command line (the kind's default or the profile's, placeholders
filled in), the profile's environment, output appended to a log file in the run directory, a health URL
polled until it answers 200 (never racing a loading server), and a process group stopped as a whole (vLLM
and SGLang spawn workers) on exit, on Ctrl-C, and through PR_SET_PDEATHSIG when brainbench itself is killed.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, Self

import httpx

from ..client import Endpoint
from ..core.errors import BrainbenchError
from .base import ServerConfig, ServerKind, get_kind
from .record import ServerRecord, mask_env

_LIVE: set[RunningServer] = set()
"""Servers started and not yet stopped (stop_all() ends them all, e.g. from a SIGTERM handler)."""

_STOPPING = [False]


class ServerDied(BrainbenchError):
    """The server process exited while work was running on it."""


async def guarded(coro: Awaitable[Any], server: Any, poll_s: float = 0.25, what: str = "mid-leg") -> Any:
    """Run `coro`, cancelling it and raising ServerDied as soon as `server` (anything with alive() and
    exit_info()) is gone: a dead server must stop the work at once, not turn every request left into an
    infrastructure error."""
    task = asyncio.ensure_future(coro)
    while True:
        done, _ = await asyncio.wait({task}, timeout=poll_s)
        if task in done:
            return task.result()
        if not server.alive():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise ServerDied(f"the server died {what} ({server.exit_info()})")


class ServerFailed(BrainbenchError):
    """The server did not start, never became healthy, failed its warm-up, or died."""

    def __init__(self, message: str, phase: str = "start"):
        super().__init__(message)
        self.phase = phase


def stop_all() -> None:
    """Stop every server this process started and has not stopped yet; start no new one after this."""
    _STOPPING[0] = True
    for h in list(_LIVE):
        h.stop()


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


def fill(word: str, subs: dict[str, str]) -> str:
    """Replace each {name} placeholder in `word`."""
    for k, v in subs.items():
        word = word.replace("{" + k + "}", v)
    return word


def command_words(cmd: list[str] | str) -> list[str]:
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


class RunningServer:
    """One server as its config says. `start()` returns once it is healthy; `endpoint` is where to send requests."""

    def __init__(self, cfg: ServerConfig, log_path: Path, model: str | None = None):
        self.cfg = cfg
        self.kind: ServerKind = get_kind(cfg.kind)
        self.model = model or cfg.model
        """The model name requests carry (and llama-server's --alias)."""
        self.log_path = Path(log_path)
        self.proc: subprocess.Popen | None = None
        self.port: int | None = cfg.port
        self.starts = 0
        self.started_at: float | None = None
        self.version: str | None = None

    # -- the command line ---------------------------------------------------------------------------------

    def _placeholders(self, port: int) -> dict[str, str]:
        c = self.cfg
        return {"host": c.host, "port": str(port), "model": self.model or "", "python": sys.executable,
                "chat_template_file": c.chat_template_file or "", "model_path": "", **self.kind.placeholders(c)}

    def command(self, port: int | None = None) -> list[str]:
        """The full command line for `port` (None: this server's port); empty for a server not started here."""
        if not self.kind.starts_process:
            return []
        port = port or self.port or 8080
        c, tflags = self.cfg, self.kind.template_flags(self.cfg)
        if c.command:
            words = command_words(c.command) + list(c.args) + tflags
        else:
            words = self.kind.default_command(c, self.model or "") + tflags + list(c.args)
        subs = self._placeholders(port)
        return [fill(w, subs) for w in words]

    def environment(self, port: int | None = None) -> dict[str, str]:
        port = port or self.port
        env = {k: fill(v, {"host": self.cfg.host, "port": str(port or 8080)}) for k, v in self.cfg.env.items()}
        return {**env, **{k: v for k, v in self.kind.environment(self.cfg, port).items() if k not in env}}

    def command_line(self, port: int | None = None) -> str:
        """A ready-to-paste shell command (environment first); an endpoint's URL for a server not started here."""
        if not self.kind.starts_process:
            return self.base_url
        env = self.environment(port)
        prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        return (prefix + " " if prefix else "") + shlex.join(self.command(port))

    def record(self, profile_id: str | None = None) -> ServerRecord:
        """The server's configuration as it affects results (the one recorded shape)."""
        c = self.cfg
        words = self.kind.record_words(c, self.command(port=1))
        # {python} is this interpreter, named python, python3 or python3.11 on different machines: one name
        program = "python" if words and words[0] == sys.executable else Path(words[0]).name if words else None
        return ServerRecord(
            kind=c.kind, model=self.model, program=program, args=words[1:],
            env=mask_env(c.env), api=c.wire_api, chat_template_file=c.chat_template_file, profile_id=profile_id,
            version=self.version, **self.kind.describe(c))

    # -- lifecycle ----------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self.kind.base_url(self.cfg, self.port)

    @property
    def endpoint(self) -> Endpoint:
        key = os.environ.get(self.cfg.api_key_env) if self.cfg.api_key_env else None
        return Endpoint(self.base_url, self.model or "", self.cfg.wire_api, key)

    def health_url(self) -> str:
        if self.cfg.health_url:
            return fill(self.cfg.health_url, {"host": self.cfg.host, "port": str(self.port)})
        return self.kind.health_url(self.cfg, self.port)

    def metrics_url(self) -> str | None:
        return self.kind.metrics_url(self.cfg, self.port)

    def start(self) -> Self:
        """Start (or, for an endpoint, find) the server and wait until its health URL says 200."""
        if _STOPPING[0]:
            raise KeyboardInterrupt("stopping: no new server is started")
        self.starts += 1
        if self.kind.starts_process:
            self.kind.prepare(self.cfg)
            self.port = self.cfg.port or free_port()
            self._spawn()
        self.started_at = time.time()
        self._await_ready()
        self.version = self.version or self.kind.version(self.cfg, self.port)
        return self

    def _spawn(self) -> None:
        cmd = self.command()
        env = {**os.environ, **self.environment()}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n$ {self.command_line()}\n".encode())
            log.flush()
            exe = cmd[0]
            if not (Path(exe).is_file() or shutil.which(exe)):
                log.write(f"brainbench: {exe}: command not found\n".encode())
                raise ServerFailed(f"{exe}: command not found (is {self.kind.name} installed?)")
            try:
                self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             env=env, preexec_fn=_die_with_parent)
            except OSError as e:
                raise ServerFailed(f"{exe}: cannot start: {e.strerror}") from None
        _LIVE.add(self)

    def _await_ready(self) -> None:
        """Poll the health URL through one client (a new one per poll costs a TLS context: on 2 cores that starved
        a vLLM compiling for minutes), every 0.1 s at first and every 0.5 s after the first seconds."""
        t0 = time.monotonic()
        deadline = t0 + self.cfg.ready_timeout_s
        url = self.health_url()
        last = "no answer"
        with httpx.Client(timeout=2.0) as http:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    _LIVE.discard(self)
                    raise ServerFailed(self._startup_death())
                try:
                    r = http.get(url)
                    if r.status_code == 200:
                        return
                    last = f"HTTP {r.status_code}"
                except httpx.HTTPError as e:
                    last = type(e).__name__
                time.sleep(min(0.5, 0.1 + (time.monotonic() - t0) / 20))
        self.stop()
        raise ServerFailed(f"{self.kind.name} not healthy after {self.cfg.ready_timeout_s:.0f}s ({url}: {last}); "
                           f"log: {self.log_path}")

    def _startup_death(self) -> str:
        """One line on why the server died before it was healthy; a signal (SIGILL: wrong CPU) is named."""
        code = self.proc.returncode if self.proc is not None else None
        name, last = self.kind.name, last_line(self.log_path)
        if code is not None and code < 0:
            sig = _signal_name(-code)
            hint = " (an instruction this CPU lacks: rebuild with `brainbench setup`)" if sig == "SIGILL" else ""
            return f"{name} was killed by {sig} during start-up{hint}; last line: {last}; log: {self.log_path}"
        return f"{name} exited during start-up ({last}); exit code {code}; log: {self.log_path}"

    def alive(self) -> bool:
        if not self.kind.starts_process:
            pid = self.kind.watched_pid(self.cfg)
            return pid_alive(pid) if pid else True
        return self.proc is not None and self.proc.poll() is None

    def exit_info(self) -> str:
        code = self.proc.poll() if self.proc is not None else None
        what = f"exit code {code}" if code is not None and code >= 0 else \
            f"killed by signal {-code} ({_signal_name(-code)})" if code is not None else "still running"
        return f"{what}; last log line: {last_line(self.log_path)}"

    def stop(self) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after 15 s. Safe to call twice."""
        _LIVE.discard(self)
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                proc.kill()
            proc.wait()

    def restart(self) -> Self:
        self.stop()
        return self.start()

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- watching -----------------------------------------------------------------------------------------

    def pid(self) -> int | None:
        if not self.kind.starts_process:
            return self.kind.watched_pid(self.cfg)
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def memory(self) -> dict[str, float | None]:
        """RSS of the server's process tree (MiB) and, where nvidia-smi answers, its GPU memory (MiB)."""
        pid = self.pid()
        if pid is None:
            return {"rss_mb": None, "vram_mb": None}
        pids = _tree(pid)
        rss = sum(_rss_kb(p) for p in pids) / 1024
        return {"rss_mb": round(rss, 1), "vram_mb": _vram_mb(pids)}


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def last_line(path: Path) -> str:
    """The server's last non-empty log line (not our `$ command` header)."""
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip() and not ln.startswith("$ ")]
        return lines[-1][:200] if lines else "no output"
    except OSError:
        return "no log"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is dead too
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2] != "Z"
    except (OSError, ValueError, IndexError):
        return True


def _tree(root: int) -> list[int]:
    """`root` and all its descendants (Linux /proc; just `root` elsewhere)."""
    children: dict[int, list[int]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return [root]
    for d in proc.iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _vram_mb(pids: list[int]) -> float | None:
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    total, seen = 0.0, False
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0].isdigit() and int(parts[0]) in pids:
            total += float(parts[1])
            seen = True
    return total if seen else None
