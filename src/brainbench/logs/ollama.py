"""Mine Ollama server logs: GIN request lines carry the status and the latency of every request.

Format (gin's default `LogFormatter`, which Ollama uses):

    [GIN] 2024/05/01 - 12:34:56 | 200 |  1.234567s |       127.0.0.1 | POST     "/api/chat"

The timestamp is when the request ended and the latency is Go's duration text (`850.2µs`, `12.3ms`,
`1m2.5s`); the status and method may be wrapped in ANSI colours. A request's start is its end minus its
latency, which gives how many requests were in flight at once. Runners that print llama.cpp's slot
timing lines (older Ollama builds) are mined by the llama-server miner as well.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from pathlib import Path
from typing import Any

from .common import counter_stats, iter_lines, parse_go_duration, rnd, strip_ansi
from .llama import LlamaParser, report_requests

GIN_RE = re.compile(
    r"\[GIN\] (\d{4})/(\d\d)/(\d\d) - (\d\d):(\d\d):(\d\d) \|\s*(\d{3})\s*\|\s*(\S+)\s*\|\s*(\S*)\s*\|\s*"
    r"([A-Z]+)\s+\"((?:[^\"\\]|\\.)*)\"")
INFERENCE_PATHS = ("/api/chat", "/api/generate", "/v1/chat/completions", "/v1/completions", "/v1/responses",
                   "/v1/messages")


def analyze(paths: list[Path]) -> dict[str, Any]:
    reqs: list[tuple[float, float, int, str]] = []  # (start, end, status, path)
    other: Counter[str] = Counter()
    status_all: Counter = Counter()
    bad = 0
    lines = 0
    llama = LlamaParser()
    trunc: list[str] = []
    for raw in iter_lines(paths, trunc):
        lines += 1
        if b"[GIN]" in raw:
            text = strip_ansi(raw).decode("utf-8", "replace")
            m = GIN_RE.search(text)
            if not m:
                bad += 1
                continue
            y, mo, d, hh, mi, ss, code, lat, _ip, method, path = m.groups()
            latency = parse_go_duration(lat)
            try:
                end = dt.datetime(int(y), int(mo), int(d), int(hh), int(mi), int(ss)).timestamp()
            except ValueError:
                bad += 1
                continue
            if latency is None:
                bad += 1
                continue
            status = int(code)
            status_all[status] += 1
            path = path.split("?", 1)[0]
            if method == "POST" and path in INFERENCE_PATHS:
                reqs.append((end - latency, end, status, path))
            else:
                other[f"{method} {path}"] += 1
        elif b"eval time" in raw or b"slot" in raw or b"draft acceptance" in raw:
            llama.feed(raw)

    # in-flight reconstruction: for each request, the most requests in flight at once while it ran
    order = sorted(range(len(reqs)), key=lambda i: reqs[i][0])
    peak = [1] * len(reqs)
    active: list[int] = []
    for i in order:
        start = reqs[i][0]
        active = [j for j in active if reqs[j][1] > start]
        active.append(i)
        n = len(active)
        for j in active:
            if peak[j] < n:
                peak[j] = n
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(peak):
        groups.setdefault(c, []).append(i)
    rows = []
    for conc in sorted(groups):
        idx = groups[conc]
        lat = counter_stats(Counter(reqs[i][1] - reqs[i][0] for i in idx))
        ok = [i for i in idx if 200 <= reqs[i][2] < 300]
        rows.append({
            "running": conc,
            "samples": len(idx),
            "latency_s_mean": rnd(lat["mean"], 3), "latency_s_median": rnd(lat["median"], 3),
            "latency_s_p95": rnd(lat["p95"], 3), "latency_s_max": rnd(lat["max"], 3),
            "ok": len(ok),
            "errors": len(idx) - len(ok),
        })
    span = (max(r[1] for r in reqs) - min(r[0] for r in reqs)) if reqs else 0.0
    ok_total = sum(1 for r in reqs if 200 <= r[2] < 300)
    result: dict[str, Any] = {
        "source": "ollama",
        "buckets": rows,
        "requests": len(reqs),
        "completions": ok_total,
        "completions_per_min": rnd(ok_total / (span / 60.0)) if span > 0 else None,
        "endpoints": dict(Counter(r[3] for r in reqs).most_common()),
        "status": {str(k): v for k, v in sorted(status_all.items())},
        "other_requests": dict(other.most_common(10)),
        "llama_timings": None,
        "parse": {"files": [str(p) for p in paths], "lines": lines, "gin_lines_unreadable": bad,
                  "truncated_inputs": trunc},
        "notes": ["'running' is the most inference requests in flight at once while the request ran (itself "
                  "included), rebuilt from each GIN line's end time minus its latency (1 s timestamp resolution)."],
    }
    if llama.out.requests:
        result["llama_timings"] = report_requests(llama.out, paths)
    return result
