"""A fake model server as a real process, for profile/matrix/soak/sweep tests (and for trying profiles out).

    python -m brainbench.testing.fakeproc --port 8123 [--chunk-gap 0.01] [--die-after 5] [--never-healthy] ...

It speaks the same wire as `FakeServer` (it is one, in its own process) and adds what only a process can
do: be slow to become healthy or never healthy, exit at start-up, die mid-leg, leak memory, slow down.
Every flag is a server "setting" a sweep can vary, so tests sweep it exactly like llama-server flags.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
from typing import Any

from .fakeserver import Reply, _Handler, _Server


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="fakeproc")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--answer", default="OK", help="First word(s) of every reply.")
    ap.add_argument("--words", type=int, default=12, help="Words per reply (the decoded tokens).")
    ap.add_argument("--chunk-gap", type=float, default=0.002, help="Seconds between streamed chunks (sets tok/s).")
    ap.add_argument("--slowdown", type=float, default=0.0, help="Chunk gap grows by this fraction per request served.")
    ap.add_argument("--broken", nargs="?", const="true", default="false", help="Answer garbage (fails every check), twice as fast: seed 004's faster-but-broken config.")
    ap.add_argument("--health-delay", type=float, default=0.0, help="/health says 503 Loading model this long.")
    ap.add_argument("--never-healthy", action="store_true")
    ap.add_argument("--exit-at-start", type=int, default=None, help="Exit at once with this code.")
    ap.add_argument("--die-after", type=int, default=None, help="Exit abruptly when request N+1 arrives.")
    ap.add_argument("--leak-mb", type=float, default=0.0, help="MiB kept per chat request (memory growth).")
    ap.add_argument("--empty-every", type=int, default=0, help="Every Nth reply is HTTP 200 with nothing decoded.")
    ap.add_argument("--empty-delay", type=float, default=1.0)
    ap.add_argument("--loading-first", type=int, default=0, help="The first N chat requests get 503 Loading model.")
    ap.add_argument("--gap-file", default=None, help="Take this start's chunk gap from the first line of the file "
                    "and remove it (the last line stays): a machine whose speed changes from one server start to the next.")
    ap.add_argument("--stamp", action="store_true", help="Each streamed chunk carries x_sent, the moment it was "
                    "sent (time.perf_counter, shared by local processes): a bench can time the path after the server.")
    ap.add_argument("--drop-reused", action="store_true", help="Close a kept-alive connection, unanswered, when a "
                    "second request arrives on it (a server that timed out an idle connection as the client reused it).")
    args, unknown = ap.parse_known_args(argv)
    if unknown:  # llama-server flags (-m, --jinja, -ub, --chat-template-file, ...): accepted, shown, ignored
        print(f"fakeproc: ignoring {' '.join(unknown)}", flush=True)
    return args


class _State:
    def __init__(self, a: argparse.Namespace):
        self.a = a
        self.t0 = time.monotonic()
        self.requests = 0
        self.lock = threading.Lock()
        self.leak: list[bytearray] = []


def _next_gap(path: str, default: float) -> float:
    with open(path) as f:
        lines = [ln.strip() for ln in f if ln.strip()]
    if not lines:
        return default
    if len(lines) > 1:
        with open(path, "w") as f:
            f.write("\n".join(lines[1:]) + "\n")
    print(f"fakeproc: chunk gap {lines[0]} from {path}", flush=True)
    return float(lines[0])


def main(argv: list[str] | None = None) -> None:
    a = _args(argv)
    print(f"fakeproc: pid {os.getpid()} port {a.port}", flush=True)
    if a.exit_at_start is not None:
        print("fakeproc: error: failed to load model (exit-at-start)", flush=True)
        sys.exit(a.exit_at_start)
    if a.gap_file:
        a.chunk_gap = _next_gap(a.gap_file, a.chunk_gap)
    st = _State(a)
    broken = a.broken.lower() in ("1", "true", "yes", "on")

    def brain(body: dict[str, Any]) -> Reply:
        with st.lock:
            n = st.requests
        if a.empty_every and n % a.empty_every == 0:
            return Reply(content="", delay=a.empty_delay, usage={"prompt_tokens": 5, "completion_tokens": 0,
                                                                  "total_tokens": 5})
        words = ["garbage"] * a.words if broken else (a.answer.split() + ["word"] * a.words)[: max(a.words, 1)]
        text = " ".join(words)
        max_tokens = body.get("max_tokens")
        if isinstance(max_tokens, int) and max_tokens < len(words):
            text = " ".join(words[:max_tokens])
        gap = a.chunk_gap * (1 + a.slowdown * n) / (2 if broken else 1)
        n_words = len(text.split())
        prompt = 5 + sum(len(str(m.get("content") or "").split()) for m in body.get("messages", []))
        return Reply(content=text, chunk_gap=gap,
                     usage={"prompt_tokens": prompt, "completion_tokens": n_words, "total_tokens": prompt + n_words})

    class Handler(_Handler):
        def setup(self) -> None:
            super().setup()  # small streamed chunks must leave at once, as a real server's do (no Nagle delay)
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self) -> None:  # noqa: N802
            if self.path in ("/health", "/v1/health"):
                if a.never_healthy or time.monotonic() - st.t0 < a.health_delay:
                    self._json(503, {"error": {"message": "Loading model", "code": 503}})
                else:
                    self._json(200, {"status": "ok"})
                return
            super().do_GET()

        def do_POST(self) -> None:  # noqa: N802
            self.served = getattr(self, "served", 0) + 1
            if a.drop_reused and self.served > 1:
                self.close_connection = True
                return
            with st.lock:
                st.requests += 1
                n = st.requests
                if a.leak_mb:
                    st.leak.append(bytearray(b"\x01") * int(a.leak_mb * 2**20))
            if a.die_after is not None and n > a.die_after:
                print(f"fakeproc: dying on request {n} (die-after {a.die_after})", flush=True)
                os._exit(3)
            if n <= a.loading_first:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self._json(503, {"error": {"message": "Loading model", "code": 503}})
                return
            super().do_POST()

    httpd = _Server((a.host, a.port), Handler)
    httpd.brain = brain
    httpd.models = []  # any model name
    httpd.auth_headers = []
    httpd.stamp = a.stamp
    print("fakeproc: listening", flush=True)
    try:
        httpd.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
