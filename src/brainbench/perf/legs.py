"""The timed legs: single-stream decode, prefill (cache-busted vs cache-warm), the concurrency sweep, and
agent-shaped multi-turn conversations. Every timed call goes to the server (nothing is cached here) and
is never retried: a failed request counts as an error in its leg.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..client import ChatClient, ChatResult
from ..core.errors import BrainbenchError, EndpointError
from . import crosscheck
from .energy import EnergyMeter, EnergyReading
from .measure import Sample, failed, sample_from_result
from .prompts import Calibration, filler, messages, nonce
from .stats import cv, percentile, summarize
from .stream import RawStreamClient
from .wire import SENT

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class SpeedOptions:
    legs: list[str] = field(default_factory=lambda: ["decode", "prefill", "sweep", "agent"])
    gen_tokens: int = 128
    prompt_tokens: int = 128
    """Prompt size for the decode leg and the sweep."""
    warmup: int = 1
    decode_runs: int = 5
    cv_max: float = 0.05
    max_runs: int = 15
    prefill_lengths: list[int] = field(default_factory=lambda: [128, 512, 2048])
    prefill_runs: int = 3
    concurrency: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    requests_per_level: int | None = None
    """Requests per sweep level; default max(8, 2 × concurrency)."""
    agent_concurrency: list[int] = field(default_factory=lambda: [1])
    agent_turns: int = 3
    agent_gen_tokens: int = 64
    agent_system_tokens: int = 256
    agent_tool_tokens: int = 128
    agent_modes: list[str] = field(default_factory=lambda: ["warm", "cold"])
    knee_fraction: float = 0.5

    def requests_for(self, c: int) -> int:
        return self.requests_per_level or max(8, 2 * c)

    def max_parallel(self) -> int:
        levels = (self.concurrency if "sweep" in self.legs else []) + \
                 (self.agent_concurrency if "agent" in self.legs else [])
        return max([1, *levels])

    def ctx_total(self) -> int:
        """Context an embedded server needs (unified KV pool shared by its slots): the largest single
        request, or every slot of the busiest level at once, whichever is more, plus margin."""
        one_sweep = self.prompt_tokens + self.gen_tokens + 64
        agent = self.agent_system_tokens + 200 + self.agent_turns * (self.agent_gen_tokens + self.agent_tool_tokens + 40)
        need = [one_sweep]
        if "sweep" in self.legs:
            need.append(max(self.concurrency) * one_sweep)
        if "prefill" in self.legs:
            need.append(max(self.prefill_lengths, default=0) + 64)
        if "agent" in self.legs:
            need.append(max(self.agent_concurrency) * agent)
        return (int(max(need) * 1.25) + 512 + 255) // 256 * 256


# -- one request ------------------------------------------------------------------------------------


class Driver:
    """Sends timed requests (never retried) and untimed set-up requests (retried)."""

    def __init__(self, timed: ChatClient | RawStreamClient, setup: ChatClient | None = None, api: str = "openai"):
        if setup is None and not isinstance(timed, ChatClient):
            raise ValueError("a RawStreamClient needs a ChatClient for the untimed set-up requests")
        self.timed, self.setup, self.api = timed, setup or timed, api
        self.fixed: dict[str, Any] = {}
        """Extra body fields that hold the generation length (ignore_eos, min_tokens) where accepted."""
        self.fixed_supported: bool | None = None
        self.cal = Calibration()
        self.server_reports_usage = True

    def params(self, max_tokens: int, fixed: bool) -> dict[str, Any]:
        p: dict[str, Any] = {"max_tokens": max_tokens, "temperature": 0.0}
        if fixed and self.fixed:
            p.update(self.fixed)
            if "min_tokens" in p:
                p["min_tokens"] = max_tokens
        return p

    async def request_full(self, msgs: list[dict[str, Any]], max_tokens: int, *, fixed: bool = True,
                           tools: list[dict] | None = None) -> tuple[Sample, ChatResult | None]:
        holder: dict[str, float] = {}
        token = SENT.set(holder)
        t0 = time.perf_counter()
        try:
            if isinstance(self.timed, RawStreamClient):
                r = await self.timed.chat(msgs, tools=tools, **self.params(max_tokens, fixed))
            else:
                r = await self.timed.chat(msgs, tools=tools, stream=True, **self.params(max_tokens, fixed))
        except BrainbenchError as e:
            return failed(str(e), holder.get("sent", t0), time.perf_counter()), None
        finally:
            SENT.reset(token)
        if "sent" in holder and holder["sent"] >= r.timing.sent:  # clocks start at the first header write
            r.timing.sent = holder["sent"]
        s = sample_from_result(r, self.api)
        s.queue_s = r.timing.sent - t0
        return s, r

    async def request(self, msgs: list[dict[str, Any]], max_tokens: int, *, fixed: bool = True) -> Sample:
        return (await self.request_full(msgs, max_tokens, fixed=fixed))[0]

    async def probe(self, log: Log = _quiet) -> dict[str, Any]:
        """Untimed: is the server up, does it hold the generation length, how many tokens per word."""
        msgs = messages(20, nonce())
        attempts: list[dict[str, Any]] = [{"ignore_eos": True, "min_tokens": 8}, {"ignore_eos": True}, {}] \
            if self.api == "openai" else [{}]
        r = None
        for extra in attempts:
            try:
                r = await self.setup.chat(msgs, stream=True, max_tokens=8, temperature=0.0, **extra)
                self.fixed = {k: v for k, v in extra.items()}
                break
            except EndpointError as e:
                if not extra:
                    raise
                log(f"server refused {sorted(extra)} ({str(e)[:80]}); trying without")
        assert r is not None
        self.fixed_supported = bool(self.fixed) and r.usage.completion_tokens == 8
        if r.usage.completion_tokens is None:
            self.server_reports_usage = False
        points = []
        for words in (50, 450):
            res = await self.setup.chat(messages(words, nonce(), seed=words), stream=True, max_tokens=1, temperature=0.0)
            if res.usage.prompt_tokens is None:
                break
            points.append((words, res.usage.prompt_tokens))
        if len(points) == 2:
            self.cal = Calibration.fit(points[0], points[1])
        return {"fixed_length_fields": sorted(self.fixed), "fixed_length": self.fixed_supported,
                "usage_reported": self.server_reports_usage, "calibration": self.cal.to_dict()}


# -- helpers ----------------------------------------------------------------------------------------


def flat(prefix: str, values: list[float | None], scale: float = 1.0,
         keys: tuple[str, ...] = ("mean", "median", "p90", "p99")) -> dict[str, float | None]:
    s = summarize(values, scale)
    return {f"{prefix}_{k}": s[k] for k in keys}


def fig(v: Any, nd: int, none: str = "n/a") -> str:
    """A figure for a progress line: rounded to `nd` places (616.0346 ms reads 616.0 ms), `none` when absent."""
    if v is None:
        return none
    return f"{v:,.{nd}f}" if isinstance(v, (int, float)) else str(v)


def _median(values: list[Any]) -> float | None:
    return percentile([v for v in values if v is not None], 50)


def latency_block(samples: list[Sample]) -> dict[str, Any]:
    """TTFT, per-token ITL, per-chunk gap, TPOT, E2E (ms): mean, median, p90, p99."""
    ok = [s for s in samples if s.ok]
    out: dict[str, Any] = {}
    out.update(flat("ttft_ms", [s.ttft_s for s in ok], 1000))
    out.update(flat("itl_ms", [s.itl_s for s in ok], 1000))
    out.update(flat("chunk_gap_ms", [g for s in ok for g in s.chunk_gaps_s], 1000))
    out.update(flat("tpot_ms", [s.tpot_s for s in ok], 1000))
    out.update(flat("e2e_ms", [s.e2e_s for s in ok], 1000))
    out["tokens_per_chunk_median"] = _median([s.tokens_per_chunk for s in ok])
    return out


def energy_block(reading: EnergyReading, tokens: int, seconds: float, units: int | None = None,
                 unit: str = "request") -> dict[str, Any]:
    d = reading.to_dict()
    tps = tokens / seconds if seconds > 0 else None
    d["joules_per_token"] = None if reading.per_token(tokens) is None else round(reading.per_token(tokens), 5)  # type: ignore[arg-type]
    d["tokens_per_s_per_kw"] = None if reading.tps_per_kw(tps) is None else round(reading.tps_per_kw(tps), 2)  # type: ignore[arg-type]
    if units:
        d[f"joules_per_{unit}"] = None if reading.joules is None else round(reading.joules / units, 4)
    return d


async def closed_loop(n: int, concurrency: int, one: Callable[[int], Awaitable[Sample]]) -> list[Sample]:
    """Run `n` requests with exactly `concurrency` in flight (each worker starts the next as one ends)."""
    todo = iter(range(n))
    out: list[Sample] = []

    async def worker() -> None:
        for i in todo:
            out.append(await one(i))

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, n)))))
    return out


async def gated(run_one: Callable[[int], Awaitable[Sample]], value: Callable[[Sample], float | None], runs: int,
                cv_max: float, max_runs: int) -> tuple[list[Sample], dict[str, Any], list[Sample]]:
    """Repeat until the CV of the last `runs` values is at most `cv_max` (or `max_runs` is reached).

    Returns (the last `runs` samples, the gate's verdict, every measured sample)."""
    samples: list[Sample] = []
    c = None
    while True:
        samples.append(await run_one(len(samples)))
        if len(samples) < runs:
            continue
        window = [value(s) for s in samples[-runs:]]
        vals = [v for v in window if v is not None]
        c = cv(vals) if len(vals) >= 2 else None
        if c is None or c <= cv_max or len(samples) >= max(max_runs, runs):
            break
    window_samples = samples[-runs:]
    gate = {"cv_max": cv_max, "cv": None if c is None else round(c, 4), "passed": c is not None and c <= cv_max,
            "runs_total": len(samples), "window": runs}
    return window_samples, gate, samples


def cache_hit(samples: list[Sample], what: str, log: Log = _quiet) -> dict[str, Any] | None:
    """Timed requests that hit the prefix cache (usage cached_tokens, else llama-server timings.cache_n, > 0):
    their TTFT is not a cold prefill. Logged as a warning and stored with the leg; None when none did."""
    hits = [s for s in samples if s.ok and (s.cached_tokens or 0) > 0]
    if not hits:
        return None
    out = {"requests": len(hits), "of": sum(1 for s in samples if s.ok),
           "cached_tokens_max": max(s.cached_tokens or 0 for s in hits)}
    log(f"warning: {out['requests']} of {out['of']} timed {what} requests hit the prefix cache (up to "
        f"{out['cached_tokens_max']} cached prompt tokens): their TTFT is not a cold prefill")
    return out


# -- legs -------------------------------------------------------------------------------------------


async def decode_leg(d: Driver, opt: SpeedOptions, meter: EnergyMeter | None = None,
                     log: Log = _quiet) -> tuple[dict[str, Any], list[Sample]]:
    """Single stream: warm-up runs, then measured runs (cache-busted prompts), gated on the decode CV."""
    words = d.cal.words_for(opt.prompt_tokens)
    for i in range(opt.warmup):
        await d.request(messages(words, nonce(), seed=1000 + i), opt.gen_tokens)

    async def one(i: int) -> Sample:
        s = await d.request(messages(words, nonce(), seed=i), opt.gen_tokens)
        log(f"decode run {i + 1}: {s.decode_tps and round(s.decode_tps, 2)} tok/s "
            f"({s.completion_tokens} tokens)" if s.ok else f"decode run {i + 1}: error {s.error}")
        return s

    meter = meter or EnergyMeter(None)
    with meter.measure() as leg:
        t0 = time.perf_counter()
        window, gate, every = await gated(one, lambda s: s.decode_tps, opt.decode_runs, opt.cv_max, opt.max_runs)
        wall = time.perf_counter() - t0
    ok = [s for s in window if s.ok]
    lengths = [s.completion_tokens for s in ok]
    out = {
        "gen_tokens_requested": opt.gen_tokens,
        "fixed_length": bool(ok) and all(n == opt.gen_tokens for n in lengths),
        "completion_tokens": summarize(lengths),
        "prompt_tokens_median": _median([s.prompt_tokens for s in ok]),
        "decode_tps": summarize([s.decode_tps for s in ok]),
        "wall_tps": summarize([s.wall_tps for s in ok]),
        **latency_block(window),
        "errors": len(window) - len(ok),
        "cache_hit": cache_hit(window, "decode", log),
        "gate": gate,
        "cross_check": crosscheck.summarize_requests(window, "decode"),
        "energy": energy_block(leg.reading, sum(s.completion_tokens or 0 for s in every if s.ok), wall,
                               sum(1 for s in every if s.ok), "request"),
    }
    return out, window


async def prefill_leg(d: Driver, opt: SpeedOptions, log: Log = _quiet) -> tuple[dict[str, Any], list[Sample]]:
    """Per prompt length: cache-busted (a unique nonce first) and cache-warm (the identical prompt again)."""
    rows, all_samples = [], []
    for length in opt.prefill_lengths:
        words = d.cal.words_for(length)

        async def cold(i: int, words: int = words, length: int = length) -> Sample:
            return await d.request(messages(words, nonce(), seed=length), 1, fixed=False)

        await cold(-1)  # warm the code path for this length (not the cache: the nonce differs)
        cold_s, cold_gate, _ = await gated(cold, lambda s: s.prefill_tps, opt.prefill_runs, opt.cv_max, opt.max_runs)
        tag = nonce()
        await d.request(messages(words, tag, seed=length), 1, fixed=False)  # prime the prefix cache

        async def warm(i: int, words: int = words, tag: str = tag, length: int = length) -> Sample:
            return await d.request(messages(words, tag, seed=length), 1, fixed=False)

        warm_s = [await warm(i) for i in range(opt.prefill_runs)]
        for s in cold_s:
            s.label = f"cold {length}"
        for s in warm_s:
            s.label = f"warm {length}"
        all_samples += cold_s + warm_s
        ok_c, ok_w = [s for s in cold_s if s.ok], [s for s in warm_s if s.ok]
        t_cold, t_warm = _median([s.ttft_s for s in ok_c]), _median([s.ttft_s for s in ok_w])
        row: dict[str, Any] = {
            "target_tokens": length,
            "prompt_tokens": _median([s.prompt_tokens for s in ok_c]),
            "cold": {
                "ttft_ms": summarize([s.ttft_s for s in ok_c], 1000),
                "prefill_tps": summarize([s.prefill_tps for s in ok_c]),
                "cached_tokens_median": _median([s.cached_tokens for s in ok_c]),
                "gate": cold_gate, "errors": len(cold_s) - len(ok_c),
                "cache_hit": cache_hit(cold_s, f"cache-busted prefill {length}", log),
                "cross_check": crosscheck.summarize_requests(cold_s, "prefill"),
            },
            "warm": {
                "ttft_ms": summarize([s.ttft_s for s in ok_w], 1000),
                "prefill_tps": summarize([s.prefill_tps for s in ok_w]),
                "effective_tps_median": _median([s.prompt_tokens / s.ttft_s for s in ok_w if s.prompt_tokens and s.ttft_s]),
                "cached_tokens_median": _median([s.cached_tokens for s in ok_w]),
                "errors": len(warm_s) - len(ok_w),
            },
            "ttft_speedup_warm": None if not t_cold or not t_warm else round(t_cold / t_warm, 3),
        }
        log(f"prefill {length}: cold {fig(row['cold']['prefill_tps']['median'], 0)} tok/s, "
            f"warm TTFT x{fig(row['ttft_speedup_warm'], 2)} faster (cached tokens "
            f"{fig(row['warm']['cached_tokens_median'], 0, 'not reported')})")
        rows.append(row)
    return {"lengths": rows}, all_samples


def mark_knee(levels: list[dict[str, Any]], fraction: float = 0.5) -> int | None:
    """Mark the knee: the last level before the first one that stops paying, i.e. whose per-request gen tok/s
    falls below `fraction` of the lowest level's or whose aggregate tok/s does not rise. Past the knee more
    requests in flight buy nothing; the knee itself is the most useful concurrency (never a level where
    aggregate throughput already fell)."""
    base = next((lv["gen_tps_per_request"] for lv in levels if lv.get("gen_tps_per_request")), None)
    knee, prev, prev_agg, stopped = None, None, None, False
    for lv in levels:
        lv["knee"] = False
        per, agg = lv.get("gen_tps_per_request"), lv.get("gen_tps_aggregate")
        lv["aggregate_gain"] = None if not prev_agg or agg is None else round(agg / prev_agg, 3)
        pays = per is not None and base is not None and per >= fraction * base \
            and (prev_agg is None or (agg or 0) > prev_agg)
        if not stopped and not pays and prev is not None:
            prev["knee"], knee, stopped = True, prev["concurrency"], True
        stopped = stopped or not pays
        prev, prev_agg = lv, agg or prev_agg
    return knee


async def sweep_level(d: Driver, opt: SpeedOptions, c: int, meter: EnergyMeter, http_scrape=None,
                      log: Log = _quiet) -> tuple[dict[str, Any], list[Sample]]:
    words = d.cal.words_for(opt.prompt_tokens)
    n = opt.requests_for(c)
    before = await http_scrape() if http_scrape else None
    with meter.measure() as leg:
        t0 = time.perf_counter()
        samples = await closed_loop(n, c, lambda i: d.request(messages(words, nonce(), seed=i), opt.gen_tokens))
        wall = time.perf_counter() - t0
    after = await http_scrape() if http_scrape else None
    for s in samples:
        s.label = f"c={c}"
    ok = [s for s in samples if s.ok]
    tokens = sum(s.completion_tokens or 0 for s in ok)
    lat = latency_block(samples)
    level = {
        "concurrency": c, "requests": len(samples), "errors": len(samples) - len(ok),
        "error_rate": round((len(samples) - len(ok)) / len(samples), 4) if samples else None,
        "ttft_ms_median": lat["ttft_ms_median"], "ttft_ms_p99": lat["ttft_ms_p99"],
        "itl_ms_median": lat["itl_ms_median"], "itl_ms_p99": lat["itl_ms_p99"],
        "gen_tps_aggregate": round(tokens / wall, 3) if wall > 0 and ok else None,
        "gen_tps_per_request": None if _median([s.decode_tps for s in ok]) is None else round(_median([s.decode_tps for s in ok]), 3),  # type: ignore[arg-type]
        "completions_per_min": round(len(ok) / wall * 60, 3) if wall > 0 else None,
        "wall_s": round(wall, 4), "completion_tokens_total": tokens,
        "completion_tokens_median": _median([s.completion_tokens for s in ok]),
        "prompt_tokens_median": _median([s.prompt_tokens for s in ok]),
        **{k: v for k, v in lat.items() if k not in ("ttft_ms_median", "ttft_ms_p99", "itl_ms_median", "itl_ms_p99")},
        "energy": energy_block(leg.reading, tokens, wall, len(ok), "request"),
        "first_errors": sorted({s.error for s in samples if not s.ok and s.error})[:3],
        "cross_check": crosscheck.metrics_summary(before, after, samples) or crosscheck.summarize_requests(samples, "decode"),
    }
    log(f"concurrency {c}: {fig(level['gen_tps_aggregate'], 1)} tok/s aggregate, "
        f"{fig(level['gen_tps_per_request'], 1)} per request, TTFT p50 {fig(level['ttft_ms_median'], 1)} ms, "
        f"{level['errors']} errors")
    return level, samples


async def sweep_leg(d: Driver, opt: SpeedOptions, meter: EnergyMeter, http_scrape=None,
                    log: Log = _quiet) -> tuple[dict[str, Any], list[Sample]]:
    levels, all_samples = [], []
    for c in opt.concurrency:
        level, samples = await sweep_level(d, opt, c, meter, http_scrape, log)
        levels.append(level)
        all_samples += samples
    knee = mark_knee(levels, opt.knee_fraction)
    rule = (f"the last level before per-request gen tok/s falls below {opt.knee_fraction:g} × the lowest level's "
            "or aggregate tok/s stops rising")
    return {"levels": levels, "knee": knee, "knee_rule": rule}, all_samples


AGENT_TOOLS = [
    {"type": "function", "function": {
        "name": "read_file", "description": "Read a text file from the workspace.",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}},
    {"type": "function", "function": {
        "name": "run", "description": "Run a shell command from the allow list and return its output.",
        "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}},
]


async def agent_conversation(d: Driver, opt: SpeedOptions, mode: str, conv: int) -> list[Sample]:
    """One growing conversation: system + task, then per turn the reply and a tool result are appended.

    mode 'warm' keeps the prefix identical between turns (the server may reuse its cache); 'cold' puts a
    new nonce first on every turn, so the whole context is processed again."""
    tag = nonce()
    system = ("You are an agent working in a repository. Use the tools to inspect files before answering. "
              "Reference notes: " + filler(d.cal.words_for(opt.agent_system_tokens), seed=conv))
    msgs: list[dict[str, Any]] = [
        {"role": "system", "content": f"[run {tag}] {system}"},
        {"role": "user", "content": "Read notes.txt with read_file, then summarise what it says."},
    ]
    out = []
    for turn in range(opt.agent_turns):
        if mode == "cold":
            msgs[0] = {"role": "system", "content": f"[run {nonce()}] {system}"}
        s, r = await d.request_full(msgs, opt.agent_gen_tokens, fixed=False, tools=AGENT_TOOLS)
        s.turn = turn
        out.append(s)
        if r is None:
            break
        msg = r.assistant_message()
        msgs.append(msg)
        body = "output:\n" + filler(d.cal.words_for(opt.agent_tool_tokens), seed=100 * conv + turn)
        if msg.get("tool_calls"):
            msgs += [{"role": "tool", "tool_call_id": c["id"] or f"call_{turn}_{k}", "content": body}
                     for k, c in enumerate(msg["tool_calls"])]
        else:
            msgs.append({"role": "user", "content": "Tool " + body})
    return out


async def agent_level(d: Driver, opt: SpeedOptions, mode: str, c: int, meter: EnergyMeter,
                      log: Log = _quiet) -> tuple[dict[str, Any], list[Sample]]:
    with meter.measure() as leg:
        t0 = time.perf_counter()
        convs = await asyncio.gather(*(agent_conversation(d, opt, mode, i) for i in range(c)))
        wall = time.perf_counter() - t0
    samples = [s for conv in convs for s in conv]
    for s in samples:
        s.label = f"{mode} c={c}"
    ok = [s for s in samples if s.ok]
    tokens = sum(s.completion_tokens or 0 for s in ok)
    per_turn = []
    for t in range(opt.agent_turns):
        ts = [s for s in ok if s.turn == t]
        per_turn.append({
            "turn": t + 1, "completed": len(ts),
            "prompt_tokens_median": _median([s.prompt_tokens for s in ts]),
            "cached_tokens_median": _median([s.cached_tokens for s in ts]),
            "ttft_ms_median": None if _median([s.ttft_s for s in ts]) is None else round(_median([s.ttft_s for s in ts]) * 1000, 3),  # type: ignore[operator]
            "e2e_ms_median": None if _median([s.e2e_s for s in ts]) is None else round(_median([s.e2e_s for s in ts]) * 1000, 3),  # type: ignore[operator]
            "completion_tokens_median": _median([s.completion_tokens for s in ts]),
        })

    def ms(v: float | None) -> float | None:
        return None if v is None else round(v * 1000, 3)

    level = {
        "mode": mode, "concurrency": c, "conversations": c, "turns_completed": len(ok),
        "errors": len(samples) - len(ok), "wall_s": round(wall, 4),
        "wall_per_turn_s": round(wall / len(ok), 4) if ok else None,
        "turn_e2e_ms_median": ms(_median([s.e2e_s for s in ok])),
        "turns_per_min": round(len(ok) / wall * 60, 3) if wall > 0 else None,
        "ttft_content_ms_median": ms(_median([s.ttft_content_s for s in ok])),
        "ttft_reasoning_ms_median": ms(_median([s.ttft_reasoning_s for s in ok])),
        "ttft_tool_ms_median": ms(_median([s.ttft_tool_s for s in ok])),
        "turns_with_tool_calls": sum(1 for s in ok if s.ttft_tool_s is not None),
        "per_turn": per_turn,
        "energy": energy_block(leg.reading, tokens, wall, len(ok), "turn"),
    }
    log(f"agent {mode} x{c}: {level['turns_completed']} turns, {fig(level['wall_per_turn_s'], 2)} s/turn, "
        f"cached tokens at the last turn {fig(per_turn[-1]['cached_tokens_median'] if per_turn else None, 0, 'not reported')}")
    return level, samples


async def agent_leg(d: Driver, opt: SpeedOptions, meter: EnergyMeter,
                    log: Log = _quiet) -> tuple[dict[str, Any], list[Sample]]:
    levels, all_samples = [], []
    for mode in opt.agent_modes:
        for c in opt.agent_concurrency:
            level, samples = await agent_level(d, opt, mode, c, meter, log)
            levels.append(level)
            all_samples += samples
    return {"turns": opt.agent_turns, "levels": levels}, all_samples
