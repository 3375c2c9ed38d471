"""Server cross-checks: llama-server timings, Ollama eval counts, vLLM /metrics deltas."""

import pytest

from brainbench.perf.crosscheck import metrics_summary, parse_prometheus, per_request, summarize_requests
from brainbench.perf.legs import mark_knee
from brainbench.perf.measure import Sample

METRICS_BEFORE = """
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{le="0.1",model_name="m"} 3.0
vllm:time_to_first_token_seconds_count{model_name="m"} 10.0
vllm:time_to_first_token_seconds_sum{model_name="m"} 2.0
vllm:request_time_per_output_token_seconds_count{model_name="m"} 10.0
vllm:request_time_per_output_token_seconds_sum{model_name="m"} 0.1
vllm:e2e_request_latency_seconds_count{model_name="m"} 10.0
vllm:e2e_request_latency_seconds_sum{model_name="m"} 20.0
vllm:generation_tokens_total{model_name="m"} 1000.0
vllm:prompt_tokens_total{model_name="m"} 5000.0
vllm:prefix_cache_hits_total{model_name="m"} 0.0
vllm:request_success_total{finished_reason="length",model_name="m"} 10.0
vllm:request_success_total{finished_reason="stop",model_name="m"} 0.0
python_gc_objects_collected_total{generation="0"} 123.0
"""

METRICS_AFTER = METRICS_BEFORE.replace("_count{model_name=\"m\"} 10.0", "_count{model_name=\"m\"} 12.0") \
    .replace("time_to_first_token_seconds_sum{model_name=\"m\"} 2.0", "time_to_first_token_seconds_sum{model_name=\"m\"} 2.4") \
    .replace("request_time_per_output_token_seconds_sum{model_name=\"m\"} 0.1",
             "request_time_per_output_token_seconds_sum{model_name=\"m\"} 0.14") \
    .replace("e2e_request_latency_seconds_sum{model_name=\"m\"} 20.0", "e2e_request_latency_seconds_sum{model_name=\"m\"} 22.0") \
    .replace("generation_tokens_total{model_name=\"m\"} 1000.0", "generation_tokens_total{model_name=\"m\"} 1100.0") \
    .replace("finished_reason=\"length\",model_name=\"m\"} 10.0", "finished_reason=\"length\",model_name=\"m\"} 12.0")


def sample(ttft=0.2, e2e=1.2, n=50, server=None, prompt=100, cached=0):
    return Sample(ok=True, ttft_s=ttft, e2e_s=e2e, completion_tokens=n, n_chunks=n, prompt_tokens=prompt,
                  cached_tokens=cached, chunk_gaps_s=[(e2e - ttft) / (n - 1)] * (n - 1), server=server)


def test_parse_prometheus_sums_label_sets_and_drops_buckets():
    m = parse_prometheus(METRICS_BEFORE)
    assert m["vllm:request_success_total"] == 10.0
    assert "vllm:time_to_first_token_seconds_bucket" not in m
    assert "python_gc_objects_collected_total" not in m


def test_vllm_metrics_deltas_next_to_client_means():
    out = metrics_summary(parse_prometheus(METRICS_BEFORE), parse_prometheus(METRICS_AFTER),
                          [sample(ttft=0.21, e2e=1.0), sample(ttft=0.19, e2e=1.0)])
    assert out["server"] == "vllm"
    assert out["ttft_mean"]["server_ms"] == pytest.approx(200.0)
    assert out["ttft_mean"]["client_ms"] == pytest.approx(200.0) and out["ttft_mean"]["flagged"] is False
    assert out["itl_mean_vs_server_tpot"]["server_ms"] == pytest.approx(20.0)
    assert out["itl_mean_vs_server_tpot"]["client_ms"] == pytest.approx(800 / 49, rel=1e-3)
    assert out["itl_mean_vs_server_tpot"]["flagged"] is False  # −18%, but only 3.7 ms apart (floor: 5 ms)
    assert out["e2e_mean"]["flagged"] is False
    assert out["generation_tokens"] == {"client_usage": 100, "server": 100.0, "flagged": False}
    assert out["requests"] == {"client": 2, "server": 2.0}
    assert metrics_summary(None, parse_prometheus(METRICS_AFTER), []) is None


def test_llama_server_timings_per_request_and_flag():
    good = [sample(ttft=0.2, e2e=1.2, n=50, server={"predicted_n": 50, "predicted_ms": 1000.0,
                                                    "predicted_per_second": 50.0, "prompt_n": 100,
                                                    "prompt_ms": 200.0, "prompt_per_second": 500.0, "cache_n": 0})]
    rows = per_request(good)
    assert rows[0]["decode_gap"] == pytest.approx(0.0) and rows[0]["prefill_gap"] == pytest.approx(0.0)
    dec = summarize_requests(good, "decode")
    assert dec["flagged"] is False and dec["token_count_mismatches"] == 0
    slow = [sample(ttft=0.2, e2e=1.4, n=50, server={"predicted_n": 48, "predicted_ms": 1000.0,
                                                    "predicted_per_second": 50.0})]
    dec = summarize_requests(slow, "decode")
    assert dec["flagged"] is True and dec["gap_median"] == pytest.approx(50 / 1.2 / 50 - 1, abs=1e-3)
    assert dec["token_count_mismatches"] == 1


