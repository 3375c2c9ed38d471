"""A small parser for the Prometheus text exposition format (what `/metrics` returns)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+-?\d+)?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def _unescape(v: str) -> str:
    return v.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")


def parse_labels(text: str) -> dict[str, str]:
    body = text.strip()[1:-1]
    out: dict[str, str] = {}
    pos = 0
    while pos < len(body):
        m = _LABEL.match(body, pos)
        if not m:
            break
        out[m.group(1)] = _unescape(m.group(2))
        pos = m.end()
    return out


def parse(text: str) -> Iterator[tuple[str, dict[str, str], float]]:
    """(name, labels, value) for every sample; comments, blank and malformed lines are skipped."""
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        m = _LINE.match(line.strip())
        if not m:
            continue
        raw = m.group(3)
        try:
            value = float(raw)
        except ValueError:
            continue
        if math.isnan(value):
            continue
        yield m.group(1), parse_labels(m.group(2)) if m.group(2) else {}, value


# What the concurrency tables need, per server. Counters are matched with or without `_total`.
RUNNING = ("vllm:num_requests_running", "llamacpp:requests_processing", "sglang:num_running_reqs")
WAITING = ("vllm:num_requests_waiting", "llamacpp:requests_deferred", "sglang:num_queue_reqs")
GEN = ("vllm:generation_tokens", "llamacpp:tokens_predicted", "sglang:generation_tokens")
PROMPT = ("vllm:prompt_tokens", "llamacpp:prompt_tokens", "sglang:prompt_tokens")
SUCCESS = ("vllm:request_success",)
KV = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "llamacpp:kv_cache_usage_ratio",
      "sglang:token_usage")
EXTRA = ("vllm:num_preemptions", "llamacpp:n_decode", "llamacpp:tokens_predicted_seconds",
         "llamacpp:prompt_seconds", "llamacpp:n_busy_slots_per_decode", "vllm:prefix_cache_hits",
         "vllm:prefix_cache_queries", "vllm:spec_decode_num_accepted_tokens", "vllm:spec_decode_num_draft_tokens",
         "vllm:spec_decode_num_drafts")
KEEP = frozenset(RUNNING + WAITING + GEN + PROMPT + SUCCESS + KV + EXTRA)


def base_name(name: str) -> str:
    return name[:-6] if name.endswith("_total") else name


def wanted(name: str) -> bool:
    return base_name(name) in KEEP
