"""vLLM log mining: every stats-line format, noise, gzip, rotation, data-parallel engines, and a generated
log parsed to exactly its known per-bucket truth."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from brainbench.logs import vllm
from brainbench.logs.common import counter_stats, order_inputs, parse_go_duration
from brainbench.logs.synth import SynthSpec, generate
from brainbench.logs.windows import load_windows

DATA = Path(__file__).parent / "data" / "logs"


def run(*paths: Path, **kw) -> dict:
    windows = kw.pop("windows", None)
    engine = kw.pop("engine", "all")
    opts = vllm.Options(windows=load_windows(windows) if windows else None, engine=engine)
    return vllm.analyze(list(paths), opts, workers=kw.pop("workers", 1), **kw)


def by_running(r: dict) -> dict:
    return {b["running"]: b for b in r["buckets"]}


# -- line formats (samples written from vLLM's format strings) ---------------------------------------------


def test_v0_metrics_line_access_lines_and_capacity():
    r = run(DATA / "vllm_v0.log")
    b = by_running(r)
    assert set(b) == {1, 2}
    assert b[1]["samples"] == 1 and b[1]["gen_tps_mean"] == 12.5 and b[1]["prefill_tps_sustained"] == 512.3
    assert b[2]["samples"] == 2 and b[2]["gen_tps_mean"] == pytest.approx(50.1)
    # prefill 0.0 and 100.0: sustained averages both, active only the window that prefilled
    assert b[2]["prefill_tps_sustained"] == 50.0 and b[2]["prefill_tps_active"] == 100.0
    assert b[2]["per_request_tps"] == pytest.approx(25.05, abs=0.01)
    # two POSTs before the 14:01:10 line, one (after a 400 and a GET) before 14:01:20: 3 in 2 windows
    assert b[2]["completions"] == 3 and b[2]["completions_per_min"] == pytest.approx(9.0)
    assert b[1]["completions"] == 0
    assert b[2]["waiting_mean"] == 0.5  # V0 calls it Pending
    assert b[2]["kv_cache_usage_mean"] == 3.0
    p = r["parse"]
    assert p["stats_lines"] == 3 and p["corrupt_lines"] == 0 and p["http_errors"] == {"400": 1}
    cap = r["capacity"][0]
    assert cap["gpu_blocks"] == 4768 and cap["max_model_len"] == 32768 and cap["max_concurrency"] == 2.33
    assert cap["kv_cache_tokens_est"] == round(2.33 * 32768)
    # V0 logs the draft acceptance rate as a fraction; the report is a percentage
    assert r["spec_decode"]["draft_acceptance_rate_pct"] == 65.0


def test_early_v1_line_with_trailing_space_and_no_kv_field():
    r = run(DATA / "vllm_v1_early.log")
    b = by_running(r)[1]
    assert b["samples"] == 2 and b["gen_tps_mean"] == 25.0 and b["kv_cache_usage_mean"] is None
    assert b["waiting_mean"] == 1.0 and b["completions"] == 1


def test_v1_colour_apiserver_tag_optional_parts_idle_and_noise():
    r = run(DATA / "vllm_v1.log")
    b = by_running(r)
    assert b[3]["samples"] == 2 and b[3]["gen_tps_mean"] == 79.0
    assert b[3]["preemptions"] == 1 and b[3]["kv_cache_usage_mean"] == pytest.approx(89.6)
    assert b[3]["prefill_tps_active"] == 1200.5 and b[3]["prefill_tps_sustained"] == pytest.approx(600.25)
    assert b[3]["completions"] == 3 and b[3]["completions_per_min"] == 9.0
    assert b[1]["samples"] == 2
    p = r["parse"]
    assert p["stats_lines"] == 4
    assert p["corrupt_lines"] == 1  # the line cut by another process's output
    assert p["interval_s"] == 10.0
    assert p["idle_s"] == 50.0 and p["idle_windows"] == 5  # a 60 s gap of DEBUG-only windows
    sd = r["spec_decode"]
    assert sd["lines"] == 2 and sd["accepted_tokens"] == 100 and sd["drafted_tokens"] == 152
    assert sd["mean_acceptance_length"] == pytest.approx(2.385)
    assert sd["per_position_acceptance"] == pytest.approx([0.8015, 0.5855], abs=1e-3)
    assert r["capacity"] == [{"max_model_len": 262144, "max_concurrency": 4.66, "kv_cache_tokens": 1220608,
                              "device": "GPU", "time": "08-24 16:20:01"}]
    assert any("prefix-cache hits" in n for n in r["notes"])


def test_capacity_line_in_the_merged_form():
    r = run(DATA / "vllm_capacity_merged.log")
    assert r["buckets"] == []
    assert r["capacity"][0]["kv_cache_tokens"] == 34952 and r["capacity"][0]["max_model_len"] == 8192


def test_gzip_gives_the_same_result_as_plain():
    a, b = run(DATA / "vllm_v1.log"), run(DATA / "vllm_v1.log.gz")
    assert a["buckets"] == b["buckets"] and a["spec_decode"] == b["spec_decode"]


def test_truncated_gzip_keeps_what_was_read(tmp_path):
    blob = gzip.compress((DATA / "vllm_v1.log").read_bytes() * 200)
    cut = tmp_path / "cut.log.gz"
    cut.write_bytes(blob[: len(blob) * 2 // 3])
    r = run(cut)
    assert r["parse"]["truncated_inputs"] and r["parse"]["stats_lines"] > 100


def test_data_parallel_per_engine_lines():
    r = run(DATA / "vllm_dp.log")
    assert r["parse"]["series"] == ["engine 000", "engine 001"]
    b = by_running(r)
    assert b[2]["samples"] == 3 and b[1]["samples"] == 1
    # completions are server-wide: each goes to the next stats line of any engine
    assert b[1]["completions"] == 2 and b[2]["completions"] == 1
    one = run(DATA / "vllm_dp.log", engine="1")
    assert [x["samples"] for x in one["buckets"]] == [2] and one["parse"]["skipped_other_engines"] == 2
    assert one["buckets"][0]["completions"] == 3  # with one engine picked, its windows get them all


def test_engines_aggregated_lines():
    r = run(DATA / "vllm_dp_aggregated.log")
    assert r["parse"]["series"] == ["aggregated"]
    assert by_running(r)[4]["gen_tps_mean"] == 120.0 and by_running(r)[3]["completions"] == 1


def test_aggregated_lines_win_over_per_engine_lines(tmp_path):
    both = tmp_path / "both.log"
    both.write_bytes((DATA / "vllm_dp.log").read_bytes() + (DATA / "vllm_dp_aggregated.log").read_bytes())
    r = run(both)
    assert r["parse"]["series_used"] == ["aggregated"] and sum(b["samples"] for b in r["buckets"]) == 2


def test_garbage_only_input_is_not_fatal(tmp_path):
    junk = tmp_path / "junk.log"
    junk.write_bytes(b"\x00\x01\xff" * 1000 + b"\nAvg prompt throughput: nonsense\n\n" + bytes(range(256)))
    r = run(junk)
    assert r["buckets"] == [] and r["parse"]["corrupt_lines"] == 1


def test_empty_file(tmp_path):
    (tmp_path / "empty.log").write_bytes(b"")
    assert run(tmp_path / "empty.log")["buckets"] == []


# -- windows CSV, rotation ---------------------------------------------------------------------------------


def test_windows_csv_labels_and_tokens_per_kw(tmp_path):
    w = tmp_path / "w.csv"
    w.write_text("start,end,label,watts\n"
                 "2025-08-24 16:22:00,2025-08-24 16:22:40,250W,1000\n"
                 "08-24 16:22:40,08-24 16:30:00,300W,1200\n")
    r = run(DATA / "vllm_v1.log", windows=w)
    rows = {(b["label"], b["running"]): b for b in r["buckets"]}
    assert set(rows) == {("250W", 1), ("250W", 3), ("300W", 3), ("300W", 1)}
    assert rows[("250W", 3)]["gen_tps_per_kw"] == 88.0 and rows[("250W", 3)]["watts"] == 1000
    assert rows[("300W", 3)]["gen_tps_per_kw"] == pytest.approx(70.0 / 1.2, abs=0.01)
    summary = {s["label"]: s for s in r["summary"]}
    assert summary["250W"]["samples"] == 2 and summary["300W"]["samples"] == 2
    assert summary["250W"]["prefill_tps_mean"] == pytest.approx((4821.3 + 1200.5) / 2, abs=0.01)


def test_windows_outside_every_range_are_dropped_with_their_completions(tmp_path):
    w = tmp_path / "w.csv"
    w.write_text("08-24 16:22:30,08-24 16:22:40,only\n")
    r = run(DATA / "vllm_v1.log", windows=w)
    assert [(b["running"], b["samples"], b["completions"]) for b in r["buckets"]] == [(3, 1, 1)]
    assert r["parse"]["unlabelled_windows"] == 3


def test_rotated_files_are_read_oldest_first_and_carry_completions(tmp_path):
    lines = (DATA / "vllm_v0.log").read_bytes().splitlines(keepends=True)
    # split between the access lines and the stats line they belong to
    k = next(i for i, line in enumerate(lines) if b"51236" in line) + 1
    (tmp_path / "vllm.log.1").write_bytes(b"".join(lines[:k]))
    (tmp_path / "vllm.log").write_bytes(b"".join(lines[k:]))
    ordered = order_inputs([tmp_path / "vllm.log", tmp_path / "vllm.log.1"])
    assert [p.name for p in ordered] == ["vllm.log.1", "vllm.log"]
    r = run(*ordered)
    assert by_running(r)[2]["completions"] == 3
    assert r["buckets"] == run(DATA / "vllm_v0.log")["buckets"]


def test_order_inputs_rotation_with_gzip():
    names = [Path("a/x.log"), Path("a/x.log.2.gz"), Path("a/x.log.1"), Path("b.log")]
    assert [str(p) for p in order_inputs(names)] == ["a/x.log.2.gz", "a/x.log.1", "a/x.log", "b.log"]


# -- generated logs with known truth ---------------------------------------------------------------------------

KEYS = ("samples", "gen_tps_mean", "gen_tps_median", "gen_tps_p95", "gen_tps_peak", "per_request_tps",
        "prefill_tps_sustained", "prefill_tps_active", "completions_per_min")


def assert_truth(r: dict, truth) -> None:
    got = by_running(r)
    assert sorted(got) == [b["running"] for b in truth.buckets]
    for t in truth.buckets:
        g = got[t["running"]]
        for k in KEYS:
            if t[k] is None:
                assert g[k] is None, k
            else:
                assert g[k] == pytest.approx(t[k], abs=0.006), (t["running"], k)
    assert r["parse"]["stats_lines"] == truth.stats_lines
    assert r["parse"]["corrupt_lines"] == truth.corrupt_lines
    assert r["parse"]["completions"] == truth.completions + 1  # the trailing one belongs to no window
    assert r["parse"]["completions_unattributed"] == 1


def test_generated_log_is_parsed_to_its_exact_truth(tmp_path):
    spec = SynthSpec(windows=1500, seed=3, formats=("v0", "v1-early", "v1", "v1-new"), idle_every=97,
                     corrupt_every=31, ansi=True, spec_decode=True)
    truth = generate(tmp_path / "gen.log", spec)
    r = run(tmp_path / "gen.log")
    assert_truth(r, truth)
    assert r["parse"]["idle_s"] == truth.idle_s
    assert r["parse"]["interval_s"] == 10.0
    assert r["spec_decode"]["accepted_tokens"] == truth.spec_accepted
    assert r["capacity"][0]["kv_cache_tokens"] == truth.capacity["kv_cache_tokens"]
    # crosses New Year (starts 12-31 23:00): span is the real wall time, not a year backwards
    assert r["parse"]["span_s"] == pytest.approx((1500 - 1) * 10 + truth.idle_s)


def test_generated_gzip_and_data_parallel_truth(tmp_path):
    spec = SynthSpec(windows=800, seed=5, formats=("v1", "v1-new"), engines=2, request_log_bytes=500)
    truth = generate(tmp_path / "dp.log.gz", spec, compress=True)
    r = run(tmp_path / "dp.log.gz")
    assert_truth(r, truth)
    assert r["parse"]["series"] == ["engine 000", "engine 001"]


def test_split_tasks_and_worker_processes_agree_with_one_pass(tmp_path):
    """Cutting one file into ranges (as for two cores) must not change a single number: completions that
    straddle a cut are carried to the next range's first window."""
    spec = SynthSpec(windows=3000, seed=9, formats=("v1",), corrupt_every=50, request_log_bytes=300)
    truth = generate(tmp_path / "big.log", spec)
    one = run(tmp_path / "big.log")
    split = run(tmp_path / "big.log", workers=2, parallel_min_bytes=0, min_part_bytes=1)
    assert_truth(split, truth)
    assert split["buckets"] == one["buckets"]
    assert split["parse"]["idle_s"] == one["parse"]["idle_s"]


