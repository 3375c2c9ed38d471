"""The server's own clock next to ours: llama-server `timings`, Ollama eval counts, vLLM/SGLang `/metrics`.

Known traps, handled here:
- llama-server `timings.prompt_n` excludes cached tokens, so it is compared with prompt_tokens − cached.
- Ollama's prompt eval rate is inflated by cache hits (a cached prompt reports a tiny duration); shown, flagged.
- vLLM's "Avg prompt throughput" log line counts cached prompt tokens; we use the `/metrics` counters and
  the prefix-cache hit counters instead, and say how many tokens were cache hits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import httpx

from .measure import Sample
from .stats import percentile, rel_gap

DECODE_TOLERANCE = 0.05
"""A client/server gap in a rate beyond this fraction is flagged."""
LATENCY_TOLERANCE = 0.10
"""A client/server gap in a mean latency beyond this fraction (and beyond 5 ms) is flagged."""


def _flag(gap: float | None, tol: float) -> bool | None:
    return None if gap is None else abs(gap) > tol


def _r(v: float | None, nd: int = 3) -> float | None:
    return None if v is None else round(v, nd)


def server_kind(samples: Iterable[Sample]) -> str | None:
    for s in samples:
        if isinstance(s.server, dict):
            if "predicted_per_second" in s.server or "predicted_ms" in s.server:
                return "llama-server"
            if "eval_duration" in s.server or "eval_count" in s.server:
                return "ollama"
    return None


def _outside_ms(ttft_s: float | None, prompt_ms: float | None) -> float | None:
    """Client TTFT minus the server's own prompt time: HTTP, queueing, templating, tokenising, sampling the first
    token. On a GPU it can be as large as the prefill itself, which is why client prefill tok/s reads low."""
    if ttft_s is None or not isinstance(prompt_ms, (int, float)):
        return None
    return _r(ttft_s * 1000 - prompt_ms, 2)


def _before_head_ms(s: Sample, outside: float | None) -> float | None:
    """The part of the outside time before the response head: llama-server templates and tokenises the prompt
    and consults its host-RAM prompt cache (--cache-ram) before it answers with a head, so this grows with the
    prompt (bench/ttft_split.py takes it apart); what follows the head is sampling, the first SSE write, our read."""
    if outside is None or s.ttfb_s is None:
        return None
    return _r(min(s.ttfb_s * 1000, outside), 2)


def per_request(samples: Iterable[Sample]) -> list[dict[str, Any]]:
    """Client vs server, request by request, for servers that time each request (llama-server, Ollama)."""
    rows = []
    for s in samples:
        t = s.server
        if not s.ok or not isinstance(t, dict):
            continue
        if "predicted_ms" in t:  # llama-server
            s_dec = t.get("predicted_per_second") if (t.get("predicted_n") or 0) >= 2 else None
            s_pre = t.get("prompt_per_second") if (t.get("prompt_n") or 0) >= 1 else None
            outside = _outside_ms(s.ttft_s, t.get("prompt_ms"))
            rows.append({
                "server": "llama-server",
                "client_decode_tps": _r(s.decode_tps), "server_decode_tps": _r(s_dec),
                "decode_gap": _r(rel_gap(s.decode_tps, s_dec), 4),
                "client_prefill_tps": _r(s.prefill_tps), "server_prefill_tps": _r(s_pre),
                "prefill_gap": _r(rel_gap(s.prefill_tps, s_pre), 4),
                "completion_tokens": s.completion_tokens, "server_predicted_n": t.get("predicted_n"),
                "new_prompt_tokens": s.new_prompt_tokens, "server_prompt_n": t.get("prompt_n"),
                "server_cache_n": t.get("cache_n"),
                "ttft_outside_server_ms": outside, "ttft_outside_before_head_ms": _before_head_ms(s, outside),
            })
        elif "eval_duration" in t:  # Ollama, durations in ns
            ev_n, ev_d = t.get("eval_count"), t.get("eval_duration")
            pe_n, pe_d = t.get("prompt_eval_count"), t.get("prompt_eval_duration")
            s_dec = ev_n / (ev_d / 1e9) if ev_n and ev_d else None
            s_pre = pe_n / (pe_d / 1e9) if pe_n and pe_d else None
            rows.append({
                "server": "ollama",
                "client_decode_tps": _r(s.decode_tps), "server_decode_tps": _r(s_dec),
                "decode_gap": _r(rel_gap(s.decode_tps, s_dec), 4),
                "client_prefill_tps": _r(s.prefill_tps), "server_prefill_tps": _r(s_pre),
                "prefill_gap": _r(rel_gap(s.prefill_tps, s_pre), 4),
                "completion_tokens": s.completion_tokens, "server_eval_count": ev_n,
                "note": "Ollama's prompt eval rate is inflated by prompt-cache hits",
            })
    return rows


def summarize_requests(samples: list[Sample], what: str = "decode") -> dict[str, Any] | None:
    """Median client figure, median server figure and the median per-request gap, flagged beyond noise.

    `what` is 'decode' or 'prefill'."""
    rows = per_request(samples)
    if not rows:
        return None
    client = [r[f"client_{what}_tps"] for r in rows if r[f"client_{what}_tps"] is not None]
    server = [r[f"server_{what}_tps"] for r in rows if r[f"server_{what}_tps"] is not None]
    gaps = [r[f"{what}_gap"] for r in rows if r[f"{what}_gap"] is not None]
    if not gaps:
        return None
    gap = percentile(gaps, 50)
    expected = 0.0
    if what == "decode" and rows[0]["server"] == "llama-server":
        # llama-server's predicted_ms spans n token intervals, our E2E − TTFT spans n − 1 of them
        ns = [r["completion_tokens"] for r in rows if (r["completion_tokens"] or 0) >= 2]
        expected = percentile([n / (n - 1) - 1 for n in ns], 50) or 0.0
    out: dict[str, Any] = {
        "server": rows[0]["server"], "requests": len(gaps),
        "client_tps_median": _r(percentile(client, 50)), "server_tps_median": _r(percentile(server, 50)),
        "gap_median": _r(gap, 4), "expected_gap": _r(expected, 4), "gap_max_abs": _r(max(abs(g) for g in gaps), 4),
        "tolerance": DECODE_TOLERANCE,
        "flagged": None if gap is None else abs(gap - expected) > DECODE_TOLERANCE,
    }
    if rows[0]["server"] == "llama-server":
        mism = [r for r in rows if what == "decode" and r["server_predicted_n"] != r["completion_tokens"]
                or what == "prefill" and r["server_prompt_n"] != r["new_prompt_tokens"]]
        out["token_count_mismatches"] = len(mism)
        if what == "prefill":
            outside = [r["ttft_outside_server_ms"] for r in rows if r.get("ttft_outside_server_ms") is not None]
            out["ttft_outside_server_ms_median"] = _r(percentile(outside, 50), 2) if outside else None
            head = [r["ttft_outside_before_head_ms"] for r in rows if r.get("ttft_outside_before_head_ms") is not None]
            out["ttft_outside_before_head_ms_median"] = _r(percentile(head, 50), 2) if head else None
    if rows[0]["server"] == "ollama" and what == "prefill":
        out["note"] = "Ollama's prompt eval rate is inflated by prompt-cache hits"
    return out


# -- Prometheus /metrics (vLLM, SGLang) ---------------------------------------------------------------

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eEinfNa]+)")
_PREFIXES = ("vllm:", "sglang:")


def parse_prometheus(text: str) -> dict[str, float]:
    """Metric name → value summed over label sets; histogram buckets and `_created` series dropped."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        m = _LINE.match(line)
        if not m:
            continue
        name = m.group(1)
        if not name.startswith(_PREFIXES) or name.endswith(("_bucket", "_created")):
            continue
        try:
            out[name] = out.get(name, 0.0) + float(m.group(3))
        except ValueError:
            continue
    return out


