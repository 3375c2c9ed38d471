"""Synthetic vLLM logs with known per-bucket truth (tests and the throughput benchmark).

The generator writes the lines vLLM writes (format strings copied from vLLM's source, see `vllm.py`)
and computes the expected tables itself, from the values it wrote, with plain lists and the textbook
definitions, independently of the miner's value -> count tables.
"""

from __future__ import annotations

import gzip
import io
import random
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WORDS = ("the agent reads the card and calls kanban_complete with a short summary of what changed in "
         "the repository after running tests tool output json schema error retry context window prefix "
         "cache tokens prompt system user assistant function arguments result status blocked done "
         "in_progress model server request response stream latency throughput").split()

# vLLM's stats line shapes, keyed by the version that printed them.
FORMATS = ("v0", "v1-early", "v1", "v1-new")


def _fmt_stats(fmt: str, prompt: float, gen: float, running: int, waiting: int, rng: random.Random) -> str:
    head = f"Avg prompt throughput: {prompt:.1f} tokens/s, Avg generation throughput: {gen:.1f} tokens/s, "
    if fmt == "v0":  # vllm/engine/metrics.py
        return (head + f"Running: {running} reqs, Swapped: 0 reqs, Pending: {waiting} reqs, "
                f"GPU KV cache usage: {rng.random() * 90:.1f}%, CPU KV cache usage: 0.0%.")
    if fmt == "v1-early":  # first V1 loggers.py: trailing space, no KV field
        return head + f"Running: {running} reqs, Waiting: {waiting} reqs "
    if fmt == "v1":
        return (head + f"Running: {running} reqs, Waiting: {waiting} reqs, "
                f"GPU KV cache usage: {rng.random() * 90:.1f}%, Prefix cache hit rate: {rng.random() * 99:.1f}%")
    # v1-new: optional Deferred / Preemptions / Corrupted / external and MM cache hit rates
    parts = [f"Running: {running} reqs", f"Waiting: {waiting} reqs"]
    if waiting and rng.random() < 0.5:
        parts.append(f"Deferred: {rng.randint(1, waiting)} reqs")
    if rng.random() < 0.2:
        parts.append(f"Preemptions: {rng.randint(1, 3)}")
    parts += [f"GPU KV cache usage: {rng.random() * 90:.1f}%", f"Prefix cache hit rate: {rng.random() * 99:.1f}%"]
    if rng.random() < 0.3:
        parts.append("Corrupted: 0 reqs")
    if rng.random() < 0.3:
        parts.append(f"External prefix cache hit rate: {rng.random() * 99:.1f}%")
    if rng.random() < 0.2:
        parts.append(f"MM cache hit rate: {rng.random() * 99:.1f}%")
    return head + ", ".join(parts)


@dataclass
class SynthSpec:
    windows: int = 600
    seed: int = 0
    formats: tuple[str, ...] = ("v1",)
    engines: int = 1
    """>1: data-parallel, one `Engine 00N:` line per engine per tick."""
    aggregated: bool = False
    """Print `N Engines Aggregated:` instead of per-engine lines."""
    max_running: int = 6
    idle_every: int = 0
    """Every this many ticks, an idle stretch (DEBUG-only stats, so no INFO lines) of 3..8 intervals."""
    noise: bool = True
    ansi: bool = False
    apiserver_tag: bool = True
    corrupt_every: int = 0
    """Every this many ticks, an extra stats line cut short (must be counted and skipped)."""
    request_log_bytes: int = 0
    """Average size of `Received request ... prompt: '...'` lines (vLLM with request logging on)."""
    spec_decode: bool = False
    collect_truth: bool = True
    """Keep every written value to compute the truth (turn off for the big benchmark logs)."""
    start_month: int = 12
    start_day: int = 31
    start_hour: int = 23
    interval: int = 10


@dataclass
class Truth:
    buckets: list[dict[str, Any]]
    stats_lines: int
    corrupt_lines: int
    completions: int
    idle_s: float
    capacity: dict[str, Any]
    spec_accepted: int = 0
    spec_drafted: int = 0
    per_bucket_values: dict = field(default_factory=dict)


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    rank = q * (len(s) - 1)
    lo = int(rank)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (rank - lo)


def _ts(t: int, spec: SynthSpec) -> str:
    import datetime as dt

    base = dt.datetime(2023, spec.start_month, spec.start_day, spec.start_hour, 0, 0)
    return (base + dt.timedelta(seconds=t)).strftime("%m-%d %H:%M:%S")