def test_small_regions_do_not_change_results(tmp_path, monkeypatch):
    spec = SynthSpec(windows=400, seed=11, formats=("v1",), request_log_bytes=2000)
    truth = generate(tmp_path / "r.log", spec)
    from brainbench.logs import common

    monkeypatch.setattr(common, "REGION_BYTES", 4096 * 3)
    monkeypatch.setattr(vllm, "iter_regions", lambda task: common.iter_regions(task, 4096 * 3))
    assert_truth(run(tmp_path / "r.log"), truth)


# -- helpers --------------------------------------------------------------------------------------------------


def test_counter_stats_matches_numpy_linear_percentile():
    vals = [5.0, 1.0, 3.0, 3.0, 10.0, 7.5]
    s = counter_stats({v: vals.count(v) for v in set(vals)})
    assert s["n"] == 6 and s["mean"] == pytest.approx(sum(vals) / 6)
    assert s["median"] == 4.0 and s["p95"] == pytest.approx(9.375) and s["max"] == 10.0


def test_go_durations():
    assert parse_go_duration("1m2.5s") == pytest.approx(62.5)
    assert parse_go_duration("850.2µs") == pytest.approx(850.2e-6)
    assert parse_go_duration("12.5ms") == pytest.approx(0.0125)
    assert parse_go_duration("1h0m1s") == 3601
    assert parse_go_duration("garbage") is None


