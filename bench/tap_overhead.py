"""What does `brainbench tap` add to each request? Median and p95 added latency, streamed and not, in one run.

The same request goes to the same upstream directly and through the tap, alternating (direct, tapped, tapped,
direct, ...) so drift hits both alike; the added latency is the paired difference. Streamed requests are timed
to the first body byte (what an agent waits on before it sees a token) and to the last. The upstream is the
fake model server as its own process (`brainbench.testing.fakeproc`: fast and steady, so the tap's cost is
not lost in a model's noise), or any server with --upstream; the tap runs as its own process, as a user runs it.

Streamed chunks carry the fake server's send time (`fakeproc --stamp`), so the bench also reports each chunk's
trip from the server's send to the agent (what the relay itself adds) and how much longer the server's own
stream took (the tap's CPU taken from a server that shares its cores; `--pin` keeps them apart).

    python bench/tap_overhead.py                        # 200 pairs per mode against fakeproc
    python bench/tap_overhead.py -n 300 --pin           # fakeproc on CPU 0, the tap and the agent on the others
    python bench/tap_overhead.py -n 500 --json          # more pairs; one JSON object
    python bench/tap_overhead.py --upstream http://127.0.0.1:8080 --model brain-small   # a running server

Measured 2026-12-06 on an idle 16-core machine (load 0.0): `-n 300` added 0.79 ms median to a plain reply,
1.06 ms to a stream's first byte and 0.77 ms to its last (p95 2.63); `--pin` 0.73, 1.05 and 0.74 ms.
Measured 2026-12-06 on the shared 2-core development machine (load average 5.6 to 8.0; docs/concepts/tap.md
has every run): `python bench/tap_overhead.py -n 300 --pin` added 0.15 ms median to each streamed chunk's trip,
1.6 to 2.3 ms to a stream's first byte and 1.1 to 3.6 ms to its last (1.66 ms in a `-n 100 --pin` run), 1.4 to
2.7 ms to a plain reply; unpinned, the last byte 4.4 to 6.6 ms, the fake server's own stream 2.7 to 4.2 ms
longer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

SRC = Path(__file__).resolve().parent.parent / "src"
ENV = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _process(argv: list[str], ready: Any, cpus: set[int] | None = None) -> Iterator[subprocess.Popen]:
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    proc = subprocess.Popen(argv, env=ENV, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            preexec_fn=pin)
    try:
        ready(proc)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _fakeproc(cpus: set[int] | None = None) -> contextlib.AbstractContextManager:
    port = _free_port()

    def ready(_: subprocess.Popen) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise SystemExit("fakeproc did not come up")

    cm = _process([sys.executable, "-m", "brainbench.testing.fakeproc", "--port", str(port), "--chunk-gap", "0.002",
                   "--words", "24", "--stamp"], ready, cpus)
    cm.url = f"http://127.0.0.1:{port}/v1"  # type: ignore[attr-defined]
    return cm


def _tap(upstream: str, run_dir: Path) -> tuple[contextlib.AbstractContextManager, dict[str, str]]:
    found: dict[str, str] = {}

    def ready(proc: subprocess.Popen) -> None:
        line = proc.stderr.readline() if proc.stderr else ""
        m = re.search(r"listening on (http://\S+)", line)
        if not m:
            raise SystemExit(f"the tap did not start: {line.strip()}")
        found["url"] = m.group(1) + "/v1"

    argv = [sys.executable, "-m", "brainbench", "tap", "--upstream", upstream, "--listen", "127.0.0.1:0",
            "-o", str(run_dir)]
    return _process(argv, ready), found


_SENT = re.compile(rb'"x_sent": ([0-9.e+-]+)')


def _once(client: httpx.Client, url: str, body: dict[str, Any]) -> tuple[float, float, list[tuple[float, float]]]:
    """(seconds to the first body byte, seconds to the last, (send, arrival) of each chunk the server stamped
    with its send time) for one request."""
    t0 = time.perf_counter()
    first = None
    trips: list[tuple[float, float]] = []
    with client.stream("POST", url + "/chat/completions", json=body) as r:
        for piece in r.iter_raw():
            now = time.perf_counter()
            first = first or now
            trips += [(float(m), now) for m in _SENT.findall(piece)]  # a stamp split across pieces is skipped
        r.raise_for_status()
    end = time.perf_counter()
    return (first or end) - t0, end - t0, trips


def _measure(direct: str, tapped: str, model: str, n: int, stream: bool) -> dict[str, Any]:
    diffs_first, diffs_total, direct_total, diffs_trip, diffs_last_trip, diffs_span = [], [], [], [], [], []
    with httpx.Client(timeout=60) as a, httpx.Client(timeout=60) as b:
        for i in range(n + 5):
            body = {"model": model, "stream": stream, "max_tokens": 32,
                    "messages": [{"role": "user", "content": f"Say hello, request {i}."}]}
            order = [(a, direct), (b, tapped)] if i % 2 == 0 else [(b, tapped), (a, direct)]
            res = {u: _once(c, u, body) for c, u in order}
            if i < 5:
                continue  # warm-up: connections, caches
            diffs_first.append(res[tapped][0] - res[direct][0])
            diffs_total.append(res[tapped][1] - res[direct][1])
            direct_total.append(res[direct][1])
            (_, _, tt), (_, _, dt) = res[tapped], res[direct]
            if len(tt) > 1 and len(dt) > 1:
                diffs_trip.append(statistics.median(b - a for a, b in tt) - statistics.median(b - a for a, b in dt))
                diffs_last_trip.append((tt[-1][1] - tt[-1][0]) - (dt[-1][1] - dt[-1][0]))
                diffs_span.append((tt[-1][0] - tt[0][0]) - (dt[-1][0] - dt[0][0]))
    out = {"stream": stream, "pairs": n,
           "added_ms_first_byte": _summ(diffs_first), "added_ms_total": _summ(diffs_total),
           "direct_ms_total_median": round(statistics.median(direct_total) * 1000, 3)}
    if diffs_trip:
        out["added_ms_chunk_trip"] = _summ(diffs_trip)
        out["added_ms_last_chunk_trip"] = _summ(diffs_last_trip)
        out["added_ms_server_stream"] = _summ(diffs_span)
    return out


def _summ(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    return {"median": round(statistics.median(xs) * 1000, 3), "p95": round(xs[int(0.95 * (len(xs) - 1))] * 1000, 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=200, help="Request pairs per mode (after 5 warm-up pairs).")
    ap.add_argument("--upstream", default=None, help="A running OpenAI-compatible server (default: start fakeproc).")
    ap.add_argument("--model", default="fake")
    ap.add_argument("--json", action="store_true", help="Print one JSON object.")
    ap.add_argument("--pin", action="store_true", help="fakeproc on CPU 0, the tap and the agent on the others: a "
                    "model server has cores (or a GPU) of its own, and on a small machine the tap's CPU would "
                    "otherwise slow the fake server itself.")
    args = ap.parse_args(argv)
    server_cpus = None
    if args.pin:
        cpus = os.sched_getaffinity(0)
        if len(cpus) < 2 or args.upstream:
            raise SystemExit("--pin needs 2 CPUs or more and the fakeproc upstream")
        server_cpus = {min(cpus)}
        os.sched_setaffinity(0, cpus - server_cpus)  # the tap (started below) inherits it
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        upstream = args.upstream
        if upstream is None:
            fake = _fakeproc(server_cpus)
            stack.enter_context(fake)
            upstream = fake.url  # type: ignore[attr-defined]
        tap_cm, found = _tap(upstream, Path(tmp) / "run")
        stack.enter_context(tap_cm)
        direct = upstream.rstrip("/") if upstream.rstrip("/").endswith("/v1") else upstream.rstrip("/") + "/v1"
        rows = [_measure(direct, found["url"], args.model, args.n, s) for s in (False, True)]
    where = f"{args.upstream or 'fakeproc'}{', pinned apart' if args.pin else ''}; load {os.getloadavg()[0]:.1f}"
    if args.json:
        print(json.dumps({"upstream": args.upstream or "fakeproc", "pinned": args.pin, "load": os.getloadavg()[0],
                          "results": rows}, indent=2))
        return 0
    print(f"added latency of brainbench tap per request ({args.n} pairs per mode; upstream: {where})")
    print(f"{'mode':<10} {'first byte median':>18} {'p95':>8} {'total median':>13} {'p95':>8} {'direct total':>13}")
    for r in rows:
        f, t = r["added_ms_first_byte"], r["added_ms_total"]
        print(f"{'stream' if r['stream'] else 'plain':<10} {f['median']:>15.3f} ms {f['p95']:>5.3f} ms "
              f"{t['median']:>10.3f} ms {t['p95']:>5.3f} ms {r['direct_ms_total_median']:>10.3f} ms")
    for r in rows:
        if "added_ms_chunk_trip" in r:
            c, last, span = r["added_ms_chunk_trip"], r["added_ms_last_chunk_trip"], r["added_ms_server_stream"]
            print(f"stream chunks, server send to agent arrival: added {c['median']:.3f} ms median per chunk "
                  f"(p95 {c['p95']:.3f}); last chunk {last['median']:.3f} ms (p95 {last['p95']:.3f})")
            print(f"the server's own first-to-last chunk time, tapped minus direct: {span['median']:.3f} ms "
                  f"(p95 {span['p95']:.3f}): the tap's CPU taken from a server on the same cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
