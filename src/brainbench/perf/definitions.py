"""One line per figure `brainbench speed` reports, and how each maps to vLLM, GuideLLM and llama-bench.

The README's speed definitions are generated from (and tested against) this module, so the code and the docs cannot drift.
Times are taken on the client's monotonic clock; token counts come from the server's `usage`, never from
counting chunks. A *token-bearing chunk* is a streamed chunk whose delta carries content, reasoning or a
tool-call fragment; role-only and empty chunks are not token-bearing and never start the TTFT clock.
"""

from __future__ import annotations

DEFINITIONS: dict[str, str] = {
    # per request
    "sent": "The instant the request starts going onto the socket (the lean client stamps it just before the "
            "send; through httpx, httpcore's send_request_headers.started; GuideLLM uses the same instant).",
    "queue_s": "Client-side time from issuing a request to `sent` (opening a connection, a busy event loop); "
               "kept per request, never part of TTFT or E2E.",
    "arrival": "When a chunk reached the client host: the kernel's receive timestamp of the packet that "
               "completed it (SO_TIMESTAMPNS), else the time the read returned (TLS, other OSes).",
    "ttft_ms": "Time to first token: from `sent` to the arrival of the first "
               "token-bearing chunk (content, reasoning or tool-call delta; role-only chunks do not count).",
    "ttft_content_ms": "Time to the first chunk carrying answer content.",
    "ttft_reasoning_ms": "Time to the first chunk carrying reasoning (reasoning_content / reasoning / Ollama thinking).",
    "ttft_tool_ms": "Time to the first chunk carrying a tool-call delta.",
    "ttfb_ms": "Time to first byte: from `sent` to the arrival of the response head (llama-server sends it "
               "after templating and tokenising the prompt and consulting its host prompt cache, before prefill).",
    "e2e_ms": "End-to-end latency: from `sent` to the end of the response stream.",
    "itl_ms": "Inter-token latency, per token: (E2E − TTFT) ÷ (completion_tokens − 1), one value per request "
              "(vLLM's TPOT, GuideLLM's ITL); n/a when the decode window is degenerate.",
    "chunk_gap_ms": "Gap between consecutive token-bearing chunks, pooled over all requests (vLLM's ITL); "
                    "larger than itl_ms when a chunk carries several tokens (e.g. speculative decoding).",
    "tpot_ms": "Time per output token with TTFT included: E2E ÷ completion_tokens (GuideLLM's TPOT).",
    "tokens_per_chunk": "completion_tokens ÷ token-bearing chunks (1.0 = one token per chunk).",
    "decode_tps": "Decode tok/s: completion_tokens ÷ (E2E − TTFT); n/a when degenerate (fewer than 2 tokens "
                  "or 2 token-bearing chunks, or a window under 1 ms).",
    "wall_tps": "Wall tok/s: completion_tokens ÷ E2E.",
    "prefill_tps": "Prefill tok/s: (prompt_tokens − cached_tokens) ÷ TTFT, i.e. prompt tokens the server "
                   "actually processed per second of time to first token.",
    "effective_tps": "Cache-warm prompt tok/s: prompt_tokens (cached included) ÷ TTFT; shows the prefix-cache effect.",
    "cached_tokens": "Prompt tokens served from the server's prefix cache, as the server reports them "
                     "(usage.prompt_tokens_details.cached_tokens, else llama-server timings.cache_n).",
    "completion_tokens": "Generated tokens as the server's usage reports them (never counted from chunks).",
    "cache_busted": "Each request starts with a unique nonce, so no prefix cache can match past the first tokens.",
    "cache_warm": "The identical prompt was sent once (untimed) before the timed requests, so its prefix is cached.",
    "fixed_length": "Every measured request generated exactly the requested tokens (ignore_eos / min_tokens "
                    "accepted); otherwise the actual lengths are reported.",
    # per leg
    "median": "50th percentile, linear interpolation between closest ranks (numpy's default).",
    "p90": "90th percentile, linear interpolation.",
    "p99": "99th percentile, linear interpolation.",
    "cv": "Coefficient of variation: sample standard deviation (n − 1) ÷ mean.",
    "gate": "Repeat gate: measured runs are added until the CV of the last N runs is at most cv_max, or "
            "max_runs is reached; the report says whether it passed.",
    "warmup": "Runs sent before measuring and discarded (code paths, allocator and caches warmed).",
    "gen_tps_aggregate": "Aggregate generation tok/s at a concurrency level: completion tokens of successful "
                         "requests ÷ the level's wall time (first send to last end).",
    "gen_tps_per_request": "Median over successful requests of decode_tps: the speed one agent sees while streaming.",
    "completions_per_min": "Successful requests ÷ the level's wall time × 60.",
    "errors": "Requests that failed (HTTP error, reset, truncated stream, timeout); timed calls are never retried.",
    "error_rate": "errors ÷ requests sent at the level.",
    "concurrency": "Requests kept in flight at once (closed loop: each finished request starts the next).",
    "knee": "The last concurrency level before the first that stops paying: whose gen_tps_per_request is below "
            "half of the lowest level's, or whose aggregate tok/s does not rise.",
    "aggregate_gain": "gen_tps_aggregate of a level ÷ that of the previous level (near 1.0: saturated).",
    "wall_per_turn_s": "Agent legs: the level's wall time ÷ completed turns.",
    "turns_per_min": "Agent legs: completed turns ÷ the level's wall time × 60.",
    # energy
    "joules": "GPU energy over the leg: the delta of each GPU's cumulative energy counter "
              "(nvmlDeviceGetTotalEnergyConsumption), summed over GPUs; 'not measured' without a GPU.",
    "avg_watts": "joules ÷ leg seconds (per GPU and total); the power curve is sampled at >= 10 Hz.",
    "joules_per_token": "Leg joules ÷ completion tokens generated in the leg.",
    "joules_per_turn": "Agent leg joules ÷ completed turns.",
    "tokens_per_s_per_kw": "Generation tok/s ÷ (avg_watts ÷ 1000), i.e. tokens per kilojoule.",
    # roofline
    "roofline_bound_tps": "Decode upper bound: memory bandwidth ÷ bytes read per token (weights × active "
                          "fraction + KV cache at the context).",
    "fraction_of_bound": "Measured single-stream decode_tps ÷ roofline_bound_tps.",
    # server cross-checks
    "server_decode_tps": "The server's own decode rate: llama-server timings.predicted_per_second, Ollama "
                         "eval_count ÷ eval_duration.",
    "server_prefill_tps": "The server's own prompt rate: llama-server timings.prompt_per_second (prompt_n "
                          "excludes cached tokens), Ollama prompt_eval_count ÷ prompt_eval_duration (inflated "
                          "by cache hits).",
    "gap": "(client − server) ÷ server, per request then the median; flagged beyond 5% for rates and beyond "
           "10% (and 5 ms) for mean latencies.",
    "ttft_outside_server_ms": "Client TTFT − llama-server's timings.prompt_ms: time the server's prompt clock "
                              "does not see (HTTP, templating, tokenising, prompt cache, sampling); per request, then the "
                              "median. `before head`: the part of it up to ttfb_ms.",
    "expected_gap": "The gap the definitions alone predict: llama-server's predicted_ms spans n token intervals "
                    "and our E2E − TTFT spans n − 1, so our decode_tps reads n ÷ (n − 1) higher (+0.8% at 128 "
                    "tokens); the decode flag measures the gap from this.",
}

