"""The legs a profile can run against its server: speed (through brainbench.perf), agentic, soak.

Each leg stores what it measures in the profile's run store as it goes (attempts the moment they end,
speed and soak results as `results` rows), so a server that dies mid-leg loses nothing already measured.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..client import ChatClient, Endpoint
from ..core.errors import BrainbenchError
from ..profiles.schema import AgenticLeg, Profile, SpeedLeg
from ..store.db import RunStore

Log = Callable[[str], None]

DISCIPLINE_LIMIT_PER_PACK = 3
"""The fixed agentic subset: the first N scenarios (by id) of each agentic pack."""


def leg_id(profile: Profile, leg: Any) -> str:
    """Identity of one leg on one server configuration (resume skips a leg whose id is stored as done)."""
    blob = json.dumps([profile.identity(), leg.model_dump(mode="json")], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# -- speed --------------------------------------------------------------------------------------------


async def run_speed(leg: SpeedLeg, endpoint: Endpoint, log: Log = lambda s: None) -> dict[str, Any]:
    """Single-stream decode (gated on its CV) and, for concurrency levels above 1, a sweep: brainbench.perf's
    own legs and timed client (`brainbench speed` measures the same way), energy where NVML sees a GPU."""
    from ..perf.energy import EnergyMeter, make_source
    from ..perf.legs import SpeedOptions
    from ..perf.run import SpeedSettings, run_legs

    levels = sorted({c for c in leg.concurrency if c > 1})
    opt = SpeedOptions(legs=["decode"] + (["sweep"] if levels else []), gen_tokens=leg.max_tokens,
                       prompt_tokens=leg.prompt_tokens, warmup=leg.warmup, decode_runs=leg.requests,
                       cv_max=leg.cv_max, max_runs=leg.max_runs or leg.requests, concurrency=levels,
                       requests_per_level=leg.requests_per_level)
    settings = SpeedSettings(energy="auto", timeout=leg.timeout_s, store_requests=False)
    t0 = time.monotonic()
    meter = EnergyMeter(make_source("auto"))
    try:
        report, _ = await run_legs(endpoint, opt, meter, settings, log)
    finally:
        meter.close()
    decode = report.get("decode") or {}
    out: dict[str, Any] = {"probe": report.get("probe"), "decode": decode}
    if report.get("sweep"):
        out["sweep"] = report["sweep"]
    dt = decode.get("decode_tps") or {}
    out["decode_tps_median"] = dt.get("median")
    out["decode_tps_cv"] = dt.get("cv")
    out["ttft_ms_median"] = decode.get("ttft_ms_median")
    out["errors"] = decode.get("errors", 0)
    out["wall_s"] = round(time.monotonic() - t0, 3)
    if out["decode_tps_median"] is None:
        raise BrainbenchError(f"speed leg: no request decoded ({decode.get('errors', 0)} errors)")
    return out


# -- agentic ------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _discover(dirs: tuple[str, ...]) -> dict[str, Any]:
    """All packs (builtin and extra), loaded once per process: a sweep runs the same packs many times."""
    from ..packs import discover

    return discover([Path(d) for d in dirs])


def _select(names: list[str], suites: list[str], dirs: list[str]) -> list[Any]:
    from ..packs import SUITES, PackError, load_pack, pack_dirs

    if names and not suites and dirs:  # only the extra folders are needed: do not parse every builtin pack
        extra = {}
        for d in pack_dirs([Path(x) for x in dirs])[len(pack_dirs()):]:
            pk = load_pack(d)
            extra[pk.name] = pk
        if all(n in extra for n in names):
            return [extra[n] for n in dict.fromkeys(names)]
    have = _discover(tuple(dirs))
    wanted = list(names)
    for s in suites:
        if s not in SUITES:
            raise PackError(f"unknown suite {s!r}; known: {', '.join(sorted(SUITES))}")
        wanted += SUITES[s]
    missing = [n for n in wanted if n not in have]
    if missing:
        raise PackError(f"unknown pack {missing[0]!r}; available: {', '.join(sorted(have))}")
    return [have[n] for n in dict.fromkeys(wanted)]


def discipline_packs(leg: AgenticLeg) -> tuple[list[str], list[str], int | None]:
    """(packs, suites, limit_per_pack) for an agentic leg: as given, else the fixed agentic subset, else smoke."""
    if leg.packs or leg.suites:
        return leg.packs, leg.suites, leg.limit_per_pack
    from ..packs import SUITES

    have = _discover(tuple(leg.pack_dirs))
    agentic = [p for p in SUITES.get("agentic", []) if p in have]
    if agentic:
        return agentic, [], leg.limit_per_pack or DISCIPLINE_LIMIT_PER_PACK
    return ["smoke"], [], leg.limit_per_pack


def _subset(packs: list[Any], limit: int | None) -> list[Any]:
    if not limit:
        return packs
    return [p.model_copy(update={"scenarios": sorted(p.scenarios, key=lambda s: s.id)[:limit]}) for p in packs]


async def run_agentic(leg: AgenticLeg, endpoint: Endpoint, store: RunStore, label: str, server_public: dict[str, Any],
                      progress: Callable[[int, int], None] = lambda d, t: None) -> dict[str, Any]:
    """Run the packs as `brainbench run` does (content-keyed, resumable) and summarise this leg's attempts."""
    from ..core.records import attempt_key
    from ..runner.run import RunPlan, execute, prepare
    from ..scoring import attempt_rows, summary

    names, suites, limit = discipline_packs(leg)
    opts = leg.run_config(names, suites)
    chosen = _subset(_select(opts.packs, opts.suites, opts.pack_dirs), limit)
    config = {"server": server_public, "leg": {k: v for k, v in leg.model_dump(mode="json").items() if k != "name"}}
    plan = RunPlan.of(opts, packs=chosen, model=label, config=config)
    todo = prepare(plan, store)
    total = len(plan.items())
    done = [total - len(todo)]
    progress(done[0], total)

    def on_done(_rec: Any) -> None:
        done[0] += 1
        progress(done[0], total)

    t0 = time.monotonic()
    async with ChatClient(endpoint, timeout=opts.timeout) as client:
        await execute(plan, client, store, todo, on_done=on_done)
    keys = {attempt_key(s.content_hash(), plan.model, plan.config_hash, t) for s, t in plan.items()}
    rows = [r for r in attempt_rows(store) if r["key"] in keys]
    summ = summary(rows).get(label, {})
    overall = summ.get("overall", {})
    return {"packs": [p.name for p in chosen], "limit_per_pack": limit, "attempts": total,
            "config_hash": plan.config_hash, "pass": overall.get("pass"), "clean": overall.get("clean"),
            "infra_errors": summ.get("infra_errors", 0), "summary": summ, "wall_s": round(time.monotonic() - t0, 3)}