def test_many_cuts_merge_to_the_one_pass_result(tmp_path):
    from brainbench.logs.common import plan_tasks

    spec = SynthSpec(windows=1200, seed=13, formats=("v1", "v1-new"), engines=2, idle_every=150, request_log_bytes=200)
    truth = generate(tmp_path / "m.log", spec)
    opts = vllm.Options()
    tasks = plan_tasks([tmp_path / "m.log"], 9, 1)
    assert len(tasks) == 9
    merged = vllm.report(vllm.merge([vllm.scan_task(t, opts) for t in tasks]), opts, 1.0, [tmp_path / "m.log"])
    assert_truth(merged, truth)
    assert merged["parse"]["idle_s"] == run(tmp_path / "m.log")["parse"]["idle_s"] == truth.idle_s


def test_order_inputs_dateext_and_live_file_last():
    names = [Path("v.log"), Path("v.log-20250511"), Path("v.log-20250510.gz"), Path("run-3.log"), Path("run-10.log")]
    assert [str(p) for p in order_inputs(names)] == ["v.log-20250510.gz", "v.log-20250511", "v.log", "run-3.log",
                                                      "run-10.log"]


def test_windows_overlap_first_wins_and_new_year_wrap(tmp_path):
    from brainbench.logs.common import md_seconds

    w = tmp_path / "w.csv"
    w.write_text("12-31 23:00,01-01 01:00,newyear\n05-10 10:00,05-10 12:00,a\n05-10 11:00,05-10 13:00,b\n")
    ws = load_windows(w)
    at = lambda mo, d, h, mi: ws.label_at(md_seconds(mo, d, h, mi, 0))  # noqa: E731
    assert at(12, 31, 23, 30) == at(1, 1, 0, 30) == "newyear"
    assert at(5, 10, 11, 30) == "a" and at(5, 10, 12, 30) == "b" and at(5, 10, 13, 0) is None
    assert at(1, 1, 1, 0) is None and ws.label_at(None) is None


def test_stdin_plain_and_gzip(monkeypatch):
    import io
    import sys

    for blob in ((DATA / "vllm_v0.log").read_bytes(), gzip.compress((DATA / "vllm_v0.log").read_bytes())):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(blob)))
        assert run(Path("-"))["buckets"] == run(DATA / "vllm_v0.log")["buckets"]


def test_concatenated_gzip_members(tmp_path):
    a, b = (DATA / "vllm_v0.log").read_bytes().split(b"INFO:     127.0.0.1:51240", 1)
    (tmp_path / "two.gz").write_bytes(gzip.compress(a) + gzip.compress(b"INFO:     127.0.0.1:51240" + b))
    assert run(tmp_path / "two.gz")["buckets"] == run(DATA / "vllm_v0.log")["buckets"]