def test_ttft_outside_the_server_is_client_ttft_minus_prompt_ms():
    # 52.6 ms TTFT against 24.2 ms of server prompt time (an H100 prefill of 509 tokens): 28.4 ms elsewhere
    s = [sample(ttft=t, e2e=1.0, n=10, server={"predicted_n": 10, "predicted_ms": 900.0, "predicted_per_second": 11.1,
                                                "prompt_n": 509, "prompt_ms": 24.2, "prompt_per_second": 21033.0})
         for t in (0.0526, 0.0530, 0.0700)]
    pre = summarize_requests(s, "prefill")
    assert pre["ttft_outside_server_ms_median"] == pytest.approx(28.8, abs=0.01)
    assert per_request(s)[0]["ttft_outside_server_ms"] == pytest.approx(28.4, abs=0.01)
    assert "ttft_outside_server_ms_median" not in summarize_requests(s, "decode")
    assert pre["ttft_outside_before_head_ms_median"] is None  # no head stamps: not guessed


def test_ttft_outside_the_server_splits_at_the_response_head():
    # this machine, brain-small, 1,970-token text prompt: head at 19.6 ms (templating, tokenising), 24.8 outside
    srv = {"predicted_n": 4, "predicted_ms": 66.0, "predicted_per_second": 60.6, "prompt_n": 1970, "prompt_ms": 10390.6,
           "prompt_per_second": 189.6}
    s = [sample(ttft=10.4154, e2e=10.5, n=4, server=srv, prompt=1970)]
    s[0].ttfb_s = 0.0196
    pre = summarize_requests(s, "prefill")
    assert pre["ttft_outside_server_ms_median"] == pytest.approx(24.8, abs=0.01)
    assert pre["ttft_outside_before_head_ms_median"] == pytest.approx(19.6, abs=0.01)
    s[0].ttfb_s = 0.5  # a head stamped after the server's clock started cannot be more than the outside time
    assert summarize_requests(s, "prefill")["ttft_outside_before_head_ms_median"] == pytest.approx(24.8, abs=0.01)


def test_ollama_eval_counts():
    s = [sample(ttft=0.1, e2e=1.1, n=101, server={"eval_count": 101, "eval_duration": 1_000_000_000,
                                                  "prompt_eval_count": 10, "prompt_eval_duration": 1_000_000})]
    dec = summarize_requests(s, "decode")
    assert dec["server"] == "ollama" and dec["server_tps_median"] == 101.0
    pre = summarize_requests(s, "prefill")
    assert "inflated" in pre["note"]


def test_knee_is_the_last_level_before_per_request_speed_halves():
    levels = [{"concurrency": c, "gen_tps_per_request": p, "gen_tps_aggregate": a}
              for c, p, a in [(1, 50, 50), (2, 45, 90), (4, 30, 120), (8, 20, 160), (16, 10, 160)]]
    assert mark_knee(levels) == 4
    assert [lv["knee"] for lv in levels] == [False, False, True, False, False]
    assert levels[-1]["aggregate_gain"] == 1.0


def test_the_knee_is_never_a_level_where_aggregate_throughput_fell():
    levels = [{"concurrency": c, "gen_tps_per_request": p, "gen_tps_aggregate": a}
              for c, p, a in [(1, 12, 12), (2, 11.7, 23.5), (4, 8.6, 17.3), (8, 7, 20)]]
    assert mark_knee(levels) == 2  # 23.5 -> 17.3 tok/s: four in flight already bought nothing
    assert [lv["knee"] for lv in levels] == [False, True, False, False]
    rising = [{"concurrency": c, "gen_tps_per_request": 10, "gen_tps_aggregate": 10 * c} for c in (1, 2, 4)]
    assert mark_knee(rising) is None
    assert mark_knee([{"concurrency": 1, "gen_tps_per_request": None, "gen_tps_aggregate": None}]) is None


def test_the_prefill_table_names_what_happens_before_the_head():
    from brainbench.perf.report import prefill_table

    def length(head):
        xc = {"server_tps_median": 190.0, "gap_median": -0.002, "flagged": False,
              "ttft_outside_server_ms_median": 24.2, "ttft_outside_before_head_ms_median": head}
        return {"prompt_tokens": 2028, "ttft_speedup_warm": 222.0,
                "cold": {"ttft_ms": {"median": 10615.8}, "prefill_tps": {"median": 190.5}, "cross_check": xc},
                "warm": {"ttft_ms": {"median": 47.8}, "cached_tokens_median": 2028}}

    t = prefill_table({"lengths": [length(24.2)]})
    assert "--cache-ram" in t.caption and list(t.columns[5].cells) == ["24.2 (24.2)"]
    assert prefill_table({"lengths": [length(None)]}).caption is None  # no head stamps: no claim
