"""Soak: S sessions × T turns against one server, for a bounded time, watching for what breaks under load.

Definitions (the ones seed 002's soak uses):

- crash: the server process died, a reply was 503 "Loading model", or a connection was reset mid-reply;
- silent-empty turn: HTTP 200, no error, no decoded token, and at least `silent_empty_min_s` (1 s) of wall time;
- TPS retention: median decode tok/s of the last 5 sessions ÷ that of the first 5 (fewer sessions: half each);
  under `min_retention` (80%) fails;
- memory growth: server RSS (and VRAM where nvidia-smi reports it) from the first sample after warm-up to the
  last, per server lifetime; above `max_mem_growth` (and above `mem_growth_floor_mb`) fails.

Every session is stored the moment it ends (a cut session too), so nothing measured is lost when the server dies.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..client import ChatClient
from ..core.errors import BrainbenchError, InfraError
from ..perf.measure import sample_from_result
from ..perf.stats import percentile
from ..profiles.launch import ServerFailed, ServerHandle, warm_up
from ..profiles.schema import SoakLeg, leg_name
from ..store.db import RunStore

Log = Callable[[str], None]

CRASH_EVENT_KINDS = ("loading_model", "stream_reset")

TOPICS = ("a lighthouse keeper's week", "how a bicycle gear works", "the history of paper maps",
          "a city garden through the seasons", "how bread dough rises", "a night train across mountains",
          "how tides are predicted", "a small museum of clocks", "the life of a river delta",
          "how a pipe organ makes sound", "a market town on a winter morning", "how bees find flowers")


@dataclass
class _Shared:
    client: ChatClient
    up: asyncio.Event
    deaths: list[dict[str, Any]] = field(default_factory=list)
    restarts: int = 0
    dead: bool = False
    life: int = 0


def _client(endpoint: Any, timeout: float) -> ChatClient:
    """A fresh connection per request: a keep-alive connection the server closed while idle would otherwise fail
    the next request and be counted as a reset; unpooled, every reset counted is a real one."""
    return ChatClient(endpoint, timeout=timeout, retries=2, backoff=0.5, pooled=False)


def _median(xs: list[float | None]) -> float | None:
    return percentile([x for x in xs if x is not None], 50)


async def _turn(client: ChatClient, messages: list[dict[str, Any]], leg: SoakLeg, api: str) -> dict[str, Any]:
    t0 = time.monotonic()
    try:
        r = await client.chat(messages, max_tokens=leg.max_tokens, temperature=0)
    except InfraError as e:
        return {"ok": False, "error": str(e)[:300], "events": [ev.kind for ev in e.events],
                "wall_s": round(time.monotonic() - t0, 3)}
    except BrainbenchError as e:
        return {"ok": False, "error": str(e)[:300], "events": [ev.kind for ev in getattr(e, "events", [])],
                "wall_s": round(time.monotonic() - t0, 3)}
    wall = time.monotonic() - t0
    s = sample_from_result(r, api)
    decoded = bool(r.content.strip() or r.reasoning.strip() or r.tool_calls) or bool(r.usage.completion_tokens)
    return {"ok": True, "events": [ev.kind for ev in r.events], "wall_s": round(wall, 3),
            "completion_tokens": r.usage.completion_tokens, "decode_tps": None if s.decode_tps is None else round(s.decode_tps, 3),
            "ttft_s": None if s.ttft_s is None else round(s.ttft_s, 4), "silent_empty": (not decoded) and wall >= leg.silent_empty_min_s,
            "empty": not decoded, "content": r.content}


def _growth(samples: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    """Largest first-to-last growth of `key` over the server lifetimes in `samples`."""
    best = None
    for life in sorted({s["life"] for s in samples}):
        vals = [s[key] for s in samples if s["life"] == life and s.get(key) is not None]
        if len(vals) < 2 or not vals[0]:
            continue
        g = {"first_mb": vals[0], "last_mb": vals[-1], "peak_mb": max(vals), "growth_mb": round(vals[-1] - vals[0], 1),
             "growth": round((vals[-1] - vals[0]) / vals[0], 4), "life": life}
        if best is None or g["growth"] > best["growth"]:
            best = g
    return best


def retention(sessions: list[dict[str, Any]]) -> dict[str, Any]:
    """Median decode tok/s of the last 5 sessions ÷ the first 5 (by start time; fewer sessions: half each)."""
    tps = [s["decode_tps_median"] for s in sorted(sessions, key=lambda s: s["started"]) if s.get("decode_tps_median")]
    k = min(5, len(tps) // 2)
    if k == 0:
        return {"value": None, "k": 0, "first": None, "last": None}
    first, last = _median(tps[:k]), _median(tps[-k:])
    assert last is not None  # tps[-k:] holds k >= 1 values, none of them None
    return {"value": round(last / first, 4) if first else None, "k": k,
            "first": round(first, 3) if first else None, "last": round(last, 3) if last else None}


def verdict(summary: dict[str, Any], leg: SoakLeg) -> tuple[bool, list[str]]:
    reasons = []
    c = summary["crashes"]
    if c["total"]:
        parts = ", ".join(f"{k}×{v}" for k, v in c.items() if k != "total" and v)
        reasons.append(f"{c['total']} crash(es): {parts}")
    if summary["silent_empty"]:
        reasons.append(f"{summary['silent_empty']} silent-empty turn(s)")
    if summary["turns_failed"]:
        reasons.append(f"{summary['turns_failed']} turn(s) failed")
    r = summary["tps_retention"]["value"]
    if r is not None and r < leg.min_retention:
        reasons.append(f"TPS retention {r:.0%} < {leg.min_retention:.0%}")
    for key in ("rss", "vram"):
        g = summary["memory"].get(key)
        if g and g["growth"] > leg.max_mem_growth and g["growth_mb"] > leg.mem_growth_floor_mb:
            reasons.append(f"server {key.upper()} grew {g['growth']:.0%} ({g['first_mb']:.0f} → {g['last_mb']:.0f} MiB)")
    if summary["dead"]:
        reasons.append("server died and was not restarted")
    return not reasons, reasons


async def run_soak(leg: SoakLeg, server: ServerHandle, store: RunStore, label: str, log: Log = lambda s: None,
                   progress: Callable[[int, int], None] = lambda d, t: None) -> dict[str, Any]:
    soak_id = uuid.uuid4().hex[:10]
    api = server.spec.wire_api
    t_start = time.monotonic()
    deadline = t_start + leg.duration_s
    mem: list[dict[str, Any]] = []
    sessions: list[dict[str, Any]] = []
    shared = _Shared(client=_client(server.endpoint, leg.timeout_s), up=asyncio.Event())
    shared.up.set()
    clients = [shared.client]
    sem = asyncio.Semaphore(leg.concurrency)
    finished = asyncio.Event()

    def sample_mem() -> None:
        m = server.memory()
        if m["rss_mb"] is not None or m["vram_mb"] is not None:
            mem.append({"t": round(time.monotonic() - t_start, 2), "life": shared.life, **m})

    async def watch() -> None:
        tick = 0
        while not finished.is_set():
            if not server.alive():
                shared.up.clear()
                death = {"at": time.time(), "detail": server.exit_info()}
                shared.deaths.append(death)
                store.log_event("server_died", f"soak {leg.name}: {death['detail']}")
                log(f"server died: {death['detail']}")
                if leg.restart == "on_crash" and shared.restarts < leg.max_restarts:
                    shared.restarts += 1
                    try:
                        await asyncio.to_thread(server.restart)
                        await warm_up(server.endpoint, server.profile.warmup)
                    except ServerFailed as e:
                        log(f"restart failed: {e}")
                        shared.dead = True
                        shared.up.set()
                        return
                    # turns still in flight keep the old client; every client is closed at the end
                    shared.client = _client(server.endpoint, leg.timeout_s)
                    clients.append(shared.client)
                    shared.life += 1
                    log(f"server restarted ({shared.restarts}/{leg.max_restarts})")
                    shared.up.set()
                else:
                    shared.dead = True
                    shared.up.set()
                    return
            if tick % 4 == 0:
                sample_mem()
            tick += 1
            try:
                await asyncio.wait_for(finished.wait(), 0.25)
            except TimeoutError:
                pass

    async def session(i: int) -> None:
        async with sem:
            if shared.dead or time.monotonic() >= deadline:
                return
            rec: dict[str, Any] = {"soak_id": soak_id, "session": i, "started": time.time(), "turns": [], "cut": False}
            topic = TOPICS[i % len(TOPICS)]
            messages: list[dict[str, Any]] = [
                {"role": "system", "content": f"[soak {soak_id} session {i}] You are a patient writer."},
                {"role": "user", "content": f"Describe {topic} in a few sentences."},
            ]
            try:
                for t in range(leg.turns):
                    await shared.up.wait()
                    if shared.dead:
                        break
                    turn = await _turn(shared.client, messages, leg, api)
                    turn["turn"] = t
                    rec["turns"].append({k: v for k, v in turn.items() if k != "content"})
                    if not turn["ok"]:
                        break
                    messages += [{"role": "assistant", "content": turn["content"]},
                                 {"role": "user", "content": "Go on, with one new detail."}]
            except asyncio.CancelledError:
                rec["cut"] = True
                raise
            finally:
                if rec["turns"]:
                    rec["ended"] = time.time()
                    rec["decode_tps_median"] = _median([t.get("decode_tps") for t in rec["turns"] if t["ok"]])
                    rec["complete"] = len(rec["turns"]) == leg.turns and all(t["ok"] for t in rec["turns"])
                    store.put_result("soak_session", leg_name(leg), label, rec)
                    sessions.append(rec)
                    progress(len(sessions), leg.sessions)

    sample_mem()
    watcher = asyncio.create_task(watch())
    tasks = [asyncio.create_task(session(i)) for i in range(leg.sessions)]
    truncated = False
    try:
        done, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
        if pending:
            truncated = True
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for t in done:
            if t.exception() is not None:
                raise t.exception()  # type: ignore[misc]
    finally:
        finished.set()
        await asyncio.gather(watcher, return_exceptions=True)
        sample_mem()
        for c in clients:
            await c.__aexit__(None, None, None)

    turns = [t for s in sessions for t in s["turns"]]
    events = Counter(e for t in turns for e in t["events"])
    crashes: dict[str, int] = {"process_death": len(shared.deaths)}
    crashes.update({k: events.get(k, 0) for k in CRASH_EVENT_KINDS})
    crashes["total"] = sum(crashes.values())
    summary: dict[str, Any] = {
        "soak_id": soak_id, "sessions_planned": leg.sessions, "turns_per_session": leg.turns,
        "sessions_run": len(sessions), "sessions_complete": sum(1 for s in sessions if s.get("complete")),
        "turns": len(turns), "turns_ok": sum(1 for t in turns if t["ok"]),
        "turns_failed": sum(1 for t in turns if not t["ok"]),
        "silent_empty": sum(1 for t in turns if t.get("silent_empty")),
        "empty_fast": sum(1 for t in turns if t.get("empty") and not t.get("silent_empty")),
        "crashes": crashes, "events": dict(events), "deaths": shared.deaths, "restarts": shared.restarts,
        "dead": shared.dead, "truncated": truncated, "duration_s": round(time.monotonic() - t_start, 2),
        "duration_bound_s": leg.duration_s,
        "decode_tps_median": _median([t.get("decode_tps") for t in turns if t["ok"]]),
        "tps_retention": retention(sessions),
        "memory": {"rss": _growth(mem, "rss_mb"), "vram": _growth(mem, "vram_mb"), "samples": len(mem)},
        "memory_samples": mem[-200:],
    }
    passed, reasons = verdict(summary, leg)
    summary["passed"], summary["reasons"] = passed, reasons
    store.put_result("soak", leg_name(leg), label, summary)
    return summary
