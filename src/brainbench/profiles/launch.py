"""Start the server a profile names, wait until it is healthy, warm it up, watch it, stop it.

Every kind goes through the same path: a command line (built from the profile, placeholders filled in),
the profile's environment, output appended to a log file in the run directory, a health URL polled until it
answers 200 (never racing a loading server), and a process group that is stopped as a whole (vLLM and
SGLang spawn workers) on exit, on Ctrl-C, and through PR_SET_PDEATHSIG when brainbench itself is killed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from ..backend.fetch import SetupError
from ..backend.server import _die_with_parent, free_port
from ..client import ChatClient, Endpoint
from ..core.errors import BrainbenchError
from .schema import Profile, ServerSpec, Warmup, command_words

_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD")

_LIVE: set["ServerHandle"] = set()
"""Servers started and not yet stopped (stop_all() ends them all, e.g. from a SIGTERM handler)."""


_STOPPING = [False]


def stop_all() -> None:
    """Stop every server this process started and has not stopped yet; start no new one after this."""
    _STOPPING[0] = True
    for h in list(_LIVE):
        h.stop()


class ServerFailed(BrainbenchError):
    """The server did not start, never became healthy, failed its warm-up, or died."""

    def __init__(self, message: str, phase: str = "start"):
        super().__init__(message)
        self.phase = phase


def served_model(profile: Profile) -> str:
    s = profile.server
    return s.model or s.brain or profile.name


def _template_flags(s: ServerSpec) -> list[str]:
    if s.kind == "llama-server":
        if s.chat_template_file:
            return ["--chat-template-file", s.chat_template_file]
        if s.chat_template:
            return ["--chat-template", s.chat_template]
    elif s.kind in ("vllm", "sglang"):
        if s.chat_template_file or s.chat_template:
            return ["--chat-template", s.chat_template_file or s.chat_template or ""]
    return []


class ServerHandle:
    """One profile's server. `start()` returns once it is healthy; `endpoint` is where to send requests."""

    def __init__(self, profile: Profile, log_path: Path):
        self.profile = profile
        self.spec = profile.server
        self.log_path = Path(log_path)
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.model_path: str | None = None
        self.starts = 0
        self.started_at: float | None = None

    # -- the command line -------------------------------------------------------------------------------

    def _resolve_model_path(self) -> str | None:
        s = self.spec
        if s.kind != "llama-server" or self.model_path:
            return self.model_path or s.model_path
        if s.model_path:
            self.model_path = s.model_path
        elif s.brain:
            from ..backend import ensure_brain

            self.model_path = str(ensure_brain(s.brain))
        return self.model_path

    def _llama_binary(self) -> str:
        if self.spec.binary:
            return self.spec.binary
        from ..backend.build import binary, build

        exe = binary("llama-server")
        if exe is None:
            build()
            exe = binary("llama-server")
        if exe is None:
            raise SetupError("llama-server is not built yet: run `brainbench setup`")
        return str(exe)

    def command(self, port: int | None = None) -> list[str]:
        """The full command line for `port` (None: this server's port)."""
        s = self.spec
        if s.kind == "endpoint":
            return []
        port = port or self.port or s.port or 8080
        model = served_model(self.profile)
        if s.command:
            base = command_words(s.command)
        elif s.kind == "llama-server":
            base = [self._llama_binary(), "-m", "{model_path}", "--host", "{host}", "--port", "{port}", "--jinja",
                    "-c", str(s.ctx_per_slot * s.parallel), "--parallel", str(s.parallel), "--no-webui",
                    *(["-t", str(s.threads)] if s.threads else []), "--alias", model]
        elif s.kind == "vllm":
            base = ["vllm", "serve", model, "--host", "{host}", "--port", "{port}", "--served-model-name", model]
        elif s.kind == "sglang":
            base = [sys.executable, "-m", "sglang.launch_server", "--model-path", model, "--host", "{host}",
                    "--port", "{port}", "--served-model-name", model]
        elif s.kind == "ollama":
            base = ["ollama", "serve"]
        else:  # pragma: no cover - the schema requires a command for kind=command
            raise BrainbenchError("kind=command needs a command")
        words = base + ([] if s.command else _template_flags(s)) + list(s.args)
        if s.command and s.kind != "command":
            words += _template_flags(s)
        subs = {"host": s.host, "port": str(port), "model": model, "python": sys.executable,
                "model_path": self._resolve_model_path() or "", "chat_template_file": s.chat_template_file or ""}
        return [_fill(w, subs) for w in words]

    def environment(self, port: int | None = None) -> dict[str, str]:
        env = {k: _fill(v, {"host": self.spec.host, "port": str(port or self.port or 8080)}) for k, v in self.spec.env.items()}
        if self.spec.kind == "ollama":
            env.setdefault("OLLAMA_HOST", f"{self.spec.host}:{port or self.port or 11434}")
        return env

    def command_line(self, port: int | None = None) -> str:
        """A ready-to-paste shell command (environment first)."""
        env = self.environment(port)
        prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        return (prefix + " " if prefix else "") + shlex.join(self.command(port))

    def public(self) -> dict[str, Any]:
        """The server configuration as it affects results: no port, no host, secrets masked."""
        s = self.spec
        out: dict[str, Any] = {"kind": s.kind, "model": served_model(self.profile), "profile_id": self.profile.identity()}
        if s.brain:
            out["brain"] = s.brain
        if s.kind == "endpoint":
            out["base_url"] = s.base_url
            return out
        words = self.command(port=1)
        skip = {"--port", "--host"}
        kept, i = [], 0
        while i < len(words):
            if words[i] in skip:
                i += 2
                continue
            kept.append(words[i])
            i += 1
        out["command"] = kept
        out["env"] = {k: ("***" if any(w in k.upper() for w in _SECRET_WORDS) else v) for k, v in s.env.items()}
        if s.chat_template_file:
            out["chat_template_file"] = s.chat_template_file
        return out

    # -- lifecycle -------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        s = self.spec
        if s.kind == "endpoint":
            return s.base_url or ""
        root = f"http://{s.host}:{self.port}"
        return root if s.wire_api == "ollama" else root + "/v1"

    @property
    def endpoint(self) -> Endpoint:
        key = os.environ.get(self.spec.api_key_env) if self.spec.api_key_env else None
        return Endpoint(self.base_url, served_model(self.profile), self.spec.wire_api, key)

    def health_url(self) -> str:
        s = self.spec
        if s.health_url:
            return _fill(s.health_url, {"host": s.host, "port": str(self.port)})
        if s.kind == "endpoint":
            base = (s.base_url or "").rstrip("/")
            return base.removesuffix("/v1") + "/api/tags" if s.wire_api == "ollama" else base + "/models"
        if s.kind == "ollama":
            return f"http://{s.host}:{self.port}/api/tags"
        return f"http://{s.host}:{self.port}/health"

    def start(self) -> "ServerHandle":
        """Start (or, for an endpoint, find) the server and wait until its health URL says 200."""
        if _STOPPING[0]:
            raise KeyboardInterrupt("stopping: no new server is started")
        self.starts += 1
        if self.spec.kind == "endpoint":
            self._await_ready()
            self.started_at = time.time()
            return self
        self.port = self.spec.port or free_port()
        cmd = self.command()
        env = {**os.environ, **self.environment()}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n$ {self.command_line()}\n".encode())
            log.flush()
            exe = cmd[0]
            if not (Path(exe).is_file() or shutil.which(exe)):
                log.write(f"brainbench: {exe}: command not found\n".encode())
                raise ServerFailed(f"{exe}: command not found (is {self.spec.kind} installed?)")
            try:
                self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             env=env, preexec_fn=_die_with_parent)
            except OSError as e:
                raise ServerFailed(f"{exe}: cannot start: {e.strerror}") from None
        _LIVE.add(self)
        self.started_at = time.time()
        self._await_ready()
        return self

    def _await_ready(self) -> None:
        deadline = time.monotonic() + self.spec.ready_timeout_s
        url = self.health_url()
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServerFailed(f"server exited during start-up ({self.exit_info()}); log: {self.log_path}")
            try:
                r = httpx.get(url, timeout=2.0)
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code}"
            except httpx.HTTPError as e:
                last = type(e).__name__
            time.sleep(0.1)
        self.stop()
        raise ServerFailed(f"server not healthy after {self.spec.ready_timeout_s:.0f}s ({url}: {last}); "
                           f"log: {self.log_path}")

    def alive(self) -> bool:
        if self.spec.kind == "endpoint":
            return _pid_alive(self.spec.pid) if self.spec.pid else True
        return self.proc is not None and self.proc.poll() is None

    def exit_info(self) -> str:
        code = self.proc.poll() if self.proc is not None else None
        what = f"exit code {code}" if code is not None and code >= 0 else \
            f"killed by signal {-code}" if code is not None else "still running"
        return f"{what}; last log line: {_last_line(self.log_path)}"

    def stop(self) -> None:
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

    def restart(self) -> "ServerHandle":
        self.stop()
        return self.start()

    def __enter__(self) -> "ServerHandle":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- watching --------------------------------------------------------------------------------------

    def pid(self) -> int | None:
        if self.spec.kind == "endpoint":
            return self.spec.pid
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def memory(self) -> dict[str, float | None]:
        """RSS of the server's process tree (MiB) and, where nvidia-smi answers, its GPU memory (MiB)."""
        pid = self.pid()
        if pid is None:
            return {"rss_mb": None, "vram_mb": None}
        pids = _tree(pid)
        rss = sum(_rss_kb(p) for p in pids) / 1024
        return {"rss_mb": round(rss, 1), "vram_mb": _vram_mb(pids)}


def _fill(word: str, subs: dict[str, str]) -> str:
    for k, v in subs.items():
        word = word.replace("{" + k + "}", v)
    return word


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip() and not ln.startswith("$ ")]
        return lines[-1][:200] if lines else "no output"
    except OSError:
        return "no log"


def _pid_alive(pid: int) -> bool:
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


async def warm_up(endpoint: Endpoint, warmup: Warmup) -> dict[str, Any]:
    """Send the warm-up requests; raises ServerFailed when none succeeds."""
    if warmup.requests == 0:
        return {"requests": 0}
    t0 = time.monotonic()
    errors = []
    ok = 0
    async with ChatClient(endpoint, timeout=warmup.timeout_s, retries=2, backoff=0.5) as client:
        for _ in range(warmup.requests):
            try:
                await client.chat([{"role": "user", "content": warmup.prompt}], max_tokens=warmup.max_tokens,
                                  temperature=0)
                ok += 1
            except BrainbenchError as e:
                errors.append(str(e))
    if ok == 0:
        raise ServerFailed(f"warm-up failed: {errors[-1] if errors else 'no reply'}", phase="warmup")
    return {"requests": warmup.requests, "ok": ok, "wall_s": round(time.monotonic() - t0, 3)}