class _Writer:
    def __init__(self, spec: SynthSpec, rng: random.Random):
        self.spec = spec
        self.rng = rng
        self.pid_api = 4242
        self.pid_core = 4301
        self._prompts: list[str] | None = None

    def prefix(self, ts: str, level: str = "INFO", file: str = "loggers.py:123", tag: str = "APIServer") -> str:
        s = self.spec
        if s.ansi:
            colour = {"INFO": "\x1b[32m", "DEBUG": "\x1b[37m", "WARNING": "\x1b[33m"}[level]
            head = f"{colour}{level}\x1b[0m \x1b[90m{ts}\x1b[0m \x1b[90m[{file}]\x1b[0m "
        else:
            head = f"{level} {ts} [{file}] "
        if s.apiserver_tag:
            pid = self.pid_api if tag == "APIServer" else self.pid_core
            head = f"({tag} pid={pid}) " + head
        return head

    def access(self, code: int = 200, path: str = "/v1/chat/completions") -> str:
        tag = f"(APIServer pid={self.pid_api}) " if self.spec.apiserver_tag else ""
        port = self.rng.randint(30000, 60000)
        reason = {200: "OK", 400: "Bad Request", 503: "Service Unavailable"}.get(code, "OK")
        return f'{tag}INFO:     127.0.0.1:{port} - "POST {path} HTTP/1.1" {code} {reason}'

    def prompt_text(self) -> str:
        if self._prompts is None:
            r = random.Random(self.spec.seed + 7)
            n = max(64, self.spec.request_log_bytes)
            pool = []
            for _ in range(48):
                size = r.randint(n // 3, n * 5 // 3)
                words = []
                total = 0
                while total < size:
                    w = r.choice(WORDS)
                    words.append(w)
                    total += len(w) + 1
                pool.append(" ".join(words))
            self._prompts = pool
        return self.rng.choice(self._prompts)


def generate(path: Path, spec: SynthSpec, *, compress: bool = False) -> Truth:
    """Write a synthetic vLLM log to `path` (gzip when `compress`) and return its truth."""
    rng = random.Random(spec.seed)
    w = _Writer(spec, rng)
    values: dict[int, dict[str, list]] = {}
    stats_lines = corrupt = completions = 0
    idle_s = 0.0
    spec_acc = spec_draft = 0
    out_f = gzip.open(path, "wt", encoding="utf-8", newline="\n") if compress else open(
        path, "w", encoding="utf-8", newline="\n")
    buf = io.StringIO()

    def flush(force: bool = False) -> None:
        if buf.tell() > (4 << 20) or force:
            out_f.write(buf.getvalue())
            buf.seek(0)
            buf.truncate()

    def emit(line: str) -> None:
        buf.write(line)
        buf.write("\n")

    t = 0
    # start-up: capacity lines (V1 merged form) and some noise
    kv_tokens = 1_220_608
    max_len = 262_144
    conc = kv_tokens / max_len
    emit(w.prefix(_ts(t, spec), file="gpu_worker.py:298", tag="EngineCore") + "Available KV cache memory: 21.3 GiB")
    emit(w.prefix(_ts(t, spec), file="kv_cache_utils.py:1087", tag="EngineCore")
         + f"GPU KV cache size: {kv_tokens:,} tokens")
    emit(w.prefix(_ts(t, spec), file="kv_cache_utils.py:1091", tag="EngineCore")
         + f"Maximum concurrency for {max_len:,} tokens per request: {conc:.2f}x")
    capacity = {"kv_cache_tokens": kv_tokens, "max_model_len": max_len, "max_concurrency": round(conc, 2)}
    emit(w.prefix(_ts(t, spec), file="launcher.py:28") + "Available routes are:")
    pending = 0
    for tick in range(spec.windows):
        t += spec.interval
        if spec.idle_every and tick and tick % spec.idle_every == 0:
            gap = rng.randint(3, 8)
            t += gap * spec.interval
            idle_s += gap * spec.interval
        ts = _ts(t, spec)
        # requests finishing during this window: access lines (and request-log lines) before the stats line
        n_done = rng.choice((0, 0, 1, 1, 2, 3))
        for _ in range(n_done):
            if spec.request_log_bytes:
                emit(w.prefix(ts, file="logger.py:43") + f"Received request chatcmpl-{rng.getrandbits(64):016x}: "
                     f"prompt: '{w.prompt_text()}', params: SamplingParams(n=1, temperature=0.7, max_tokens=2048), "
                     "prompt_token_ids: None, lora_request: None.")
            emit(w.access(200))
            pending += 1
        if spec.noise and rng.random() < 0.15:
            emit(w.access(rng.choice((400, 503))))  # errors are not completions
        if spec.noise and rng.random() < 0.2:
            emit(rng.choice([
                "",
                "\x00\x01garbage \xff\xfe line",
                w.prefix(ts, level="WARNING", file="serving_chat.py:201") + "tool parser could not parse arguments",
                "Traceback (most recent call last):",
                w.prefix(ts, file="loggers.py:123") + "Engine 000: vllm cache_config_info with initialization after num_gpu_blocks is: 4768",
                'INFO:     127.0.0.1:5555 - "GET /metrics HTTP/1.1" 200 OK',
                'INFO:     127.0.0.1:5555 - "POST /v1/chat/completions HTTP/1.1',  # cut access line: not counted
            ]))
        if spec.corrupt_every and tick % spec.corrupt_every == spec.corrupt_every - 1:
            emit(w.prefix(ts) + "Engine 000: Avg prompt throughput: 12")  # cut mid-line
            corrupt += 1
        fmt = rng.choice(spec.formats)
        engines: list[int | str | None] = [None] if spec.engines <= 1 and fmt == "v0" else list(range(max(1, spec.engines)))
        if spec.aggregated:
            engines = ["agg"]
        for k, eng in enumerate(engines):
            running = rng.randint(0, spec.max_running)
            if rng.random() < 0.1:
                prompt = 0.0
            else:
                prompt = round(rng.uniform(50, 6000), 1)
            gen = round(rng.uniform(1, 60) * max(running, 1) ** 0.7, 1) if running else round(rng.uniform(0, 30), 1)
            waiting = rng.choice((0, 0, 0, 1, 2))
            body = _fmt_stats(fmt, prompt, gen, running, waiting, rng)
            if fmt == "v0":
                line = w.prefix(ts, file="metrics.py:351", tag="EngineCore") + body
            elif eng == "agg":
                line = w.prefix(ts) + f"{spec.engines} Engines Aggregated: " + body
            elif fmt == "v1-early" and spec.engines <= 1:
                line = w.prefix(ts) + body
            else:
                line = w.prefix(ts) + f"Engine {eng:03d}: " + body
            if spec.ansi and rng.random() < 0.3:
                line = line + "\x1b[0m"
            emit(line)
            stats_lines += 1
            if spec.collect_truth:
                b = values.setdefault(running, {"gen": [], "prompt": [], "comp": []})
                b["gen"].append(gen)
                b["prompt"].append(prompt)
                b["comp"].append(pending if k == 0 else 0)  # access lines go to the next stats line (any engine)
            completions += pending if k == 0 else 0
            pending = 0
            if spec.spec_decode and fmt != "v0":
                acc = rng.randint(50, 400)
                drafted = acc + rng.randint(10, 200)
                drafts = max(1, drafted // 2)
                p1 = min(1.0, acc / drafts / 1.6)
                emit(w.prefix(ts, file="metrics.py:120") + "SpecDecoding metrics: "
                     f"Mean acceptance length: {1 + acc / drafts:.2f}, Accepted throughput: {acc / 10:.2f} tokens/s, "
                     f"Drafted throughput: {drafted / 10:.2f} tokens/s, Accepted: {acc} tokens, Drafted: {drafted} "
                     f"tokens, Per-position acceptance rate: {p1:.3f}, {p1 * 0.7:.3f}, "
                     f"Avg Draft acceptance rate: {100 * acc / drafted:.1f}%")
                spec_acc += acc
                spec_draft += drafted
        flush()
    # trailing access lines with no stats line after them: not attributable to any window
    emit(w.access(200))
    flush(force=True)
    out_f.close()

    buckets = []
    for running in sorted(values):
        v = values[running]
        gens, prompts, comps = v["gen"], v["prompt"], v["comp"]
        active = [p for p in prompts if p > 0]
        buckets.append({
            "running": running,
            "samples": len(gens),
            "gen_tps_mean": statistics.fmean(gens),
            "gen_tps_median": statistics.median(gens),
            "gen_tps_p95": _pct(gens, 0.95),
            "gen_tps_peak": max(gens),
            "per_request_tps": statistics.fmean(g / running for g in gens) if running else None,
            "prefill_tps_sustained": statistics.fmean(prompts),
            "prefill_tps_active": statistics.fmean(active) if active else None,
            "completions_per_min": statistics.fmean(c * 60.0 / spec.interval for c in comps),
        })
    return Truth(buckets=buckets, stats_lines=stats_lines, corrupt_lines=corrupt, completions=completions,
                 idle_s=idle_s, capacity=capacity, spec_accepted=spec_acc, spec_drafted=spec_draft,
                 per_bucket_values=values)