def metrics_url(base_url: str) -> str:
    return base_url.rstrip("/").removesuffix("/v1") + "/metrics"


async def scrape(http: httpx.AsyncClient, base_url: str) -> dict[str, float] | None:
    """The server's counters, or None when it has no Prometheus endpoint we understand."""
    try:
        resp = await http.get(metrics_url(base_url), timeout=10.0)
    except httpx.HTTPError:
        return None
    if resp.status_code != 200:
        return None
    parsed = parse_prometheus(resp.text)
    return parsed or None


def _hist_mean(delta: dict[str, float], *names: str) -> tuple[float | None, str | None]:
    for n in names:
        c, s = delta.get(f"{n}_count"), delta.get(f"{n}_sum")
        if c and s is not None and c > 0:
            return s / c, n
    return None, None


def metrics_summary(before: dict[str, float] | None, after: dict[str, float] | None,
                    samples: list[Sample]) -> dict[str, Any] | None:
    """Server-side means over one leg (counter deltas) next to the client's means for the same leg."""
    if not before or not after:
        return None
    delta = {k: after[k] - before.get(k, 0.0) for k in after}
    p = "vllm:" if any(k.startswith("vllm:") for k in delta) else "sglang:"
    ok = [s for s in samples if s.ok]
    ttft, ttft_name = _hist_mean(delta, f"{p}time_to_first_token_seconds")
    tpot, tpot_name = _hist_mean(delta, f"{p}request_time_per_output_token_seconds")
    itl, itl_name = _hist_mean(delta, f"{p}inter_token_latency_seconds", f"{p}time_per_output_token_seconds")
    e2e, _ = _hist_mean(delta, f"{p}e2e_request_latency_seconds")

    def cmean(vals: list[float | None]) -> float | None:
        xs = [v for v in vals if v is not None]
        return sum(xs) / len(xs) if xs else None

    c_ttft = cmean([s.ttft_s for s in ok])
    c_itl = cmean([s.itl_s for s in ok])
    c_gap = cmean([g for s in ok for g in s.chunk_gaps_s])
    c_e2e = cmean([s.e2e_s for s in ok])

    def pair(client: float | None, server: float | None) -> dict[str, Any]:
        gap = rel_gap(client, server)
        beyond = gap is not None and abs(gap) > LATENCY_TOLERANCE and abs((client or 0) - (server or 0)) > 0.005
        return {"client_ms": _r(None if client is None else client * 1000),
                "server_ms": _r(None if server is None else server * 1000), "gap": _r(gap, 4),
                "flagged": None if gap is None else beyond}

    gen = delta.get(f"{p}generation_tokens_total")
    prompt = delta.get(f"{p}prompt_tokens_total")
    hits = delta.get(f"{p}prefix_cache_hits_total")
    queries = delta.get(f"{p}prefix_cache_queries_total")
    requests = delta.get(f"{p}request_success_total")
    client_gen = sum(s.completion_tokens or 0 for s in ok)
    out: dict[str, Any] = {
        "server": p.rstrip(":"),
        "ttft_mean": pair(c_ttft, ttft),
        "itl_mean_vs_server_tpot": pair(c_itl, tpot) if tpot is not None else None,
        "chunk_gap_mean_vs_server_itl": pair(c_gap, itl) if itl is not None else None,
        "e2e_mean": pair(c_e2e, e2e),
        "server_histograms": [n for n in (ttft_name, tpot_name, itl_name) if n],
        "generation_tokens": {"client_usage": client_gen, "server": gen,
                              "flagged": None if gen is None else abs(gen - client_gen) > max(1, 0.01 * client_gen)},
        "prompt_tokens_server": prompt,
        "prefix_cache_hit_tokens": hits, "prefix_cache_query_tokens": queries,
        "requests": {"client": len(samples), "server": requests},
        "note": ("server latencies start when the engine receives the request (no HTTP, no client queue); "
                 "the prompt token counter includes cache hits"),
    }
    if requests is not None and abs(requests - len(ok)) > 0:
        out["foreign_traffic"] = "the server counted other requests during this leg; its means include them"
    return out
