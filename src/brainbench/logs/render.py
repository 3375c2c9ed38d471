"""Human output for the log miners: rich tables built from the same dicts `--json` prints."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _f(v: Any, nd: int = 1) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _table(title: str, cols: list[tuple[str, str]], rows: list[list[str]], caption: str | None = None) -> Table:
    t = Table(title=title, caption=caption, caption_justify="left", title_justify="left")
    for name, justify in cols:
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        t.add_row(*r)
    return t


def bucket_table(r: dict[str, Any], title: str, *, prompt_label: str = "prompt t/s") -> Table:
    rows = r["buckets"]
    has_label = any("label" in b for b in rows)
    has_kw = any("gen_tps_per_kw" in b for b in rows)
    cols = ([("label", "left")] if has_label else []) + [
        ("running", "right"), ("samples", "right"), ("gen t/s avg", "right"), ("median", "right"),
        ("p95", "right"), ("peak", "right"), ("per req", "right"),
        (f"{prompt_label} all", "right"), (f"{prompt_label} active", "right"), ("(n)", "right"),
        ("compl/min", "right")]
    if has_kw:
        cols += [("gen t/kW", "right"), ("prompt t/kW", "right")]
    out = []
    for b in rows:
        row = ([str(b.get("label"))] if has_label else []) + [
            _f(b["running"]) if b["running"] is not None else "?", _f(b["samples"]),
            _f(b["gen_tps_mean"]), _f(b["gen_tps_median"]), _f(b["gen_tps_p95"]), _f(b["gen_tps_peak"]),
            _f(b["per_request_tps"]), _f(b["prefill_tps_sustained"], 0), _f(b["prefill_tps_active"], 0),
            _f(b.get("prefill_active_samples")), _f(b["completions_per_min"])]
        if has_kw:
            row += [_f(b.get("gen_tps_per_kw")), _f(b.get("prefill_tps_per_kw"), 0)]
        out.append(row)
    return _table(title, cols, out)


def summary_table(r: dict[str, Any]) -> Table | None:
    rows = r.get("summary") or []
    if not rows:
        return None
    has_label = any("label" in s for s in rows)
    has_kw = any("gen_tps_per_kw" in s for s in rows)
    cols = ([("label", "left")] if has_label else []) + [
        ("samples", "right"), ("gen t/s avg", "right"), ("median", "right"), ("p95", "right"),
        ("prompt t/s† active avg", "right"), ("median", "right"), ("all avg", "right"),
        ("compl/min", "right")]
    if has_kw:
        cols += [("watts", "right"), ("gen t/kW", "right"), ("prompt t/kW", "right")]
    out = []
    for s in rows:
        row = ([str(s.get("label"))] if has_label else []) + [
            _f(s["samples"]), _f(s["gen_tps_mean"]), _f(s["gen_tps_median"]), _f(s["gen_tps_p95"]),
            _f(s["prefill_tps_mean"], 0), _f(s["prefill_tps_median"], 0), _f(s["prefill_tps_sustained"], 0),
            _f(s["completions_per_min"])]
        if has_kw:
            row += [_f(s.get("watts"), 0), _f(s.get("gen_tps_per_kw")), _f(s.get("prefill_tps_per_kw"), 0)]
        out.append(row)
    lo, hi = rows[0].get("running_range", [1, None])
    what = (f"windows with {lo} to {hi} running requests" if hi is not None and hi != lo else
            f"windows with {lo} running request{'s' if lo != 1 else ''}" if hi == lo else
            f"windows with at least {lo} running request{'s' if lo != 1 else ''}")
    return _table(what, cols, out)


def print_vllm(r: dict[str, Any], console: Console) -> None:
    p = r["parse"]
    if not r["buckets"]:
        console.print(f"no vLLM stats lines found in {len(p['files'])} file(s) "
                      f"({p['bytes'] / 1e6:,.1f} MB read, {p['corrupt_lines']} cut/interleaved stats lines)")
    else:
        console.print(bucket_table(r, "vLLM stats windows by concurrency (Running: N reqs)",
                                   prompt_label="prompt t/s†"))
        s = summary_table(r)
        if s is not None:
            console.print(s)
    sd = r.get("spec_decode")
    if sd:
        pos = ", ".join(f"{x:.2f}" for x in sd["per_position_acceptance"] or [])
        console.print(f"speculative decoding: {sd['lines']} windows, mean acceptance length "
                      f"{_f(sd['mean_acceptance_length'], 2)}, draft acceptance {_f(sd['draft_acceptance_rate_pct'])}%"
                      + (f", per position [{pos}]" if pos else ""))
    for c in r.get("capacity") or []:
        tokens = c.get("kv_cache_tokens") or c.get("kv_cache_tokens_est")
        est = "" if c.get("kv_cache_tokens") else " (estimated)"
        console.print(f"capacity: KV cache {tokens:,} tokens{est} ÷ max-model-len {c['max_model_len']:,} = "
                      f"{c['max_concurrency']:.2f}x concurrent requests at full length"
                      + (f" [{c['time']}]" if c.get("time") else ""))
    idle = f", idle {p['idle_s'] / 60:,.1f} min without INFO stats lines (vLLM logs idle windows at DEBUG)" \
        if p["idle_s"] else ""
    console.print(
        f"[dim]read {p['bytes'] / 1e6:,.1f} MB in {p['seconds']:.2f} s ({_f(p['mb_per_s'], 0)} MB/s): "
        f"{p['stats_lines']:,} stats windows ({', '.join(p['series_used'])}), interval {p['interval_s']} s, "
        f"{p['completions']:,} completions, {p['corrupt_lines']:,} cut/interleaved stats lines skipped{idle}[/]")
    if p.get("unlabelled_windows"):
        console.print(f"[dim]{p['unlabelled_windows']:,} windows fell outside every --windows range[/]")
    if p.get("http_errors"):
        console.print("[dim]non-2xx completions requests: "
                      + ", ".join(f"{k}: {v}" for k, v in p["http_errors"].items()) + "[/]")
    for t in p.get("truncated_inputs") or []:
        console.print(f"[yellow]{t}[/]")
    for n in r.get("notes", []):
        console.print(f"[dim]† {n}[/]" if n.startswith("vLLM's") else f"[dim]{n}[/]")


def print_llama(r: dict[str, Any], console: Console, title: str = "llama-server requests by concurrency") -> None:
    if not r["buckets"]:
        console.print("no llama-server timing lines (prompt eval time / eval time) found")
        return
    console.print(bucket_table(r, title, prompt_label="prompt t/s"))
    extra = f", {r['requests_per_min']} requests/min" if r.get("requests_per_min") else ""
    console.print(f"[dim]{r['requests']:,} requests{extra}; unpaired timing lines: "
                  f"{r['parse']['unpaired_timing_lines']}[/]")
    sd = r.get("spec_decode")
    if sd:
        console.print(f"speculative decoding: draft acceptance {_f(sd['draft_acceptance_rate_pct'])}% "
                      f"({sd['accepted_tokens']:,} / {sd['drafted_tokens']:,})"
                      + (f", mean length {sd['mean_acceptance_length']}" if sd.get("mean_acceptance_length") else ""))
    for n in r.get("notes", []):
        console.print(f"[dim]{n}[/]")


def print_ollama(r: dict[str, Any], console: Console) -> None:
    if not r["buckets"]:
        console.print("no Ollama GIN inference request lines found")
    else:
        cols = [("in flight", "right"), ("requests", "right"), ("mean s", "right"), ("median s", "right"),
                ("p95 s", "right"), ("max s", "right"), ("ok", "right"), ("errors", "right")]
        rows = [[_f(b["running"]), _f(b["samples"]), _f(b["latency_s_mean"], 2), _f(b["latency_s_median"], 2),
                 _f(b["latency_s_p95"], 2), _f(b["latency_s_max"], 2), _f(b["ok"]), _f(b["errors"])]
                for b in r["buckets"]]
        console.print(_table("Ollama inference requests by concurrency (GIN lines)", cols, rows))
        console.print(f"[dim]{r['requests']:,} requests ({', '.join(f'{k}: {v}' for k, v in r['endpoints'].items())}), "
                      f"{_f(r['completions_per_min'])} completions/min over the active span; status "
                      + ", ".join(f"{k}: {v}" for k, v in r["status"].items()) + "[/]")
    if r.get("llama_timings"):
        print_llama(r["llama_timings"], console, title="runner slot timings by concurrency")
    for n in r.get("notes", []):
        console.print(f"[dim]{n}[/]")


def print_agent(r: dict[str, Any], console: Console) -> None:
    cols = [("class", "left"), ("layer", "left"), ("lines", "right"), ("example", "left")]
    rows = [[c["class"], c["layer"], _f(c["count"]), (c["example"] or "")[:90]] for c in r["classes"]]
    console.print(_table("visible failures in the agent log", cols, rows))
    if r["by_model"]:
        classes = [c["class"] for c in r["classes"]]
        cols = [("model", "left")] + [(c, "right") for c in classes]
        rows = [[m] + [_f(counts.get(c, 0)) for c in classes] for m, counts in r["by_model"].items()]
        console.print(_table("by model (the model the log named last)", cols, rows))
    if r["by_tool"]:
        console.print("[dim]by tool: " + ", ".join(f"{k}: {v}" for k, v in r["by_tool"].items()) + "[/]")
    ice = r.get("iceberg")
    if ice:
        share = f"{ice['visible_share_max'] * 100:.0f}%" if ice["visible_share_max"] is not None else "—"
        console.print(
            f"[bold]iceberg[/]: {ice['failed']} of {ice['items']} failed ({ice['truth_source']}), the log shows "
            f"{ice['visible']} tool-layer failure line(s): grep sees at most {share} of the failures; at least "
            f"{ice['invisible_min']} failed without writing any line")
        if ice["by_model"]:
            cols = [("model", "left"), ("items", "right"), ("failed", "right"), ("visible lines", "right"),
                    ("silent failures (at least)", "right"), ("visible share (at most)", "right")]
            rows = [[b["model"], _f(b["items"]), _f(b["failed"]), _f(b["visible"]), _f(b["invisible_min"]),
                     f"{b['visible_share_max'] * 100:.0f}%" if b["visible_share_max"] is not None else "—"]
                    for b in ice["by_model"]]
            console.print(_table("iceberg by model", cols, rows))
        console.print("[dim]final states: " + ", ".join(f"{k}: {v}" for k, v in ice["final_states"].items()) + "[/]")


def print_watch(r: dict[str, Any], console: Console) -> None:
    p = r["parse"]
    if r["buckets"]:
        console.print(bucket_table(r, "scraped /metrics windows by concurrency"))
    else:
        console.print("no complete windows yet (need two successful scrapes of a serving endpoint)")
    console.print(f"[dim]{p['scrapes']} scrapes ({p['failed_scrapes']} failed) over {p['span_s']} s, "
                  f"{p['windows']} windows, {', '.join(p['urls'])} -> {p['run_dir']}[/]")
    for n in r.get("notes", []):
        console.print(f"[dim]{n}[/]")