# ours, vLLM `bench serve`, GuideLLM, llama-bench
MAPPING: list[tuple[str, str, str, str]] = [
    ("ttft_ms", "TTFT", "time_to_first_token_ms (TTFT)", "—"),
    ("itl_ms", "TPOT", "inter_token_latency_ms (ITL)", "—"),
    ("chunk_gap_ms", "ITL", "—", "—"),
    ("tpot_ms", "—", "time_per_output_token_ms (TPOT)", "—"),
    ("e2e_ms", "E2EL", "request_latency", "—"),
    ("decode_tps (single stream, short prompt)", "≈ 1000 ÷ TPOT", "≈ 1000 ÷ ITL", "tg N (avg_ts)"),
    ("prefill_tps (cache-busted)", "—", "—", "pp N (avg_ts)"),
    ("gen_tps_aggregate", "Output token throughput", "output_tokens_per_second", "—"),
    ("completions_per_min", "Request throughput × 60", "requests_per_second × 60", "—"),
    ("ttft_content_ms", "—", "time_to_first_output_token_ms (TTFOT)", "—"),
]

NOTES = [
    "vLLM/SGLang TPOT = (E2E − TTFT) ÷ (n − 1) is GuideLLM's and AIPerf's ITL, and our itl_ms.",
    "vLLM's ITL is the per-chunk gap, our chunk_gap_ms; it drifts above itl_ms when a chunk carries several tokens.",
    "GuideLLM's TPOT includes TTFT (our tpot_ms); GuideLLM ends it at the last token, we at the end of the stream.",
    "GuideLLM's ITL distribution is weighted by (output tokens − 1); with fixed-length requests the weights are equal.",
    "llama-bench tg N decodes N tokens from an empty context without sampling or HTTP; pp N processes N prompt "
    "tokens in one batch. Our single-stream decode and cache-busted prefill are the closest comparisons.",
]


def markdown_definitions() -> str:
    return "\n".join(["| figure | definition |", "| --- | --- |"] +
                     [f"| `{k}` | {v} |" for k, v in DEFINITIONS.items()])


def markdown_mapping() -> str:
    rows = ["| brainbench | vLLM `bench serve` | GuideLLM | llama-bench |", "| --- | --- | --- | --- |"]
    rows += [f"| `{a.split(' ')[0]}`{a[len(a.split(' ')[0]):]} | {b} | {c} | {d} |" for a, b, c, d in MAPPING]
    return "\n".join(rows + [""] + [f"- {n}" for n in NOTES])
