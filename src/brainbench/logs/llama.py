"""Mine llama-server logs: one record per request from the slot timing block.

Formats (from llama.cpp `tools/server`, `server_slot::print_timings` and `SLT_INF`):

    slot launch_slot_: id  0 | task 0 | processing task
    slot print_timing: id  0 | task 0 |
    prompt eval time =      34.71 ms /    13 tokens (    2.67 ms per token,   374.53 tokens per second)
           eval time =     512.08 ms /    64 tokens (    8.00 ms per token,   124.98 tokens per second)
          total time =     546.79 ms /    77 tokens
    slot      release: id  0 | task 0 | stop processing: n_tokens = 76, truncated = 0

Newer builds print every timing line with the `slot print_timing: id N | task M | ` prefix; with
`--log-timestamps` every line starts with `M.SS.mmm.uuu ` (minutes since start) and with `--log-prefix`
a level letter (`I `). Older servers logged JSON objects whose `msg` holds the same text; llama-cli's
`llama_perf_context_print` says `runs` where the server says `tokens`. Speculative decoding adds
`draft acceptance rate = 0.57143 (   12 accepted /    21 generated)` or
`draft acceptance = %0.5f (%5d accepted / %5d generated), mean len = %5.2f`.

Concurrency of a request is the most slots that were processing at once while it ran (from the
`processing task` / `stop processing` lines), itself included; unknown when its start was not logged.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import counter_stats, iter_lines, rnd, strip_ansi

PROMPT_RE = re.compile(
    rb"prompt eval time\s*=\s*(\d{1,15}(?:\.\d{1,12})?) ms /\s*(\d{1,12}) (?:tokens|runs)\s*\(\s*(\d{1,15}(?:\.\d{1,12})?|nan|inf|-?nan) ms per token,\s*"
    rb"(\d{1,15}(?:\.\d{1,12})?|nan|inf|-?nan) tokens per second\)")
EVAL_RE = re.compile(
    rb"(?<!prompt )eval time\s*=\s*(\d{1,15}(?:\.\d{1,12})?) ms /\s*(\d{1,12}) (?:tokens|runs)\s*\(\s*(\d{1,15}(?:\.\d{1,12})?|nan|inf|-?nan) ms per token,\s*"
    rb"(\d{1,15}(?:\.\d{1,12})?|nan|inf|-?nan) tokens per second\)")
SLOT_RE = re.compile(rb"id\s+(\d+) \| task (-?\d+) \|")
JSON_SLOT_RE = re.compile(rb'"(?:id_slot|slot_id)"\s*:\s*(\d+)')
JSON_TASK_RE = re.compile(rb'"(?:id_task|task_id)"\s*:\s*(-?\d+)')
TS_RE = re.compile(rb"^(?:\x1b\[[0-9;]*m)?(\d+)\.(\d{2})\.(\d{3})\.(\d{3})\b")
DRAFT_RE = re.compile(rb"draft acceptance(?: rate)?\s*=\s*(\d{1,15}(?:\.\d{1,12})?)\s*\(\s*(\d{1,12}) accepted /\s*(\d{1,12}) generated\)"
                      rb"(?:, mean len =\s*([\d.]+))?")


@dataclass
class Request:
    prompt_ms: float
    prompt_n: int
    prompt_tps: float | None
    gen_ms: float
    gen_n: int
    gen_tps: float | None
    concurrency: int | None
    t: float | None


@dataclass
class LlamaScan:
    requests: list[Request] = field(default_factory=list)
    draft_accepted: int = 0
    draft_generated: int = 0
    draft_mean_len: list[float] = field(default_factory=list)
    unpaired: int = 0
    lines: int = 0
    truncated: list[str] = field(default_factory=list)


def _num(b: bytes) -> float | None:
    try:
        v = float(b)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


class LlamaParser:
    """Feed lines; collects request records. Also used on Ollama logs (whose runner may print them)."""

    def __init__(self) -> None:
        self.out = LlamaScan()
        self.active: dict[int, int] = {}  # slot -> task
        self.peak: dict[tuple[int, int], int] = {}
        self.released: dict[tuple[int, int], int] = {}  # recent releases (older servers time after release)
        self.current: tuple[int, int] | None = None
        self.pending: tuple[float, int, float | None, tuple | None] | None = None
        self.t: float | None = None

    def _slot_task(self, line: bytes) -> tuple[int, int] | None:
        m = SLOT_RE.search(line)
        if m:
            return int(m.group(1)), int(m.group(2))
        ms, mt = JSON_SLOT_RE.search(line), JSON_TASK_RE.search(line)
        if ms:
            return int(ms.group(1)), int(mt.group(1)) if mt else -1
        return None

    def feed(self, line: bytes) -> None:
        if b"\x1b" in line:
            line = strip_ansi(line)
        tm = TS_RE.match(line)
        if tm:
            self.t = int(tm.group(1)) * 60 + int(tm.group(2)) + int(tm.group(3)) / 1e3 + int(tm.group(4)) / 1e6
        if b"eval time" in line:
            self._timing(line)
        elif b"processing task" in line or b"launch_slot_" in line:
            st = self._slot_task(line)
            if st is not None:
                slot, task = st
                self.active[slot] = task
                n = len(self.active)
                for s, t in self.active.items():
                    k = (s, t)
                    if self.peak.get(k, 0) < n:
                        self.peak[k] = n
        elif b"stop processing" in line or b"slot released" in line:
            st = self._slot_task(line)
            if st is not None:
                self.active.pop(st[0], None)
                if st in self.peak:
                    self.released[st] = self.peak.pop(st)
                    if len(self.released) > 256:
                        self.released.pop(next(iter(self.released)))
        elif b"draft acceptance" in line:
            m = DRAFT_RE.search(line)
            if m:
                self.out.draft_accepted += int(m.group(2))
                self.out.draft_generated += int(m.group(3))
                if m.group(4):
                    self.out.draft_mean_len.append(float(m.group(4)))
        elif b"print_timing" in line:
            self.current = self._slot_task(line)
        elif b"all slots are idle" in line:
            self.active.clear()

    def _timing(self, line: bytes) -> None:
        m = PROMPT_RE.search(line)
        st = self._slot_task(line) or self.current
        if m:
            if self.pending is not None:
                self.out.unpaired += 1
            self.pending = (float(m.group(1)), int(m.group(2)), _num(m.group(4)), st)
            return
        m = EVAL_RE.search(line)
        if not m:
            return
        if self.pending is None:
            self.out.unpaired += 1
            return
        p_ms, p_n, p_tps, st0 = self.pending
        self.pending = None
        key = st0 or st
        conc = (self.peak.get(key) or self.released.get(key)) if key is not None else None
        self.out.requests.append(Request(p_ms, p_n, p_tps if p_n else 0.0, float(m.group(1)), int(m.group(2)),
                                         _num(m.group(4)), conc, self.t))


def scan(paths: Iterable[Path]) -> LlamaScan:
    parser = LlamaParser()
    trunc: list[str] = []
    for line in iter_lines(paths, trunc):
        parser.out.lines += 1
        if b"eval time" in line or b"slot" in line or b"draft acceptance" in line:
            parser.feed(line)
    parser.out.truncated = trunc
    return parser.out


def report_requests(s: LlamaScan, files: list[Path] | None = None) -> dict[str, Any]:
    """Buckets by concurrency with the same keys as the vLLM report; here every sample is one request
    and the tok/s figures are per request (llama.cpp times each request on its own)."""
    groups: dict[int | None, list[Request]] = {}
    for r in s.requests:
        groups.setdefault(r.concurrency, []).append(r)
    rows = []
    for conc in sorted(groups, key=lambda c: (c is None, c or 0)):
        rs = groups[conc]
        gen = counter_stats(Counter(r.gen_tps for r in rs if r.gen_tps is not None))
        sus = [r.prompt_tps or 0.0 for r in rs]
        act = [r.prompt_tps for r in rs if r.prompt_n > 0 and r.prompt_tps]
        rows.append({
            "running": conc,
            "samples": len(rs),
            "gen_tps_mean": rnd(gen["mean"]), "gen_tps_median": rnd(gen["median"]),
            "gen_tps_p95": rnd(gen["p95"]), "gen_tps_peak": rnd(gen["max"]),
            "per_request_tps": rnd(gen["mean"]),
            "prefill_tps_sustained": rnd(sum(sus) / len(sus)) if sus else None,
            "prefill_tps_active": rnd(sum(act) / len(act)) if act else None,
            "prefill_active_samples": len(act),
            "completions_per_min": None,
            "prompt_tokens": sum(r.prompt_n for r in rs),
            "gen_tokens": sum(r.gen_n for r in rs),
            "latency_s_mean": rnd(sum(r.prompt_ms + r.gen_ms for r in rs) / len(rs) / 1000.0, 3),
        })
    times = [r.t for r in s.requests if r.t is not None]
    rpm = None
    if len(times) >= 2 and max(times) > min(times):
        rpm = rnd((len(times) - 1) / ((max(times) - min(times)) / 60.0))
    draft = None
    if s.draft_generated:
        draft = {"accepted_tokens": s.draft_accepted, "drafted_tokens": s.draft_generated,
                 "draft_acceptance_rate_pct": rnd(100.0 * s.draft_accepted / s.draft_generated),
                 "mean_acceptance_length": rnd(sum(s.draft_mean_len) / len(s.draft_mean_len), 3)
                 if s.draft_mean_len else None}
    return {
        "source": "llama",
        "buckets": rows,
        "requests": len(s.requests),
        "requests_per_min": rpm,
        "spec_decode": draft,
        "parse": {"files": [str(f) for f in files or []], "lines": s.lines, "unpaired_timing_lines": s.unpaired,
                  "truncated_inputs": s.truncated},
        "notes": ["llama-server times each request itself: gen tok/s is per request (eval time), prompt tok/s "
                  "counts only prompt tokens not served from the slot's cache; 'running' is the most slots "
                  "busy at once while the request ran (itself included)."],
    }


def analyze(paths: list[Path]) -> dict[str, Any]:
    return report_requests(scan(paths), paths)
