"""Statistics and per-request figures: numpy's percentile convention, TTFT rules, degenerate windows."""

import math

import pytest

from brainbench.core.types import ChatResult, Timing, Usage
from brainbench.perf.definitions import DEFINITIONS, MAPPING, markdown_definitions, markdown_mapping
from brainbench.perf.measure import sample_from_result
from brainbench.perf.stats import cv, percentile, rel_error, summarize


def test_percentile_is_numpy_linear():
    xs = [15, 20, 35, 40, 50]
    # numpy.percentile(xs, q) with method="linear"
    assert percentile(xs, 0) == 15
    assert percentile(xs, 50) == 35
    assert percentile(xs, 40) == pytest.approx(29.0)
    assert percentile(xs, 90) == pytest.approx(46.0)
    assert percentile(xs, 99) == pytest.approx(49.6)
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None
    assert percentile([1, None, float("nan"), 3], 50) == 2.0


def test_summary_and_cv():
    s = summarize([1.0, 2.0, 3.0, 4.0], scale=1000)
    assert s["count"] == 4 and s["mean"] == 2500 and s["median"] == 2500 and s["min"] == 1000 and s["max"] == 4000
    assert cv([10, 10, 10]) == 0
    assert cv([9, 11]) == pytest.approx(math.sqrt(2) / 10)
    assert cv([5]) is None
    assert summarize([])["median"] is None
    assert rel_error(102, 100) == pytest.approx(0.02) and rel_error(None, 1) is None


def _chunk(delta):
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}


def result(chunks, stamps, *, sent=100.0, end=None, completion=None, prompt=None, cached=None, server=None):
    t = Timing(sent=sent, first_byte=sent + 0.001, first_token=stamps[0] if stamps else None, chunks=stamps,
               end=end if end is not None else (stamps[-1] if stamps else sent))
    return ChatResult(timing=t, response=chunks, server_timings=server,
                      usage=Usage(completion_tokens=completion, prompt_tokens=prompt, cached_tokens=cached))


def test_role_only_chunk_does_not_start_ttft_and_kinds_are_separated():
    chunks = [_chunk({"role": "assistant", "content": ""}),           # not token-bearing: no stamp
              _chunk({"reasoning_content": "think"}),
              _chunk({"reasoning_content": " more"}),
              _chunk({"content": "Hello"}),
              _chunk({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": ""}}]}),
              {"choices": [], "usage": {"completion_tokens": 5}}]
    stamps = [100.2, 100.25, 100.3, 100.4]
    s = sample_from_result(result(chunks, stamps, end=100.45, completion=5))
    assert s.ttft_s == pytest.approx(0.2)
    assert s.ttft_reasoning_s == pytest.approx(0.2)
    assert s.ttft_content_s == pytest.approx(0.3)
    assert s.ttft_tool_s == pytest.approx(0.4)
    assert s.n_chunks == 4 and s.chunk_gaps_s == pytest.approx([0.05, 0.05, 0.1])
    # per token: (E2E − TTFT) / (n − 1), from the server's count (5), not the 4 chunks
    assert s.itl_s == pytest.approx((0.45 - 0.2) / 4)
    assert s.decode_tps == pytest.approx(5 / 0.25)
    assert s.tpot_s == pytest.approx(0.45 / 5)
    assert s.tokens_per_chunk == pytest.approx(5 / 4)


def test_degenerate_decode_window_is_na():
    one_chunk = sample_from_result(result([_chunk({"content": "all at once"})], [100.3], end=100.3, completion=12))
    assert one_chunk.decode_tps is None and one_chunk.itl_s is None
    assert one_chunk.wall_tps == pytest.approx(12 / 0.3)
    one_token = sample_from_result(result([_chunk({"content": "a"}), _chunk({"content": "b"})], [100.1, 100.2],
                                          completion=1))
    assert one_token.decode_tps is None


def test_prefill_subtracts_cached_tokens_from_usage_or_llama_timings():
    chunks = [_chunk({"content": "x"}), _chunk({"content": "y"})]
    s = sample_from_result(result(chunks, [100.5, 100.6], completion=2, prompt=1000, cached=800))
    assert s.new_prompt_tokens == 200 and s.prefill_tps == pytest.approx(200 / 0.5)
    s2 = sample_from_result(result(chunks, [100.5, 100.6], completion=2, prompt=1000, server={"cache_n": 900}))
    assert s2.cached_tokens == 900 and s2.prefill_tps == pytest.approx(100 / 0.5)


def test_every_reported_figure_is_defined_and_mapped():
    for key in ("ttft_ms", "itl_ms", "chunk_gap_ms", "tpot_ms", "e2e_ms", "decode_tps", "prefill_tps",
                "gen_tps_aggregate", "gen_tps_per_request", "completions_per_min", "knee", "joules_per_token",
                "tokens_per_s_per_kw", "cv", "p99", "errors", "cached_tokens"):
        assert DEFINITIONS[key].strip(), key
    ours = {row[0].split(" ")[0] for row in MAPPING}
    assert {"ttft_ms", "itl_ms", "chunk_gap_ms", "tpot_ms", "e2e_ms"} <= ours
    assert "| `itl_ms` | TPOT |" in markdown_mapping()
    assert markdown_definitions().count("\n") == len(DEFINITIONS) + 1


def test_docs_speed_definitions_match_the_definitions_module():
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "reference" / "speed.md").read_text()
    assert markdown_definitions() in page
    assert markdown_mapping() in page
