"""Build the report model (`model.Report`) from run directories; the registered outputs (`outputs/`) read it.

Built on `report.export.export_data` (the export contract) plus the stored transcripts. Every part is
optional: a run without a speed leg, without energy, without a known model size or host record gets
`None` there and the views say "not measured" / "unknown" instead of failing.

A run directory that holds only `brainbench speed` legs (no attempts at all) becomes a *speed-only* entry
(`Entry.speed_only`): an empty summary (every rate None, never 0), no attempts, and its speed figures,
speed-leg details and provenance from the legs themselves. The views show its discipline parts as
"not measured" and leave it out of the speed × discipline scatter.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..core.errors import BrainbenchError
from ..core.records import AttemptRecord
from ..core.taxonomy import layer
from ..store.db import RunStore
from .export import export_data
from .model import Entry, LooseLog, Report
from .replicas import replica_figures
from .speedlegs import speed_details

GB = 1e9
MAX_TRANSCRIPTS = 150
"""Per brain: failed attempts beyond this are listed but their transcripts left out (keeps the HTML small)."""
MAX_TEXT = 4000
"""Characters kept of one message in a transcript (the rest is elided, the store keeps everything)."""

class ReportError(BrainbenchError):
    """A report cannot be built from what was given."""


# -- small numeric helpers ---------------------------------------------------------------------------


def mean_ci(values: list[float]) -> dict[str, Any] | None:
    """Mean with a 95% normal interval over samples (for speed figures); None without samples."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return None
    m = statistics.fmean(vals)
    half = 1.96 * statistics.stdev(vals) / math.sqrt(len(vals)) if len(vals) > 1 else 0.0
    return {"value": m, "median": statistics.median(vals), "ci95": [max(0.0, m - half), m + half], "n": len(vals),
            "cv": (statistics.stdev(vals) / m) if len(vals) > 1 and m else None}


def judge(cur: float | None, cur_ci: list[float] | None, base: float | None, base_ci: list[float] | None,
          higher_is_better: bool = True) -> str:
    """'better' / 'worse' only when the two 95% intervals do not overlap; else 'within noise'."""
    if cur is None or base is None:
        return "n/a"
    if cur_ci is None or base_ci is None:
        return "no CI"
    if cur_ci[0] <= base_ci[1] and base_ci[0] <= cur_ci[1]:
        return "within noise"
    up = cur > base
    return "better" if up == higher_is_better else "worse"


def _num(x: Any) -> float | None:
    if isinstance(x, bool):
        return None
    if isinstance(x, (int, float)) and math.isfinite(x):
        return float(x)
    if isinstance(x, dict):
        for k in ("median", "value", "mean"):
            if k in x:
                return _num(x[k])
    return None


# -- speed from the attempts themselves --------------------------------------------------------------


def decode_samples(records: Iterable[AttemptRecord]) -> tuple[list[float], str]:
    """Per-request decode tok/s: the server's own clock where it reports one, else the client's clock."""
    server: list[float] = []
    client: list[float] = []
    for rec in records:
        if rec.status != "completed":
            continue
        for t in rec.turns:
            r = t.result
            st = r.server_timings or {}
            pps = _num(st.get("predicted_per_second"))
            if pps and (st.get("predicted_n") or 0) >= 2:
                server.append(pps)
            n = r.usage.completion_tokens
            tm = r.timing
            if n and n >= 2 and tm.first_token is not None and tm.end is not None and len(tm.chunks) >= 2:
                window = tm.end - tm.first_token
                if window > 1e-3:
                    client.append(n / window)
    if server:
        return server, "server clock (llama-server timings) of the run's own requests"
    return client, "client clock of the run's own requests"


# -- speed legs and mined logs -----------------------------------------------------------------------


