"""Render the report's view model as one self-contained HTML file and as Markdown (jinja2 templates).

The HTML inlines its CSS, its few lines of JavaScript and every chart (SVG drawn in `svg.py`): it opens
offline, from a mail attachment or an issue, and loads nothing from anywhere.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

from jinja2 import ChainableUndefined, Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from . import svg
from .data import build_report

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


def _env() -> Environment:
    env = Environment(loader=PackageLoader("brainbench.report", "templates"), autoescape=select_autoescape(["html", "j2"]),
                      undefined=ChainableUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(pct=pct, num=num, pp=pp, gb=gb, when=when, phk=phk, speed=speed, vclass=verdict_class,
                       gap=pct_gap)
    return env


# -- charts -------------------------------------------------------------------------------------------


def charts(rep: dict[str, Any]) -> dict[str, Any]:
    entries = rep["entries"]
    pts = []
    for e in entries:
        c = e["summary"]["overall"]["clean"]
        d = e["decode"]
        if e.get("speed_only"):  # no clean pass rate: not a point, named under the chart instead
            pts.append({"label": e["label"], "color": e["color"], "x": d["value"] if d else None, "y": None,
                        "why": "discipline not measured: speed legs only"})
            continue
        pts.append({
            "label": e["label"], "color": e["color"], "href": f"#brain-{e['id']}",
            "x": d["value"] if d else None,
            "x_lo": d["ci95"][0] if d and d.get("ci95") else None, "x_hi": d["ci95"][1] if d and d.get("ci95") else None,
            "y": c["rate"], "y_lo": c["ci95"][0], "y_hi": c["ci95"][1],
            "tip": f"{e['label']}: clean {pct(c)}, decode {speed(d)} tok/s ({d['source'] if d else 'speed not measured'})",
        })
    out: dict[str, Any] = {"scatter": svg.scatter(pts, "decode tok/s per request", "clean pass rate")}
    for metric in ("pass", "clean", "pass_hat_k"):
        rows = []
        for p in rep["packs"] + ["ALL"]:
            for e in entries:
                s = e["summary"]["overall"] if p == "ALL" else e["summary"]["packs"].get(p)
                if s is None:
                    continue
                if e.get("speed_only"):
                    rows.append({"group": p, "label": e["label"], "color": e["color"], "value": None,
                                 "note": NOT_MEASURED_DISCIPLINE})
                    continue
                if metric == "pass_hat_k":
                    ks = [int(k) for k, v in s["pass_hat_k"].items() if v is not None]
                    k = max(ks) if ks else None
                    v = s["pass_hat_k"][str(k)] if k else None
                    ci = (s.get("pass_hat_k_ci95") or {}).get(str(k)) if k else None
                    rows.append({"group": p, "label": e["label"], "color": e["color"], "value": v,
                                 "lo": ci[0] if ci else None, "hi": ci[1] if ci else None,
                                 "extra": f"(k={k})" if k else "", "note": "needs k ≥ 1 trials"})
                else:
                    r = s[metric]
                    rows.append({"group": p, "label": e["label"], "color": e["color"], "value": r["rate"],
                                 "lo": r["ci95"][0], "hi": r["ci95"][1], "extra": f"({r['k']}/{r['n']})",
                                 "tip": f"{e['label']} {p} {metric}: {pct(r)} ({r['k']}/{r['n']})"})
        out[f"bars_{metric}"] = svg.hbars(rows)
    out["iceberg"] = svg.iceberg([{"label": e["label"], "attempts": e["iceberg"]["attempts"],
                                   "clean": e["iceberg"]["clean"], "visible": e["iceberg"]["error_line"],
                                   "invisible": e["iceberg"]["silent"],
                                   "retry": e["iceberg"]["passed_after_retry"]} for e in entries
                                  if not e.get("speed_only")])
    curves = []
    for key, title in CURVE_METRICS:
        series = []
        for e in entries:
            for i, c in enumerate(e["curves"]):
                series.append({"label": e["label"] + (f" · {c['name']}" if len(e["curves"]) > 1 else ""),
                               "color": e["color"], "dash": i > 0,
                               "points": [(p["concurrency"], p.get(key)) for p in c["points"]]})
        for x in rep.get("loose_logs", []):
            for i, c in enumerate(x["curves"]):
                series.append({"label": c["name"], "color": x["color"], "dash": True,
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


def discipline_rows(rep: dict[str, Any]) -> list[dict[str, Any]]:
    """Agentic-discipline rates the scorer provides (absent metrics are left out, n = 0 shows as n/a)."""
    present = [m for m in DISCIPLINE if any(m[0] in e["summary"]["overall"] for e in rep["entries"]
                                            if not e.get("speed_only"))]
    rows = []
    for p in rep["packs"] + ["ALL"]:
        for e in rep["entries"]:
            s = e["summary"]["overall"] if p == "ALL" else e["summary"]["packs"].get(p)
            if s is None:
                continue
            rows.append({"pack": p, "entry": e, "cells": [s.get(key) for key, _, _ in present],
                         "speed_only": bool(e.get("speed_only"))})
    return [{"metrics": present, "rows": rows}] if present else []


def render_html(rep: dict[str, Any]) -> str:
    env = _env()
    here = Path(__file__).parent / "templates"
    return env.get_template("report.html.j2").render(
        r=rep, c=charts(rep), disc=discipline_rows(rep), css=Markup((here / "style.css").read_text()), js=Markup((here / "report.js").read_text()))


def render_markdown(rep: dict[str, Any]) -> str:
    env = _env()
    env.autoescape = False
    return env.get_template("report.md.j2").render(r=rep, disc=discipline_rows(rep))


def write_report(run_dirs: list[Path], *, baseline: Path | None = None, html: Path | None = None,
                 md: Path | None = None, at_concurrency: int | None = None,
                 model_sizes: dict[str, float] | None = None, title: str | None = None,
                 log_files: list[tuple[str | None, Path]] | None = None,
                 packs: list[str] | None = None) -> dict[str, Any]:
    rep = build_report(run_dirs, baseline, at_concurrency=at_concurrency, model_sizes=model_sizes, title=title,
                       log_files=log_files, packs=packs)
    if html:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(render_html(rep), encoding="utf-8")
    if md:
        md.parent.mkdir(parents=True, exist_ok=True)
        md.write_text(render_markdown(rep), encoding="utf-8")
    return rep
