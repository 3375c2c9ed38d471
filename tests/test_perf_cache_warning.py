"""Speed legs warn when a timed request hit the prefix cache: a cache-warm TTFT is never a cold prefill."""

from __future__ import annotations

from brainbench.core.types import ChatResult, Timing, Usage
from brainbench.perf.legs import cache_hit
from brainbench.perf.measure import sample_from_result
from brainbench.report.speedlegs import _decode, _prefill


def _sample(cached: int | None = None, cache_n: int | None = None):
    res = ChatResult(usage=Usage(prompt_tokens=512, completion_tokens=8, cached_tokens=cached),
                     timing=Timing(sent=0.0, first_token=0.1, end=0.2),
                     server_timings={"cache_n": cache_n, "prompt_n": 512 - (cache_n or 0)} if cache_n is not None else None)
    return sample_from_result(res)


def test_a_cached_prompt_is_warned_about():
    said: list[str] = []
    hit = cache_hit([_sample(cached=0), _sample(cached=300), _sample(cache_n=40)], "decode", said.append)
    assert hit == {"requests": 2, "of": 3, "cached_tokens_max": 300}  # usage first, else llama-server cache_n
    assert said == ["warning: 2 of 3 timed decode requests hit the prefix cache (up to 300 cached prompt tokens): "
                    "their TTFT is not a cold prefill"]


def test_no_warning_without_a_cache_hit():
    said: list[str] = []
    assert cache_hit([_sample(cached=0), _sample()], "decode", said.append) is None and said == []


def test_the_report_carries_the_warning():
    hit = {"requests": 1, "of": 5, "cached_tokens_max": 12}
    assert _decode({"decode_tps": {"median": 10.0}, "cache_hit": hit})["cache_hit"] == hit
    assert _decode({"decode_tps": {"median": 10.0}})["cache_hit"] is None
    rows = _prefill({"lengths": [{"target_tokens": 64, "cold": {"cache_hit": hit}, "warm": {}}]})
    assert rows[0]["cold_cache_hit"] == hit