def _curve_from_sweep(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pts = []
    for r in rows:
        c = _num(r.get("concurrency"))
        if c is None:
            continue
        p: dict[str, float | None] = {"concurrency": int(c)}
        for k in ("requests", "errors", "ttft_ms_median", "ttft_ms_p99", "itl_ms_median", "itl_ms_p99",
                  "gen_tps_aggregate", "gen_tps_per_request", "completions_per_min", "watts",
                  "joules_per_token", "gen_tps_per_kw"):
            p[k] = _num(r.get(k))
        energy = r.get("energy")
        if isinstance(energy, dict) and energy.get("measured", True):
            p["watts"] = p["watts"] or _num(energy.get("watts") or energy.get("avg_watts") or energy.get("power_w"))
            p["joules_per_token"] = p["joules_per_token"] or _num(energy.get("joules_per_token")
                                                                    or energy.get("j_per_token"))
        pts.append(p)
    return sorted(pts, key=lambda p: p["concurrency"])


def _curve_from_buckets(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """vLLM log buckets (by `Running`, optionally by window label) -> curves in the sweep's shape."""
    by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        running = _num(r.get("running"))
        if not running or running < 1:
            continue
        by_label[str(r.get("label") or "")].append({
            "concurrency": int(running), "requests": _num(r.get("completions")), "errors": None,
            "ttft_ms_median": None, "ttft_ms_p99": None, "itl_ms_median": None, "itl_ms_p99": None,
            "gen_tps_aggregate": _num(r.get("gen_tps_mean")), "gen_tps_per_request": _num(r.get("per_request_tps")),
            "completions_per_min": _num(r.get("completions_per_min")), "watts": _num(r.get("watts")),
            "joules_per_token": None, "gen_tps_per_kw": _num(r.get("gen_tps_per_kw")),
        })
    return {k: sorted(v, key=lambda p: p["concurrency"]) for k, v in by_label.items()}


def _energy_rows(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for p in points:
        jpt = p.get("joules_per_token")
        w, tps = p.get("watts"), p.get("gen_tps_aggregate")
        if jpt is None and w and tps:
            jpt = w / tps
        if jpt is None and p.get("gen_tps_per_kw"):
            jpt = 1000.0 / p["gen_tps_per_kw"]
        if jpt is None:
            continue
        out.append({"concurrency": p["concurrency"], "watts": w, "gen_tps_aggregate": tps, "joules_per_token": jpt,
                    "tokens_per_kwh": 3.6e6 / jpt if jpt else None})
    return out


def _decode_figure(dv: Any, src: str) -> dict[str, Any] | None:
    """A decode figure from a stored value: a number, or a summary dict (count/mean/median/cv, or ci95)."""
    val = _num(dv)
    if val is None:
        return None
    out: dict[str, Any] = {"value": val, "ci95": None, "n": None, "cv": None, "source": src}
    if isinstance(dv, dict):
        n = dv.get("count", dv.get("n"))
        out["n"], out["cv"] = n, dv.get("cv")
        if isinstance(dv.get("ci95"), (list, tuple)) and len(dv["ci95"]) == 2:
            out["ci95"] = list(dv["ci95"])
        elif _num(dv.get("mean")) and isinstance(dv.get("cv"), (int, float)) and isinstance(n, int) and n > 1:
            m = float(dv["mean"])
            half = 1.96 * dv["cv"] * m / math.sqrt(n)
            out.update(value=m, ci95=[max(0.0, m - half), m + half])
    return out


def speed_parts(results: list[dict[str, Any]], model: str, single_model: bool) -> dict[str, Any]:
    """Curves, energy and a decode figure from stored speed legs / mined logs for one model.

    Reads what `brainbench speed` stores (kind 'speed': 'decode' with a decode_tps summary, 'sweep' with
    `levels`), the matrix runner's shape (`decode_tps` and `sweep` in one result) and mined server logs
    (`buckets` by running requests). The latest result of each name wins.
    """
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for r in results:
        if r.get("model") == model or single_model or not r.get("model"):
            latest[(r["kind"], r["name"])] = r
    curves: list[dict[str, Any]] = []
    decode: dict[str, Any] | None = None
    extra_energy: list[dict[str, Any]] = []
    for r in latest.values():
        d = r.get("data") or {}
        if not isinstance(d, dict):
            continue
        src = f"{r['kind']} '{r['name']}'"
        for key in ("sweep", "levels"):
            rows = d.get(key)
            if isinstance(rows, list) and r["name"] != "agent" and any(
                    isinstance(x, dict) and "gen_tps_aggregate" in x for x in rows):
                pts = _curve_from_sweep([x for x in rows if isinstance(x, dict)])
                if pts:
                    curves.append({"name": r["name"], "source": src, "points": pts})
                break
        if isinstance(d.get("buckets"), list):
            for label, pts in _curve_from_buckets([x for x in d["buckets"] if isinstance(x, dict)]).items():
                if pts:
                    curves.append({"name": f"{r['name']} {label}".strip(), "source": f"{src} (server log)",
                                   "points": pts})
        if r["kind"] == "speed" and decode is None:
            decode = _decode_figure(d.get("decode_tps"), f"{src}: decode_tps")
            if decode:
                decode["concurrency"] = 1  # the decode leg is single-stream
        en = d.get("energy")
        if isinstance(en, dict) and en.get("measured", True):
            jpt = _num(en.get("joules_per_token") or en.get("j_per_token"))
            w = _num(en.get("watts") or en.get("avg_watts") or en.get("power_w"))
            tps = _num(en.get("gen_tps") or en.get("tokens_per_s"))
            if jpt is None and w and tps:
                jpt = w / tps
            if tps is None and w and jpt:  # `brainbench speed` stores watts and J/token: tok/s = W / (J/token)
                tps = w / jpt
            if jpt:
                extra_energy.append({"concurrency": _num(en.get("concurrency")) or (1.0 if r["name"] == "decode" else None),
                                     "watts": w, "gen_tps_aggregate": tps, "joules_per_token": jpt,
                                     "tokens_per_kwh": 3.6e6 / jpt, "source": src})
    if decode is None:
        for c in curves:
            one = next((p for p in c["points"] if p["concurrency"] == 1 and p.get("gen_tps_per_request")), None)
            if one:
                decode = {"value": one["gen_tps_per_request"], "ci95": None, "n": None, "cv": None,
                          "source": f"{c['source']}: per-request tok/s at concurrency 1", "concurrency": 1}
                break
    energy = [dict(e, source=c["source"]) for c in curves for e in _energy_rows(c["points"])] + extra_energy
    return {"curves": curves, "decode": decode, "energy": energy}


# -- model size ---------------------------------------------------------------------------------------


def model_size(run_meta: dict[str, Any], server: dict[str, Any], results: list[dict[str, Any]],
               overrides: dict[str, float], label: str, model: str) -> tuple[int | None, str]:
    for key in (label, model):
        if key in overrides:
            return int(overrides[key] * GB), "given with --model-size"
    backend = run_meta.get("backend") or {}
    brain = backend.get("brain") or server.get("brain")
    if brain:
        from ..backend.fetch import MODELS

        if brain in MODELS:  # an unknown brain just has no known size
            return MODELS[brain].size, f"GGUF file of embedded {brain}"
    for src in (server, run_meta, backend):
        for k in ("model_bytes", "model_size_bytes", "model_file_bytes"):
            if isinstance(src.get(k), (int, float)) and src[k] > 0:
                return int(src[k]), f"run meta {k}"
    for r in results:
        d = r.get("data") or {}
        if isinstance(d, dict) and isinstance(d.get("model_bytes"), (int, float)) and (r.get("model") in (model, None)):
            return int(d["model_bytes"]), f"{r['kind']} '{r['name']}'"
    return None, "unknown"


# -- transcripts --------------------------------------------------------------------------------------


def _clip(text: Any) -> str:
    s = text if isinstance(text, str) else ("" if text is None else str(text))
    return s if len(s) <= MAX_TEXT else s[:MAX_TEXT] + f"\n… [{len(s) - MAX_TEXT} more characters in the store]"


def _msg_text(content: Any) -> str:
    if isinstance(content, list):  # OpenAI content parts
        return "\n".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
    return _clip(content)


def failing_turns(rec: AttemptRecord, failures: list[str], details: dict[str, Any]) -> dict[int, list[str]]:
    """Turn index -> failure classes to highlight there (the scorer's own pointer first, else inferred)."""
    marks: dict[int, list[str]] = defaultdict(list)
    given = details.get("failing_turn", details.get("failure_turns"))
    if isinstance(given, int):
        for f in failures or ["failure"]:
            marks[given].append(f)
        return dict(marks)
    if isinstance(given, dict):
        for k, v in given.items():
            if str(k).lstrip("-").isdigit():
                marks[int(k)] += v if isinstance(v, list) else [str(v)]
        if marks:
            return dict(marks)
    placed: set[str] = set()
    for t in rec.turns:
        for tr in t.tool_results:
            if tr.error_kind:
                marks[t.index].append(tr.error_kind)
                placed.add(tr.error_kind)
            if tr.in_text:
                marks[t.index].append("tool_call_in_text")
                placed.add("tool_call_in_text")
        r = t.result
        if not r.content.strip() and not r.tool_calls and not r.reasoning.strip():
            marks[t.index].append("empty_response")
            placed.add("empty_response")
    rest = [f for f in dict.fromkeys(failures) if f not in placed]
    first_call = next((t.index for t in rec.turns if t.result.tool_calls), None)
    if first_call is not None:  # a call that should not have been made: the turn that made it
        for f in [f for f in rest if "unneeded" in f or "forbidden" in f]:
            marks[first_call].append(f)
            rest.remove(f)
    if rest and rec.turns:
        last = rec.turns[-1].index
        marks[last] += rest
    return dict(marks)


def transcript(rec: AttemptRecord, verdict: dict[str, Any] | None) -> dict[str, Any]:
    """A transcript for people: initial messages, then each turn with its tool results and marks."""
    failures = verdict["failures"] if verdict else []
    details = verdict["details"] if verdict else {}
    marks = failing_turns(rec, failures, details) if verdict and not (verdict["passed"] and verdict["clean"]) else {}
    first_req = rec.turns[0].result.request.get("messages", []) if rec.turns else []
    if not first_req and rec.dispatches and rec.dispatches[0].messages:
        first_req = rec.dispatches[0].messages
    n_before = rec.turns[0].messages_before if rec.turns else len(first_req)
    intro = [{"role": m.get("role", "?"), "text": _msg_text(m.get("content"))}
             for m in first_req[: n_before or len(first_req)] if isinstance(m, dict)]
    dispatches = {d.index: d for d in rec.dispatches}
    turns = []
    for t in rec.turns:
        r = t.result
        results = {tr.call_id: tr for tr in t.tool_results}
        calls = []
        for c in r.tool_calls:
            tr = results.pop(c.id, None)
            calls.append({"name": c.name, "args": _clip(c.arguments_raw), "parse_error": c.parse_error,
                          "in_text": c.in_text, "ok": tr.ok if tr else None, "error_kind": tr.error_kind if tr else None,
                          "output": _clip(tr.output) if tr else None})
        for tr in results.values():  # results without a matching call id (should not happen; shown anyway)
            calls.append({"name": tr.name, "args": "", "parse_error": None, "in_text": tr.in_text, "ok": tr.ok,
                          "error_kind": tr.error_kind, "output": _clip(tr.output)})
        turns.append({
            "index": t.index, "dispatch": t.dispatch, "content": _clip(r.content), "reasoning": _clip(r.reasoning),
            "finish_reason": r.finish_reason, "calls": calls, "nudge": t.nudge,
            "tokens": r.usage.completion_tokens, "wall_s": r.timing.wall,
            "marks": list(dict.fromkeys(marks.get(t.index, []))),
            "events": [f"{e.kind}: {e.detail}" for e in r.events],
        })
    return {
        "intro": intro, "turns": turns,
        "dispatches": [{"index": d.index, "end_reason": d.end_reason, "open_obligation": d.open_obligation,
                        "detail": d.detail}
                       for d in dispatches.values()],
        "reasons": details.get("reasons", []), "failures": failures,
        "infra_events": [f"{e.kind}: {e.detail}" for e in rec.infra_events], "error": rec.error,
        "final_state": rec.final_state,
    }


# -- one run directory --------------------------------------------------------------------------------


def load_run(run_dir: Path, packs: list[str] | None = None) -> dict[str, Any]:
    """Everything the report needs from one run directory (only `packs`, when given)."""
    from ..scoring import SCORER, summary

    run_dir = Path(run_dir)
    with RunStore(run_dir) as store:
        data = export_data(store)
        records = list(store.attempts())
        verdicts = store.verdicts(SCORER)
        data["server"] = store.get_meta("server") or {}
        data["host"] = store.get_meta("host") or {}
        data["created"] = store.get_meta("created")
        data["speed_server"] = store.get_meta("speed_server") or {}
        scen = store.get_meta("scenarios") or {}
        planned = store.get_meta("current_versions")
        data["load_warnings"] = store.get_meta("load_warnings") or []
    data["planned"] = sorted(k for k in planned if not packs or k.split("/")[0] in packs) if planned else None
    data["attempts_stored"] = len(records)
    if packs:
        data["attempts"] = [r for r in data["attempts"] if r["pack"] in packs]
        data["summary"] = summary(data["attempts"])
        records = [r for r in records if r.pack in packs]
        scen = {h: sc for h, sc in scen.items() if sc.get("pack") in packs}
    data["records"] = records
    data["verdicts"] = verdicts
    data["run_dir"] = str(run_dir)
    data["scenario_hashes"] = {}
    for h, s in scen.items():
        data["scenario_hashes"].setdefault(s.get("pack", "?"), set()).add(h)
    return data


def _iceberg(rows: list[dict[str, Any]], given: Any) -> dict[str, Any]:
    """Visible (an error line shows) vs silent failures, by occurrence and by attempt."""
    scored = [r for r in rows if r["scored"]]
    layers: dict[str, dict[str, int]] = {"error_line": {}, "silent": {}, "discipline": {}}
    for r in scored:
        for f in r["failures"]:
            bucket = layers.setdefault(layer(f), {})
            bucket[f] = bucket.get(f, 0) + 1
    failed = [r for r in scored if not r["passed"]]
    hidden = [r for r in failed if not any(layer(f) == "error_line" for f in r["failures"])
              and not r["tool_errors"] and not r["infra_events"]]
    return {
        "attempts": len(scored), "given": given if isinstance(given, dict) else None,
        "clean": sum(1 for r in scored if r["clean"]),
        "passed_after_retry": sum(1 for r in scored if r["passed"] and not r["clean"]),
        "failed": len(failed), "failed_without_error_line": len(hidden),
        "error_line": sum(layers["error_line"].values()), "silent": sum(layers["silent"].values()),
        "discipline": sum(layers["discipline"].values()),
        "classes": {k: dict(sorted(v.items(), key=lambda kv: -kv[1])) for k, v in layers.items()},
    }


def _noise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The noise floor of the rows the summary rates count, per pack and "ALL"."""
    from ..scoring.metrics import noise_floor

    scored = [r for r in rows if r["scored"] and r.get("current", True)]
    if not scored:
        return {}
    out = {p: noise_floor([r for r in scored if r["pack"] == p]) for p in sorted({r["pack"] for r in scored})}
    return {**out, "ALL": noise_floor(scored)}


def _tasks_per_hour(records: list[AttemptRecord], model: str) -> dict[str, Any] | None:
    done = [r for r in records if r.model == model and r.status == "completed" and r.ended > r.started > 0]
    if len(done) < 2:
        return None
    span = max(r.ended for r in done) - min(r.started for r in done)
    if span <= 0:
        return None
    return {"tasks": len(done), "span_s": span, "tasks_per_hour": len(done) / span * 3600}


def empty_summary() -> dict[str, Any]:
    """A model summary with no attempts: every rate None (shown as "not measured"), never 0."""
    from ..scoring.metrics import summarise

    return {"overall": summarise([]), "packs": {}, "infra_errors": 0}


def speed_models(results: list[dict[str, Any]]) -> list[str]:
    """Models with stored speed figures (speed legs, matrix speed results, mined logs), in first-seen order."""
    models: list[str] = []
    for r in results:
        m = r.get("model")
        if m and m not in models and isinstance(r.get("data"), dict):
            if r["kind"] == "speed" or speed_parts([r], m, True)["curves"]:
                models.append(m)
    return models


def _entry(run: dict[str, Any], model: str, single: bool, overrides: dict[str, float],
           speed_only: bool = False) -> Entry:
    s = run["summary"].get(model) or empty_summary()
    rows = [r for r in run["attempts"] if r["model"] == model]
    records = [r for r in run["records"] if r.model == model]
    meta = run["run"] or {}
    speed = speed_parts(run["results"], model, single)
    legs = speed_details(run["results"], model, single)
    samples, src = decode_samples(records)
    own = mean_ci(samples)
    if own:
        own = {**own, "source": src, "concurrency": meta.get("concurrency")}
    decode = speed["decode"] or own
    clean_rate = s["overall"]["clean"]["rate"]
    server = run["server"]
    if speed_only:  # no `brainbench run` meta: what the speed legs recorded stands in
        meta = {**meta, "backend": meta.get("backend") or (legs or {}).get("backend") or {}}
        server = server or run.get("speed_server") or (legs or {}).get("server") or {}
    size, size_src = model_size(meta, server, run["results"], overrides, model, model)
    e: dict[str, Any] = {
        "model": model, "label": model, "run_dir": run["run_dir"], "run_name": Path(run["run_dir"]).name,
        "speed_only": speed_only, "speed_legs": legs, "summary": s, "rows": rows, "decode": decode, "decode_own": own,
        "curves": speed["curves"], "energy": speed["energy"],
        "size_bytes": size, "size_source": size_src,
        "iceberg": _iceberg(rows, s.get("iceberg")),
        "soak": [{"name": r["name"], **{k: r["data"].get(k) for k in (
            "sessions_run", "sessions_complete", "turns", "turns_ok", "silent_empty", "decode_tps_median",
            "tps_retention", "passed", "reasons")}, "crashes": (r["data"].get("crashes") or {}).get("total")}
                 for r in run["results"] if r["kind"] == "soak" and isinstance(r.get("data"), dict)
                 and (r.get("model") == model or single)],
        "tasks_per_hour": _tasks_per_hour(records, model),
        "provenance": {
            "run_dir": run["run_dir"], "backend": meta.get("backend") or {}, "server": server,
            "host": run["host"], "trials": meta.get("trials"), "concurrency": meta.get("concurrency"),
            "retries": meta.get("retries"), "packs": meta.get("packs") or sorted(s["packs"]),
            "suites": meta.get("suites") or [], "created": run.get("created"),
            "gpus": ((legs or {}).get("meter") or {}).get("gpus") or [],
            "config_hashes": sorted({r.config_hash for r in records}),
            "infra_events": len(run["infra_events"]),
        },
        "scenario_hashes": run["scenario_hashes"],
        "noise": _noise(rows),
        "harness": meta.get("harness") or "minimal",
        "replicas": replica_figures(rows, records, run["infra_events"]),
        "incomplete": None if speed_only else incomplete(run["planned"], meta.get("trials"), rows, run["run_dir"]),
        "load_warnings": [w["warning"] for w in run["load_warnings"] if w.get("model") in (model, None) or single],
    }
    gb = size / GB if size else None
    e["efficiency"] = {
        "gb": gb,
        "clean_pct_per_gb": (100 * clean_rate / gb) if gb and clean_rate is not None else None,
        "pass_pct_per_gb": (100 * s["overall"]["pass"]["rate"] / gb) if gb and s["overall"]["pass"]["rate"] is not None else None,
        "tps_per_gb": (decode["value"] / gb) if gb and decode else None,
    }
    # failed attempts, each with a transcript
    verdicts = run["verdicts"]
    failed = []
    by_key = {r.key: r for r in records}
    for r in rows:
        bad = r["status"] != "completed" or not r["passed"] or not r["clean"]
        if not bad:
            continue
        kind = "infra_error" if r["status"] != "completed" else ("failed" if not r["passed"] else "passed after retry")
        if r["status"] == "completed" and not r["scored"]:
            kind = "not scored"
        failed.append({"key": r["key"], "pack": r["pack"], "scenario": r["scenario"], "trial": r["trial"],
                       "kind": kind, "failures": r["failures"], "error": r["error"], "replica": r.get("replica"),
                       "reasons": (verdicts.get(r["key"]) or {}).get("details", {}).get("reasons", []),
                       "transcript": None})
    order = {"failed": 0, "passed after retry": 1, "not scored": 2, "infra_error": 3}
    failed.sort(key=lambda f: (order.get(f["kind"], 9), f["pack"], f["scenario"], f["trial"]))
    for f in failed[:MAX_TRANSCRIPTS]:
        rec = by_key.get(f["key"])
        if rec is not None:
            f["transcript"] = transcript(rec, verdicts.get(f["key"]))
    e["failed"] = failed
    return Entry(**e)


def incomplete(planned: list[str] | None, trials: Any, rows: list[dict[str, Any]], run_dir: str) -> dict[str, Any] | None:
    """Planned attempts (the scenarios the run recorded, the way --resume knows what is left, times its
    trials) against those completed: None when every one is stored or the run recorded no plan."""
    if not planned or not isinstance(trials, int) or trials < 1:
        return None
    total = len(planned) * trials
    done = sum(1 for r in rows if r["status"] == "completed" and r.get("current", True))
    if done >= total:
        return None
    infra = sum(1 for r in rows if r["status"] != "completed")
    lost = f"; {infra} lost to infrastructure errors" if infra else ""
    return {"planned": total, "stored": done, "missing": total - done, "infra_errors": infra,
            "message": f"incomplete run: {done} of {total} planned attempts stored ({total - done} missing{lost}); "
                       f"rates are over what is stored; finish it with brainbench run --resume {run_dir}"}


def _useful(e: Entry, at: int | None) -> dict[str, Any]:
    """Clean tasks per hour = completions per hour × clean pass rate (inputs kept for display)."""
    clean = e.summary["overall"]["clean"]
    rows = []
    for c in e.curves:
        for p in c["points"]:
            cpm = p.get("completions_per_min")
            if cpm is None or clean["rate"] is None:
                continue
            rows.append({"source": c["source"], "concurrency": p["concurrency"], "completions_per_hour": cpm * 60,
                         "clean_rate": clean["rate"], "clean_ci95": clean["ci95"],
                         "clean_tasks_per_hour": cpm * 60 * clean["rate"],
                         "range": [cpm * 60 * clean["ci95"][0], cpm * 60 * clean["ci95"][1]]})
    chosen = None
    if rows:
        want = at if at is not None else e.provenance.get("concurrency")
        chosen = next((r for r in rows if r["concurrency"] == want), None) or max(rows, key=lambda r: r["clean_tasks_per_hour"])
    own = None
    tph = e.tasks_per_hour
    if tph and clean["rate"] is not None:
        own = {**tph, "concurrency": e.provenance.get("concurrency"), "clean_rate": clean["rate"],
               "clean_ci95": clean["ci95"], "clean_tasks_per_hour": tph["tasks_per_hour"] * clean["rate"],
               "range": [tph["tasks_per_hour"] * clean["ci95"][0], tph["tasks_per_hour"] * clean["ci95"][1]]}
    return {"rows": rows, "chosen": chosen, "own": own}


def _phk(s: dict[str, Any]) -> tuple[int | None, float | None]:
    ks = [int(k) for k, v in (s.get("pass_hat_k") or {}).items() if v is not None]
    if not ks:
        return None, None
    k = max(ks)
    return k, s["pass_hat_k"][str(k)]


def _deltas(e: Entry, b: Entry) -> dict[str, Any]:
    from ..scoring.metrics import separable
    def rate_delta(cur: dict[str, Any] | None, base: dict[str, Any] | None) -> dict[str, Any] | None:
        if not cur or not base or cur.get("rate") is None or base.get("rate") is None:
            return None
        return {"cur": cur["rate"], "base": base["rate"], "delta": cur["rate"] - base["rate"],
                "verdict": judge(cur["rate"], cur["ci95"], base["rate"], base["ci95"]),
                "cur_ci95": cur["ci95"], "base_ci95": base["ci95"]}

    packs = {}
    names = sorted(set(e.summary["packs"]) | set(b.summary["packs"]))
    for p in names + ["ALL"]:
        cs = e.summary["overall"] if p == "ALL" else e.summary["packs"].get(p)
        bs = b.summary["overall"] if p == "ALL" else b.summary["packs"].get(p)
        ck, cphk = _phk(cs) if cs else (None, None)
        bk, bphk = _phk(bs) if bs else (None, None)
        changed = None
        if p != "ALL":
            ch, bh = e.scenario_hashes.get(p), b.scenario_hashes.get(p)
            changed = bool(ch and bh and ch != bh)
        packs[p] = {
            "present": (cs is not None, bs is not None),
            "pass": rate_delta(cs and cs["pass"], bs and bs["pass"]),
            "clean": rate_delta(cs and cs["clean"], bs and bs["clean"]),
            "pass_hat_k": ({"k": ck, "cur": cphk, "base": bphk, "delta": cphk - bphk}
                           if ck is not None and ck == bk and cphk is not None and bphk is not None else None),
            "attempts": (cs["attempts"] if cs else 0, bs["attempts"] if bs else 0),
            "scenarios_changed": changed,
            "separable": (separable(bs["clean"], cs["clean"], max(cs["scenarios"], bs["scenarios"]))
                          if cs and bs else None),
        }
    return {"baseline_label": b.label, "baseline_run": b.run_dir, "packs": packs, "decode": _decode_delta(e, b),
            "levels": _level_deltas(e, b)}


def _decode_delta(e: Entry, b: Entry) -> dict[str, Any] | None:
    """Decode tok/s against the baseline's, judged only at the same concurrency (per-request speed falls as
    requests share the server, so a run at 4 is never 'worse' than one at 1)."""
    cd, bd = e.decode, b.decode
    if not cd or not bd:
        return None
    at = (cd.get("concurrency"), bd.get("concurrency"))
    verdict = judge(cd["value"], cd.get("ci95"), bd["value"], bd.get("ci95")) if at[0] == at[1] else \
        "not judged: different concurrency"
    return {"cur": cd["value"], "base": bd["value"], "delta": cd["value"] - bd["value"],
            "rel": (cd["value"] - bd["value"]) / bd["value"] if bd["value"] else None, "verdict": verdict,
            "concurrency": list(at)}


def _levels(x: Entry) -> dict[int, float]:
    """Aggregate tok/s per concurrency level (the first curve that has a level wins)."""
    out: dict[int, float] = {}
    for c in x.curves:
        for p in c["points"]:
            if p.get("gen_tps_aggregate") is not None:
                out.setdefault(int(p["concurrency"]), p["gen_tps_aggregate"])
    return out


def _level_deltas(e: Entry, b: Entry) -> dict[str, Any]:
    """Aggregate tok/s at the concurrency levels both runs measured; the levels only one side has, apart."""
    cur, base = _levels(e), _levels(b)
    both = sorted(set(cur) & set(base))
    return {"common": [{"concurrency": c, "cur": cur[c], "base": base[c],
                        "rel": (cur[c] - base[c]) / base[c] if base[c] else None} for c in both],
            "only_cur": sorted(set(cur) - set(base)), "only_base": sorted(set(base) - set(cur))}


def _per_100(r: dict[str, Any]) -> dict[str, Any]:
    """A per-call rate ({k, n, rate, ci95}) as occurrences per 100 calls, interval included."""
    if r["rate"] is None:
        return {"value": None, "ci95": None, "k": r["k"], "n": r["n"]}
    return {"value": 100 * r["rate"], "ci95": [100 * x for x in r["ci95"]], "k": r["k"], "n": r["n"]}


def _harness_side(e: Entry) -> dict[str, Any]:
    o = e.summary["overall"]
    return {"label": e.label, "run": e.run_name, "attempts": o["attempts"], "pass": o["pass"], "clean": o["clean"],
            "errors_per_100": _per_100(o["error_rate"]), "in_text_per_100": _per_100(o["in_text_rate"])}


def realism_gap(entries: list[Entry]) -> list[dict[str, Any]]:
    """Per model with runs of both harnesses (the first of each): minimal against agent, the clean rate judged
    by the compare verdict (A = minimal, B = agent)."""
    from ..scoring.metrics import separable

    out = []
    for model in dict.fromkeys(e.model for e in entries):
        mine = [e for e in entries if e.model == model and not e.speed_only]
        m = next((e for e in mine if e.harness == "minimal"), None)
        a = next((e for e in mine if e.harness == "agent"), None)
        if m is None or a is None:
            continue
        lo, hi = _harness_side(m), _harness_side(a)
        scen = max(m.summary["overall"]["scenarios"], a.summary["overall"]["scenarios"])
        out.append({"model": model, "minimal": lo, "agent": hi,
                    "delta": {k: (hi[k]["rate"] - lo[k]["rate"]) if hi[k]["rate"] is not None
                              and lo[k]["rate"] is not None else None for k in ("pass", "clean")},
                    "verdict": separable(lo["clean"], hi["clean"], scen)})
    return out


def _engine_side(s: dict[str, Any]) -> dict[str, Any]:
    """One engine's rates on one pack (or ALL): pass split into strict (every call in `tool_calls`) and
    recovered (passed only because calls written as text were recovered), errors and text calls per 100 calls."""
    from ..scoring.metrics import rate

    p, st = s["pass"], s.get("strict_pass") or s["pass"]
    return {"attempts": s["attempts"], "scenarios": s["scenarios"], "pass": p, "clean": s["clean"], "strict_pass": st,
            "recovered_pass": rate(max(0, p["k"] - st["k"]), p["n"]),
            "errors_per_100": _per_100(s["error_rate"]), "in_text_per_100": _per_100(s["in_text_rate"])}


def _speed_points(e: Entry) -> dict[int, dict[str, Any]]:
    """Per-request decode tok/s, aggregate tok/s, TTFT and ITL by concurrency: c=1 from the decode leg, the
    levels above from the sweep."""
    out: dict[int, dict[str, Any]] = {}
    dec = (e.speed_legs or {}).get("decode") or {}
    if dec.get("tps_median") is not None:
        out[1] = {"decode_tps": dec["tps_median"], "aggregate_tps": dec["tps_median"],
                  "ttft_ms": dec.get("ttft_ms_median"), "itl_ms": dec.get("itl_ms_median")}
    for c in e.curves[:1]:
        for p in c["points"]:
            out.setdefault(p["concurrency"], {"decode_tps": p.get("gen_tps_per_request"),
                                              "aggregate_tps": p.get("gen_tps_aggregate"),
                                              "ttft_ms": p.get("ttft_ms_median"), "itl_ms": p.get("itl_ms_median")})
    return out


def _engine(e: Entry) -> str:
    return str((e.provenance.get("server") or {}).get("kind") or "?")


def engine_gap(entries: list[Entry]) -> list[dict[str, Any]]:
    """Per embedded brain served by more than one engine (the same brain in the server record, different kinds):
    engine A (llama-server when present) against each other, per pack and overall, the clean rate judged by
    the compare verdict (A the baseline), and speed by concurrency side by side."""
    from ..scoring.metrics import separable

    by_brain: defaultdict[str, dict[str, Entry]] = defaultdict(dict)
    for e in entries:
        brain = (e.provenance.get("server") or {}).get("brain")
        if brain:
            by_brain[brain].setdefault(_engine(e), e)
    out = []
    for brain, engines in by_brain.items():
        if len(engines) < 2:
            continue
        a = engines.pop("llama-server", None) or engines.pop(next(iter(engines)))
        for b in engines.values():
            packs = []
            if not (a.speed_only or b.speed_only):
                for p in sorted(set(a.summary["packs"]) & set(b.summary["packs"])) + ["ALL"]:
                    sa, sb = (a.summary["overall"], b.summary["overall"]) if p == "ALL" else \
                        (a.summary["packs"][p], b.summary["packs"][p])
                    x, y = _engine_side(sa), _engine_side(sb)
                    packs.append({"pack": p, "a": x, "b": y,
                                  "delta": {k: (y[k]["rate"] - x[k]["rate"]) if y[k]["rate"] is not None
                                            and x[k]["rate"] is not None else None
                                            for k in ("pass", "clean", "strict_pass", "recovered_pass")},
                                  "verdict": separable(x["clean"], y["clean"], max(x["scenarios"], y["scenarios"]))})
            sp_a, sp_b = _speed_points(a), _speed_points(b)
            speed = [{"concurrency": c, "a": sp_a.get(c), "b": sp_b.get(c)} for c in sorted(set(sp_a) | set(sp_b))]
            out.append({"brain": brain, "packs": packs, "speed": speed,
                        **{k: {"label": x.label, "run": x.run_name, "engine": _engine(x),
                               "weights": (x.provenance.get("server") or {}).get("model_file") or "GGUF",
                               "size_bytes": x.size_bytes, "version": (x.provenance.get("server") or {}).get("version")}
                           for k, x in (("a", a), ("b", b))}})
    return out


def _match_baseline(e: Entry, base: list[Entry]) -> Entry | None:
    same = [b for b in base if b.model == e.model]
    if same:
        return same[0]
    return base[0] if len(base) == 1 else None


def _entries(run_dirs: list[Path], overrides: dict[str, float], packs: list[str] | None = None) -> list[Entry]:
    entries = []
    for d in run_dirs:
        run = load_run(d, packs)
        models = list(run["summary"])
        if not models and not run["attempts_stored"]:  # speed legs only (`brainbench speed -o RUN_DIR`)
            speed = speed_models(run["results"])
            for m in speed:
                entries.append(_entry(run, m, len(speed) == 1, overrides, speed_only=True))
            if speed:
                continue
            raise ReportError(f"{d}: nothing to report: no attempts and no speed legs stored "
                              f"(run `brainbench run` or `brainbench speed -o {d}` first?)")
        if not models:
            what = f" in pack(s) {', '.join(packs)}" if packs else ""
            raise ReportError(f"{d}: no scored attempts{what} to report (run `brainbench score {d}` first?)")
        for m in models:
            entries.append(_entry(run, m, len(models) == 1, overrides))
    # labels must tell brains apart: add the run directory name where a model repeats
    counts: defaultdict[str, int] = defaultdict(int)
    for e in entries:
        counts[e.model] += 1
    for e in entries:
        if counts[e.model] > 1:
            e.label = f"{e.model} ({e.run_name})"
    return entries


def attach_logs(entries: list[Entry], log_files: list[tuple[str | None, Path]]) -> list[LooseLog]:
    """Mined server logs (`brainbench logs vllm --json > FILE`) as concurrency curves.

    `LABEL=FILE` attaches a log to that brain (its curves, energy and useful throughput); a bare FILE
    attaches to the only brain when there is one, else it is shown as a series of its own.
    """
    loose = []
    for label, path in log_files:
        import json

        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise ReportError(f"--logs {path}: not a JSON log report ({e})") from None
        rows = data.get("buckets") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise ReportError(f"--logs {path}: no `buckets` (make it with `brainbench logs vllm FILE --json`)")
        curves: list[dict[str, Any]] = [{"name": f"{Path(path).stem} {lab}".strip(), "source": f"server log {Path(path).name}", "points": pts}
                  for lab, pts in _curve_from_buckets([x for x in rows if isinstance(x, dict)]).items() if pts]
        target = next((e for e in entries if label in (e.label, e.model)), None) if label else \
            (entries[0] if len(entries) == 1 else None)
        if label and target is None:
            raise ReportError(f"--logs {label}={path}: no brain labelled {label!r} in these runs")
        if target is not None:
            target.curves += curves
            target.energy += [dict(e, source=c["source"]) for c in curves for e in _energy_rows(c["points"])]
        else:
            loose.append(LooseLog(label=Path(path).stem, curves=curves))
    return loose


PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#8C6D31", "#000000"]


def build_report(run_dirs: list[Path], baseline: Path | None = None, *, at_concurrency: int | None = None,
                 model_sizes: dict[str, float] | None = None, title: str | None = None,
                 log_files: list[tuple[str | None, Path]] | None = None,
                 packs: list[str] | None = None, common_packs: bool = False) -> Report:
    """The whole report (see `model.Report`); `packs` keeps only those packs; `common_packs` (compare) keeps
    only the packs both the runs and the baseline ran, so every row, ALL included, is like with like."""
    if not run_dirs:
        raise ReportError("give at least one run directory")
    overrides = model_sizes or {}
    entries = _entries([Path(d) for d in run_dirs], overrides, packs)
    base_entries = _entries([Path(baseline)], overrides, packs) if baseline else []
    left_out: list[str] = []
    if common_packs and baseline:
        common, left_out = _common_packs(entries, base_entries)
        if left_out:
            entries = _entries([Path(d) for d in run_dirs], overrides, common)
            base_entries = _entries([Path(baseline)], overrides, common)
    loose_logs = attach_logs(entries, log_files or [])
    for i, e in enumerate(entries):
        e.id = f"b{i}"
        e.color = PALETTE[i % len(PALETTE)]
        e.useful = _useful(e, at_concurrency)
        b = _match_baseline(e, base_entries) if base_entries else None
        e.delta = _deltas(e, b) if b else None
    for b in base_entries:
        b.useful = _useful(b, at_concurrency)
    classes: dict[str, int] = defaultdict(int)
    for e in entries:
        for c, n in e.summary["overall"].get("failures_by_class", {}).items():
            classes[c] += n
    for i, x in enumerate(loose_logs):
        x.color = PALETTE[(len(entries) + i) % len(PALETTE)]
    speed_only = all(e.speed_only for e in entries)
    return Report(
        title=title or (("brainbench speed: " if speed_only else "brainbench: ") + " vs ".join(e.label for e in entries)),
        generated=time.strftime("%Y-%m-%d %H:%M:%S %Z"), entries=entries, baseline=base_entries,
        baseline_dir=str(baseline) if baseline else None,
        packs=sorted({p for e in entries for p in e.summary["packs"]}),
        failure_classes=[c for c, _ in sorted(classes.items(), key=lambda kv: -kv[1])],
        at_concurrency=at_concurrency, loose_logs=loose_logs, realism=realism_gap(entries + base_entries),
        left_out=left_out,
        engines=engine_gap(entries),
    )


def _common_packs(entries: list[Entry], base: list[Entry]) -> tuple[list[str], list[str]]:
    """The packs both sides ran, and one line naming the rest (empty when the sets match or a side has no
    discipline at all, which the outputs already say)."""
    mine = {p for e in entries for p in e.summary["packs"]}
    theirs = {p for b in base for p in b.summary["packs"]}
    if mine == theirs or not mine or not theirs:
        return sorted(mine), []
    common = sorted(mine & theirs)
    if not common:
        raise ReportError(f"no pack in common: this run ran {', '.join(sorted(mine))}, the baseline "
                          f"{', '.join(sorted(theirs))}; nothing to compare like with like")
    parts = [f"{', '.join(sorted(s))} (only {who})" for s, who in ((mine - theirs, "this run"),
                                                                    (theirs - mine, "the baseline")) if s]
    return common, [f"packs left out: {'; '.join(parts)}; every row, ALL included, is over {', '.join(common)}"]
