"""What the report outputs share: the jinja2 environment and its filters, the charts and the discipline
rows drawn from the typed report (`model.Report`), and `write_report` (build once, write each output asked for).

The outputs themselves (html, md, terminal, json) live one per module in `outputs/`.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

from jinja2 import ChainableUndefined, Environment, PackageLoader, select_autoescape

from . import svg
from .data import build_report
from .model import Report
from .tables import ONE_TRIAL

CURVE_METRICS = [
    ("gen_tps_aggregate", "aggregate decode tok/s"),
    ("gen_tps_per_request", "per-request decode tok/s"),
    ("completions_per_min", "completions per minute"),
    ("ttft_ms_median", "TTFT median (ms)"),
    ("ttft_ms_p99", "TTFT p99 (ms)"),
    ("itl_ms_median", "inter-token latency median (ms)"),
    ("joules_per_token", "joules per token"),
]
NOT_MEASURED_DISCIPLINE = "not measured (speed legs only)"


# -- filters ------------------------------------------------------------------------------------------


def pct(r: Any, ci: bool = True) -> str:
    """A rate dict (`{rate, ci95}`) or a bare fraction as `62% [41–79]`."""
    if r is None:
        return "–"
    if isinstance(r, (int, float)):
        return f"{100 * r:.0f}%"
    if r.get("rate") is None:
        return "–"
    s = f"{100 * r['rate']:.0f}%"
    if ci and r.get("ci95"):
        lo, hi = r["ci95"]
        s += f" [{100 * lo:.0f}–{100 * hi:.0f}]"
    return s


def num(v: Any, nd: int = 1, unit: str = "") -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and abs(v) >= 1000:
        s = f"{v:,.0f}"
    elif isinstance(v, float):
        s = f"{v:.{nd}f}"
    else:
        s = str(v)
    return s + unit


def pp(v: Any) -> str:
    """A difference of two rates in percentage points, signed."""
    return "–" if v is None else f"{100 * v:+.0f} pp"


def mdd(v: Any) -> str:
    """A minimum detectable difference as `±20 pp`."""
    return "–" if v is None else f"±{100 * v:.0f} pp"


def separable_text(sep: Any) -> str:
    """A compare verdict (`scoring.metrics.separable`) as one phrase."""
    from ..scoring.metrics import verdict_text

    return "–" if not sep else verdict_text(sep)


def harness_verdict(sep: Any) -> str:
    """A realism-gap verdict (A = minimal, B = agent) in the harnesses' names."""
    return separable_text(sep).replace("A better", "minimal better").replace("B better", "agent better")


def replica_verdict(sep: Any) -> str:
    """A replica's compare verdict against the other replicas (A = the others, B = this replica)."""
    return separable_text(sep).replace("A better", "the others better").replace("B better", "this replica better")
def engine_verdict(sep: Any, a: str, b: str) -> str:
    """An engine-gap verdict (A = the first engine) in the engines' names."""
    return separable_text(sep).replace("A better", f"{a} better").replace("B better", f"{b} better")


def ms(v: Any) -> str:
    """Milliseconds, or – when not measured."""
    return "–" if v is None else f"{v:.0f} ms"


def per100(v: Any) -> str:
    """Occurrences per 100 calls with its interval: `12.5 [8.1–18.0]`."""
    if not v or v.get("value") is None:
        return "–"
    lo, hi = v["ci95"]
    return f"{v['value']:.1f} [{lo:.1f}–{hi:.1f}]"


def gb(b: Any) -> str:
    return "unknown" if not b else f"{b / 1e9:.2f} GB"


def when(ts: Any) -> str:
    try:
        return _dt.datetime.fromtimestamp(float(ts)).strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError, OverflowError, OSError):
        return "–"


def phk(s: dict[str, Any]) -> str:
    ks = [int(k) for k, v in (s.get("pass_hat_k") or {}).items() if v is not None]
    if not ks:
        return "–"
    k = max(ks)
    if k == 1:  # one trial: pass^1 is the pass rate itself, not a measure of consistency
        return ONE_TRIAL
    return f"{s['pass_hat_k'][str(k)]:.2f} (k={k})"


def speed(d: Any) -> str:
    if not d:
        return "not measured"
    s = f"{d['value']:.1f}"
    if d.get("ci95") and d["ci95"][1] > d["ci95"][0]:
        s += f" [{d['ci95'][0]:.1f}–{d['ci95'][1]:.1f}]"
    return s


def pct_gap(v: Any, signed: bool = True) -> str:
    """A relative gap (0.008) as `+0.8%` (or `0.8%` unsigned)."""
    return "–" if v is None else (f"{100 * v:+.1f}%" if signed else f"{100 * v:.1f}%")


def verdict_class(v: str | None) -> str:
    return {"better": "good", "worse": "bad", "within noise": "noise"}.get(v or "", "na")


