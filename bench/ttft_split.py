"""Where does TTFT go outside llama-server's own prompt clock? Templating, tokenising, or the wire.

The same cache-busted prompt is sent three ways over a raw socket (TCP_NODELAY, one write, so the client adds
nothing): through /v1/chat/completions (chat template + tokeniser), to /completion as text (tokeniser only),
and to /completion as token ids (neither). For each: client TTFT, time to the response head (llama-server sends
it after templating and tokenising, before prefill), the server's prompt_ms, and TTFT − prompt_ms.

    python bench/ttft_split.py                          # starts the embedded llama-server with brain-small
    python bench/ttft_split.py --base http://127.0.0.1:8080 --lengths 500,2000   # a running llama-server

Standard library only, so it runs where brainbench's dependencies are not installed (the GPU machine).
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import sys
import time
import urllib.request
from contextlib import contextmanager
from typing import Any, Iterator
from urllib.parse import urlsplit

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()


def _post_raw(base: str, path: str, body: dict[str, Any]) -> tuple[float, float | None, dict[str, Any]]:
    """(ttfb_ms, ttft_ms, timings) for one streamed request, stamped on arrival."""
    u = urlsplit(base)
    payload = json.dumps(body).encode()
    req = (f"POST {path} HTTP/1.1\r\nHost: {u.netloc}\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n").encode() + payload
    s = socket.create_connection((u.hostname, u.port or 80))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf, head_at, first_at = b"", None, None
    t0 = time.perf_counter()
    s.sendall(req)
    while True:
        d = s.recv(65536)
        if not d:
            break
        now = time.perf_counter()
        head_at = head_at or now
        buf += d
        if first_at is None and (b'"delta":{"content":"' in buf or b'{"index":0,"content":"' in buf):
            first_at = now
    s.close()
    timings: dict[str, Any] = {}
    for line in buf.decode("utf-8", "replace").splitlines():
        if line.startswith("data: {"):
            timings = json.loads(line[6:]).get("timings") or timings
    return ((head_at or t0) - t0) * 1000, None if first_at is None else (first_at - t0) * 1000, timings


def _json(base: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def split(base: str, words: int, reps: int) -> dict[str, dict[str, float]]:
    """Median over `reps` fresh prompts (the first of reps + 1 is a warm-up) for each way of sending one."""
    rows: dict[str, list[tuple[float, float, float, int]]] = {"chat": [], "completion, text": [], "completion, token ids": []}
    common = {"max_tokens": 4, "n_predict": 4, "temperature": 0, "stream": True, "cache_prompt": False}
    for rep in range(reps + 1):
        rnd = random.Random()
        text = f"{rnd.randint(0, 10**9)} " + " ".join(rnd.choice(WORDS) for _ in range(words))
        ids = _json(base, "/tokenize", {"content": text})["tokens"]
        sent = {"chat": ("/v1/chat/completions", {"messages": [{"role": "user", "content": text}]}),
                "completion, text": ("/completion", {"prompt": text}),
                "completion, token ids": ("/completion", {"prompt": ids})}
        for k, (path, body) in sent.items():
            ttfb, ttft, t = _post_raw(base, path, {**body, **common})
            if rep and ttft is not None and "prompt_ms" in t:
                rows[k].append((ttft, ttfb, t["prompt_ms"], t.get("prompt_n", 0)))
    med = statistics.median
    return {k: {"prompt_n": med(r[3] for r in v), "ttft_ms": med(r[0] for r in v), "ttfb_ms": med(r[1] for r in v),
                "prompt_ms": med(r[2] for r in v), "outside_ms": med(r[0] - r[2] for r in v)}
            for k, v in rows.items() if v}


@contextmanager
def embedded(extra: list[str]) -> Iterator[str]:
    """brain-small on the embedded llama-server (brainbench's LlamaServer: one slot, 127.0.0.1); its root URL."""
    import tempfile
    from pathlib import Path

    from brainbench.backend import ensure_brain
    from brainbench.backend.server import LlamaServer

    with tempfile.TemporaryDirectory() as d, LlamaServer(ensure_brain("brain-small"), log_path=Path(d) / "server.log",
                                                          extra_args=extra) as srv:
        yield srv.base_url.removesuffix("/v1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", help="A running llama-server's root URL (default: start the embedded one).")
    ap.add_argument("--lengths", default="100,500,1800", help="Prompt sizes in words (about a token each).")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--server-args", default="", help="Extra flags for the embedded server, e.g. '--cache-ram 0'.")
    a = ap.parse_args()
    lengths = [int(x) for x in a.lengths.split(",")]

    def run(base: str) -> None:
        out = []
        for n in lengths:
            for k, r in split(base, n, a.reps).items():
                out.append({"words": n, "sent_as": k, **{x: round(y, 1) for x, y in r.items()}})
                print(f"{n:5d} words  {k:22s} prompt_n {r['prompt_n']:6.0f}  TTFT {r['ttft_ms']:9.1f} ms  "
                      f"head {r['ttfb_ms']:6.1f} ms  prompt_ms {r['prompt_ms']:9.1f}  outside {r['outside_ms']:6.1f} ms",
                      flush=True)
        json.dump(out, sys.stderr)
        print(file=sys.stderr)

    if a.base:
        run(a.base.rstrip("/"))
    else:
        with embedded(a.server_args.split()) as base:
            run(base)


if __name__ == "__main__":
    main()
