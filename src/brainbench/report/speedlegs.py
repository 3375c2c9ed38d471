"""The figures of `brainbench speed` legs beyond the concurrency curves, for the report.

`brainbench speed -o RUN_DIR` stores one result of kind 'speed' per leg (summary, decode, prefill, sweep,
agent; see `perf/run.py::run_speed`). The curves and energy rows come from `data.speed_parts`; this module
reads the rest: decode latencies and its CV gate, prefill cold and cache-warm, the server cross-check of
every leg, the knee, the agent-shaped leg, the roofline, the power meter and the leg options. Every part is
optional (None / empty when a leg was not run), and nothing bulky (per-request samples, power curves) is
copied into the report.
"""

from __future__ import annotations

from typing import Any

KIND = "speed"


def _n(x: Any) -> float | None:
    if isinstance(x, bool) or x is None:
        return None
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, dict):
        for k in ("median", "value", "mean"):
            if k in x:
                return _n(x[k])
    return None


def _d(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def _cross(leg: str, cc: Any) -> dict[str, Any] | None:
    cc = _d(cc)
    if not cc:
        return None
    return {"leg": leg, "server": cc.get("server"), "requests": cc.get("requests"),
            "client": _n(cc.get("client_tps_median")), "server_tps": _n(cc.get("server_tps_median")),
            "gap_median": _n(cc.get("gap_median")), "gap_max_abs": _n(cc.get("gap_max_abs")),
            "tolerance": _n(cc.get("tolerance")), "flagged": bool(cc.get("flagged")),
            "token_count_mismatches": cc.get("token_count_mismatches")}


def _energy(en: Any) -> dict[str, Any] | None:
    en = _d(en)
    if not en or not en.get("measured", True):
        return None
    return {"watts": _n(en.get("avg_watts") or en.get("watts")), "joules": _n(en.get("joules")),
            "joules_per_token": _n(en.get("joules_per_token")), "joules_per_turn": _n(en.get("joules_per_turn")),
            "joules_per_request": _n(en.get("joules_per_request")), "seconds": _n(en.get("seconds")),
            "sample_hz": _n(en.get("sample_hz"))}


def _gpu_rows(leg: str, en: Any) -> list[dict[str, Any]]:
    """Per-GPU power and energy of one leg, then the group's total: with a model split across GPUs (seed
    001) a user needs each card's draw and the group's joules per token."""
    en = _d(en)
    devs = [d for d in en.get("devices") or [] if isinstance(d, dict)]
    if not en.get("measured") or not devs:
        return []
    rows = [{"leg": leg, "gpu": f"GPU{d.get('index')} {d.get('name') or ''}".strip(), "total": False,
             "watts": _n(d.get("avg_watts")), "peak_watts": _n(d.get("peak_watts")), "joules": _n(d.get("joules")),
             "joules_per_token": None} for d in devs]
    rows.append({"leg": leg, "gpu": f"all {len(devs)} GPU{'s' if len(devs) > 1 else ''}", "total": True,
                 "watts": _n(en.get("avg_watts")), "peak_watts": None, "joules": _n(en.get("joules")),
                 "joules_per_token": _n(en.get("joules_per_token"))})
    return rows


def _decode(d: dict[str, Any]) -> dict[str, Any]:
    tps = _d(d.get("decode_tps"))
    gate = _d(d.get("gate"))
    return {
        "tps_median": _n(tps.get("median")), "tps_mean": _n(tps.get("mean")), "cv": _n(tps.get("cv")),
        "runs": tps.get("count"), "tps_min": _n(tps.get("min")), "tps_max": _n(tps.get("max")),
        "wall_tps_median": _n(_d(d.get("wall_tps")).get("median")),
        "gen_tokens": d.get("gen_tokens_requested"), "fixed_length": d.get("fixed_length"),
        "prompt_tokens": _n(d.get("prompt_tokens_median")),
        **{k: _n(d.get(k)) for k in ("ttft_ms_median", "ttft_ms_p99", "itl_ms_median", "itl_ms_p99",
                                     "tpot_ms_median", "e2e_ms_median", "e2e_ms_p99")},
        "errors": d.get("errors"),
        "cache_hit": _d(d.get("cache_hit")) or None,
        "gate": {"cv": _n(gate.get("cv")), "cv_max": _n(gate.get("cv_max")), "passed": gate.get("passed"),
                 "runs_total": gate.get("runs_total")} if gate else None,
        "energy": _energy(d.get("energy")),
    }


def _prefill(d: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for x in d.get("lengths") or []:
        if not isinstance(x, dict):
            continue
        cold, warm = _d(x.get("cold")), _d(x.get("warm"))
        gate = _d(cold.get("gate"))
        rows.append({
            "target_tokens": x.get("target_tokens"), "prompt_tokens": _n(x.get("prompt_tokens")),
            "cold_tps": _n(cold.get("prefill_tps")), "cold_cv": _n(_d(cold.get("prefill_tps")).get("cv")),
            "cold_ttft_ms": _n(cold.get("ttft_ms")), "cold_gate": gate.get("passed") if gate else None,
            "warm_ttft_ms": _n(warm.get("ttft_ms")), "warm_effective_tps": _n(warm.get("effective_tps_median")),
            "warm_cached_tokens": _n(warm.get("cached_tokens_median")),
            "ttft_speedup_warm": _n(x.get("ttft_speedup_warm")),
            "cold_cache_hit": _d(cold.get("cache_hit")) or None,
            "errors": (cold.get("errors") or 0) + (warm.get("errors") or 0) if (cold or warm) else None,
        })
    return rows


def _agent(d: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for x in d.get("levels") or []:
        if not isinstance(x, dict):
            continue
        en = _energy(x.get("energy")) or {}
        rows.append({k: x.get(k) for k in ("mode", "concurrency", "conversations", "turns_completed", "errors",
                                           "turns_with_tool_calls")}
                    | {k: _n(x.get(k)) for k in ("turns_per_min", "turn_e2e_ms_median", "ttft_content_ms_median",
                                                 "ttft_tool_ms_median", "wall_per_turn_s")}
                    | {"watts": en.get("watts"), "joules_per_turn": en.get("joules_per_turn"),
                       "joules_per_token": en.get("joules_per_token")})
    return rows


def _roofline(roof: Any, gpus: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The stored roofline, and a warning when its 'bound' sits below what was measured (a wrong bandwidth)."""
    roof = _d(roof)
    if not roof.get("computed"):
        return {"computed": False, "reason": roof.get("reason") or "not computed"} if roof else None
    out = {k: roof.get(k) for k in ("model_gb", "active_fraction", "bytes_per_token_gb", "bandwidth_gbs",
                                    "bandwidth_source", "bound_tps", "measured_tps", "fraction_of_bound")}
    out["computed"] = True
    frac = _n(roof.get("fraction_of_bound"))
    out["suspect"] = bool(frac and frac > 1.0)
    gpu_bw = sum(_n(g.get("bandwidth_gbs")) or 0.0 for g in gpus)
    bpt = _n(roof.get("bytes_per_token_gb"))
    measured = _n(roof.get("measured_tps"))
    out["gpu"] = None
    if out["suspect"] and gpu_bw and bpt:  # the bound the GPUs' own memory bandwidth gives
        bound = gpu_bw / bpt
        out["gpu"] = {"bandwidth_gbs": gpu_bw, "bound_tps": bound,
                      "fraction_of_bound": measured / bound if measured else None}
    return out


def speed_details(results: list[dict[str, Any]], model: str, single_model: bool) -> dict[str, Any] | None:
    """What `brainbench speed` stored for `model` (the latest result of each leg), or None without a speed leg."""
    legs: dict[str, dict[str, Any]] = {}
    for r in results:
        if r.get("kind") != KIND or not isinstance(r.get("data"), dict):
            continue
        if r.get("model") == model or single_model or not r.get("model"):
            legs[r["name"]] = r
    if not legs:
        return None
    if "decode" not in legs:  # a matrix speed leg holds its decode leg inside (matrix/engine.py)
        nested = next((r for r in legs.values() if isinstance(_d(r["data"]).get("decode"), dict)), None)
        if nested is not None:
            legs["decode"] = {**nested, "data": nested["data"]["decode"]}
    summ = _d(legs.get("summary", {}).get("data"))
    meter = _d(summ.get("energy"))
    gpus = [{"name": g.get("name"), "index": g.get("index"), "power_limit_w": _n(g.get("power_limit_w")),
             "bandwidth_gbs": _n(g.get("bandwidth_gbs"))} for g in meter.get("gpus") or [] if isinstance(g, dict)]
    out: dict[str, Any] = {
        "legs": sorted(legs), "created": min((r.get("created") or 0) for r in legs.values()) or None,
        "started": summ.get("started"), "seconds": _n(summ.get("seconds")),
        "backend": _d(summ.get("backend")), "server": _d(summ.get("server")),
        "options": _d(summ.get("options")), "probe": _d(summ.get("probe")),
        "meter": {"measured": bool(meter.get("measured")), "reason": meter.get("reason"), "gpus": gpus} if meter else None,
        "roofline": _roofline(summ.get("roofline"), gpus),
        "decode": None, "prefill": [], "agent": [], "cross_check": [], "knee": None, "knee_rule": None,
        "energy_by_gpu": [],
    }
    dec = legs.get("decode")
    if dec:
        out["decode"] = _decode(dec["data"])
        out["energy_by_gpu"] += _gpu_rows("decode", dec["data"].get("energy"))
        cc = _cross("decode", dec["data"].get("cross_check"))
        if cc:
            out["cross_check"].append(cc)
    pre = legs.get("prefill")
    if pre:
        out["prefill"] = _prefill(pre["data"])
        for x in pre["data"].get("lengths") or []:
            if isinstance(x, dict):
                cc = _cross(f"prefill {x.get('target_tokens')} cold", _d(x.get("cold")).get("cross_check"))
                if cc:
                    out["cross_check"].append(cc)
    sw = legs.get("sweep")
    if sw:
        d = sw["data"]
        out["knee"], out["knee_rule"] = d.get("knee", summ.get("knee")), d.get("knee_rule", summ.get("knee_rule"))
        for x in d.get("levels") or d.get("sweep") or []:
            if isinstance(x, dict):
                cc = _cross(f"sweep c={x.get('concurrency')}", x.get("cross_check"))
                if cc:
                    out["cross_check"].append(cc)
                out["energy_by_gpu"] += _gpu_rows(f"sweep c={x.get('concurrency')}", x.get("energy"))
    elif summ.get("knee") is not None:
        out["knee"], out["knee_rule"] = summ.get("knee"), summ.get("knee_rule")
    ag = legs.get("agent")
    if ag:
        out["agent"] = _agent(ag["data"])
        out["agent_turns"] = ag["data"].get("turns")
    return out
