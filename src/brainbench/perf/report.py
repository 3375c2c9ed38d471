"""Human tables for a speed report (the JSON is the contract; these are for reading)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

NA = "n/a"


def fmt(v: Any, nd: int = 1) -> str:
    if v is None:
        return NA
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    return str(v)


def pct(v: float | None) -> str:
    return NA if v is None else f"{v * 100:+.1f}%"


def energy_cell(e: dict[str, Any] | None, key: str, nd: int = 2) -> str:
    if not e or not e.get("measured"):
        return "not measured"
    return fmt(e.get(key), nd)


def decode_table(d: dict[str, Any]) -> Table:
    t = Table(title="single-stream decode", title_justify="left")
    for c in ("decode tok/s median", "min", "max", "CV", "gate", "wall tok/s", "TTFT ms", "ITL ms", "tokens",
              "J/token"):
        t.add_column(c, justify="right")
    g = d["gate"]
    xc = d.get("cross_check")
    t.add_row(fmt(d["decode_tps"]["median"], 2), fmt(d["decode_tps"]["min"], 2), fmt(d["decode_tps"]["max"], 2),
              NA if d["decode_tps"]["cv"] is None else f"{d['decode_tps']['cv'] * 100:.1f}%",
              f"{'pass' if g['passed'] else 'FAIL'} ({g['runs_total']} runs)",
              fmt(d["wall_tps"]["median"], 2), fmt(d["ttft_ms_median"]), fmt(d["itl_ms_median"], 2),
              f"{fmt(d['completion_tokens']['median'], 0)}{'' if d['fixed_length'] else ' (actual)'}",
              energy_cell(d.get("energy"), "joules_per_token", 4))
    if xc:
        t.caption = (f"{xc['server']} says {fmt(xc['server_tps_median'], 2)} tok/s; gap {pct(xc['gap_median'])}"
                     f"{' FLAGGED' if xc['flagged'] else ' (within noise)'}")
    return t


def _outside_cell(xc: dict[str, Any]) -> str:
    """'24.2 (19.6)': TTFT outside the server's prompt clock, and how much of it came before the response head."""
    head = xc.get("ttft_outside_before_head_ms_median")
    return fmt(xc.get("ttft_outside_server_ms_median"), 1) + ("" if head is None else f" ({fmt(head, 1)})")


def prefill_table(p: dict[str, Any]) -> Table:
    t = Table(title="prefill (cache-busted vs cache-warm)", title_justify="left")
    for c in ("prompt tokens", "cold TTFT ms", "cold prefill tok/s", "server tok/s", "gap",
              "TTFT outside server ms (before head)",
              "warm TTFT ms", "warm cached", "speed-up"):
        t.add_column(c, justify="right")
    for r in p["lengths"]:
        xc = r["cold"].get("cross_check") or {}
        t.add_row(fmt(r["prompt_tokens"], 0), fmt(r["cold"]["ttft_ms"]["median"]),
                  fmt(r["cold"]["prefill_tps"]["median"]), fmt(xc.get("server_tps_median")),
                  pct(xc.get("gap_median")) + (" !" if xc.get("flagged") else ""),
                  _outside_cell(xc),
                  fmt(r["warm"]["ttft_ms"]["median"]), fmt(r["warm"]["cached_tokens_median"], 0),
                  NA if r["ttft_speedup_warm"] is None else f"x{r['ttft_speedup_warm']:.1f}")
    heads = [(r["cold"].get("cross_check") or {}).get("ttft_outside_before_head_ms_median") for r in p["lengths"]]
    if any(h is not None and h >= 5 for h in heads):
        t.caption = ("before head: llama-server's chat template, tokeniser and host prompt cache (--cache-ram), "
                     "before its prompt clock starts; bench/ttft_split.py takes them apart")
    return t