def jinja_env() -> Environment:
    """The templates' environment with the report filters (HTML autoescaped; Markdown outputs turn it off)."""
    env = Environment(loader=PackageLoader("brainbench.report", "templates"), autoescape=select_autoescape(["html", "j2"]),
                      undefined=ChainableUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(pct=pct, num=num, pp=pp, gb=gb, when=when, phk=phk, speed=speed, vclass=verdict_class,
                       gap=pct_gap, mdd=mdd, sep=separable_text,
                       hv=harness_verdict, rv=replica_verdict, per100=per100, ev=engine_verdict, ms=ms)
    from ..scoring.metrics import CONVENTION

    env.globals["convention"] = CONVENTION
    return env


# -- charts -------------------------------------------------------------------------------------------


def charts(rep: Report) -> dict[str, Any]:
    """Every SVG chart of the HTML report."""
    entries = rep.entries
    pts = []
    for e in entries:
        c = e.summary["overall"]["clean"]
        d = e.decode
        if e.speed_only:  # no clean pass rate: not a point, named under the chart instead
            pts.append({"label": e.label, "color": e.color, "x": d["value"] if d else None, "y": None,
                        "why": "discipline not measured: speed legs only"})
            continue
        pts.append({
            "label": e.label, "color": e.color, "href": f"#brain-{e.id}",
            "x": d["value"] if d else None,
            "x_lo": d["ci95"][0] if d and d.get("ci95") else None, "x_hi": d["ci95"][1] if d and d.get("ci95") else None,
            "y": c["rate"], "y_lo": c["ci95"][0], "y_hi": c["ci95"][1],
            "tip": f"{e.label}: clean {pct(c)}, decode {speed(d)} tok/s ({d['source'] if d else 'speed not measured'})",
        })
    out: dict[str, Any] = {"scatter": svg.scatter(pts, "decode tok/s per request", "clean pass rate")}
    for metric in ("pass", "clean", "pass_hat_k"):
        rows = []
        for p in rep.packs + ["ALL"]:
            for e in entries:
                s = e.summary["overall"] if p == "ALL" else e.summary["packs"].get(p)
                if s is None:
                    continue
                if e.speed_only:
                    rows.append({"group": p, "label": e.label, "color": e.color, "value": None,
                                 "note": NOT_MEASURED_DISCIPLINE})
                    continue
                if metric == "pass_hat_k":
                    ks = [int(k) for k, v in s["pass_hat_k"].items() if v is not None]
                    k = max(ks) if ks else None
                    v = s["pass_hat_k"][str(k)] if k else None
                    ci = (s.get("pass_hat_k_ci95") or {}).get(str(k)) if k else None
                    rows.append({"group": p, "label": e.label, "color": e.color, "value": v,
                                 "lo": ci[0] if ci else None, "hi": ci[1] if ci else None,
                                 "extra": f"(k={k})" if k else "", "note": "needs k ≥ 1 trials"})
                else:
                    r = s[metric]
                    rows.append({"group": p, "label": e.label, "color": e.color, "value": r["rate"],
                                 "lo": r["ci95"][0], "hi": r["ci95"][1], "extra": f"({r['k']}/{r['n']})",
                                 "tip": f"{e.label} {p} {metric}: {pct(r)} ({r['k']}/{r['n']})"})
        out[f"bars_{metric}"] = svg.hbars(rows)
    out["iceberg"] = svg.iceberg([{"label": e.label, "attempts": e.iceberg["attempts"],
                                   "clean": e.iceberg["clean"], "visible": e.iceberg["error_line"],
                                   "invisible": e.iceberg["silent"],
                                   "retry": e.iceberg["passed_after_retry"]} for e in entries
                                  if not e.speed_only])
    curves = []
    for key, title in CURVE_METRICS:
        series: list[dict[str, Any]] = []
        for e in entries:
            for i, c in enumerate(e.curves):
                series.append({"label": e.label + (f" · {c['name']}" if len(e.curves) > 1 else ""),
                               "color": e.color, "dash": i > 0,
                               "points": [(p["concurrency"], p.get(key)) for p in c["points"]]})
        for x in rep.loose_logs:
            for c in x.curves:
                series.append({"label": c["name"], "color": x.color, "dash": True,
                               "points": [(p["concurrency"], p.get(key)) for p in c["points"]]})
        if any(y is not None for s in series for _, y in s["points"]):
            curves.append({"title": title, "svg": svg.lines(series, "concurrency", title)})
    out["curves"] = curves
    return out


DISCIPLINE = [
    ("strict_pass", "strict pass", "passed with every tool call in the structured channel"),
    ("omission", "omission", "tasks with an obligation that ended with it still open (no close-out)"),
    ("first_dispatch_violation", "1st-dispatch violation", "obligations left open at the end of the first dispatch"),
    ("recovery", "recovery when denied", "attempts that met a refusal and still got there"),
    ("in_text_rate", "calls written as text", "tool calls recovered from the reply text"),
    ("flaky_scenarios", "flaky scenarios", "scenarios that both passed and failed across trials"),
]


def discipline_rows(rep: Report) -> list[dict[str, Any]]:
    """Agentic-discipline rates the scorer provides (absent metrics are left out, n = 0 shows as n/a)."""
    present = [m for m in DISCIPLINE if any(m[0] in e.summary["overall"] for e in rep.discipline_entries)]
    rows = []
    for p in rep.packs + ["ALL"]:
        for e in rep.entries:
            s = e.summary["overall"] if p == "ALL" else e.summary["packs"].get(p)
            if s is None:
                continue
            rows.append({"pack": p, "entry": e, "cells": [s.get(key) for key, _, _ in present],
                         "speed_only": e.speed_only})
    return [{"metrics": present, "rows": rows}] if present else []


def write_report(run_dirs: list[Path], *, baseline: Path | None = None, html: Path | None = None,
                 md: Path | None = None, at_concurrency: int | None = None,
                 model_sizes: dict[str, float] | None = None, title: str | None = None,
                 log_files: list[tuple[str | None, Path]] | None = None,
                 packs: list[str] | None = None, files: dict[str, Path] | None = None) -> Report:
    """Build the report once and write each output asked for: `files` maps an output name to a path
    (`html` and `md` are shorthands for the two file outputs)."""
    from .outputs import get_output

    rep = build_report(run_dirs, baseline, at_concurrency=at_concurrency, model_sizes=model_sizes, title=title,
                       log_files=log_files, packs=packs)
    wanted = {**({"html": html} if html else {}), **({"md": md} if md else {}), **(files or {})}
    for name, path in wanted.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(get_output(name).render(rep), encoding="utf-8")
    return rep