def sweep_table(levels: list[dict[str, Any]], knee: int | None) -> Table:
    t = Table(title="concurrency sweep", title_justify="left")
    for c in ("conc", "reqs", "err", "agg tok/s", "per-req tok/s", "compl/min", "TTFT p50", "TTFT p99",
              "ITL p50", "ITL p99", "gap p50", "J/token", "tok/s/kW"):
        t.add_column(c, justify="right")
    for lv in levels:
        e = lv.get("energy")
        conc = f"{lv['concurrency']}{' ← knee' if lv.get('knee') else ''}"
        t.add_row(conc, str(lv["requests"]), str(lv["errors"]), fmt(lv["gen_tps_aggregate"]),
                  fmt(lv["gen_tps_per_request"]), fmt(lv["completions_per_min"]), fmt(lv["ttft_ms_median"]),
                  fmt(lv["ttft_ms_p99"]), fmt(lv["itl_ms_median"], 2), fmt(lv["itl_ms_p99"], 2),
                  fmt(lv.get("chunk_gap_ms_median"), 2), energy_cell(e, "joules_per_token", 4),
                  energy_cell(e, "tokens_per_s_per_kw", 1))
    t.caption = ("times in ms; ITL = per token, gap = per chunk; "
                 + (f"knee at concurrency {knee}: past it, more in flight buys nothing" if knee
                    else "no knee in this range"))
    return t


def agent_table(a: dict[str, Any]) -> Table:
    t = Table(title=f"agent-shaped turns ({a['turns']} per conversation)", title_justify="left")
    for c in ("mode", "conc", "turns", "err", "s/turn", "turns/min", "TTFT first→last ms", "cached last turn",
              "tool TTFT ms", "J/turn"):
        t.add_column(c, justify="right")
    for lv in a["levels"]:
        pt = lv["per_turn"]
        ttfts = f"{fmt(pt[0]['ttft_ms_median'], 0)} → {fmt(pt[-1]['ttft_ms_median'], 0)}" if pt else NA
        t.add_row(lv["mode"], str(lv["concurrency"]), str(lv["turns_completed"]), str(lv["errors"]),
                  fmt(lv["wall_per_turn_s"], 2), fmt(lv["turns_per_min"]), ttfts,
                  fmt(pt[-1]["cached_tokens_median"], 0) if pt else NA, fmt(lv["ttft_tool_ms_median"], 0),
                  energy_cell(lv.get("energy"), "joules_per_turn", 2))
    return t


def render(report: dict[str, Any]) -> Group:
    parts: list[Any] = [Text(f"brainbench speed: {report['model']} (run dir {report['run_dir']})", style="bold")]
    parts += [Text(f"warning: {w}", style="yellow") for w in report.get("load_warnings") or []]
    if report.get("decode"):
        parts.append(decode_table(report["decode"]))
    if report.get("prefill"):
        parts.append(prefill_table(report["prefill"]))
    if report.get("sweep"):
        parts.append(sweep_table(report["sweep"], report.get("knee")))
    if report.get("agent"):
        parts.append(agent_table(report["agent"]))
    e = report.get("energy") or {}
    parts.append(Text("energy: " + ("measured on " + ", ".join(f"GPU{g['index']} {g['name']}" for g in e["gpus"])
                                    if e.get("measured") else f"not measured ({e.get('reason')})")))
    r = report.get("roofline") or {}
    if r.get("computed"):
        frac = NA if r["fraction_of_bound"] is None else f"{r['fraction_of_bound'] * 100:.0f}%"
        parts.append(Text(f"decode roofline: {r['bandwidth_gbs']} GB/s ÷ {r['bytes_per_token_gb']} GB/token = "
                          f"{r['bound_tps']} tok/s bound; measured {fmt(r['measured_tps'], 2)} "
                          f"({frac} of bound; bandwidth {r['bandwidth_source']})"))
    else:
        parts.append(Text(f"decode roofline: not computed ({r.get('reason')})"))
    return Group(*parts)
