"""llama-server slot timings, Ollama GIN lines, and agent-log failures with the iceberg."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from brainbench.logs import agent, llama, ollama

DATA = Path(__file__).parent / "data" / "logs"


def by_running(r: dict) -> dict:
    return {b["running"]: b for b in r["buckets"]}


# -- llama-server ---------------------------------------------------------------------------------------


def test_llama_server_current_format_with_timestamps():
    r = llama.analyze([DATA / "llama_server.log"])
    assert r["requests"] == 3
    b = by_running(r)
    # tasks 0 and 2 overlapped (two slots busy), task 4 ran alone
    assert b[2]["samples"] == 2 and b[1]["samples"] == 1
    assert b[2]["gen_tps_mean"] == pytest.approx((124.98 + 100.0) / 2, abs=0.01)
    assert b[2]["gen_tps_peak"] == 124.98
    # task 2's prompt was fully cached (0 tokens, nan tok/s): counts as 0 in 'all', not in 'active'
    assert b[2]["prefill_tps_active"] == 374.53 and b[2]["prefill_active_samples"] == 1
    assert b[2]["prefill_tps_sustained"] == pytest.approx(374.53 / 2, abs=0.01)
    assert b[1]["prefill_tps_active"] == 2000.0 and b[1]["gen_tokens"] == 60 and b[1]["prompt_tokens"] == 200
    assert b[1]["latency_s_mean"] == 0.5
    # M.SS.mmm.uuu timestamps: 3 requests finishing at 2 s, 3 s and 5 s
    assert r["requests_per_min"] == 40.0
    assert r["spec_decode"] is None or r["spec_decode"]["drafted_tokens"] == 21


def test_llama_server_draft_acceptance_mean_len():
    r = llama.analyze([DATA / "llama_server.log"])
    assert r["spec_decode"] == {"accepted_tokens": 12, "drafted_tokens": 21, "draft_acceptance_rate_pct": 57.14,
                                "mean_acceptance_length": 1.8}


def test_llama_server_2024_format_release_before_timings():
    r = llama.analyze([DATA / "llama_server_old.log"])
    assert r["requests"] == 1
    b = r["buckets"][0]
    assert b["running"] == 1 and b["gen_tps_mean"] == 80.0 and b["prefill_tps_active"] == 500.0
    assert r["spec_decode"]["draft_acceptance_rate_pct"] == 50.0


def test_llama_json_log_lines_and_llama_cli_runs(tmp_path):
    log = tmp_path / "old.log"
    log.write_text("\n".join([
        '{"tid":"1","timestamp":1,"level":"INFO","function":"launch_slot_with_task","line":1,"msg":"slot is processing task","id_slot":0,"id_task":3}',
        '{"tid":"1","timestamp":2,"level":"INFO","function":"print_timings","line":2,"msg":"prompt eval time     =     100.00 ms /    50 tokens (    2.00 ms per token,   500.00 tokens per second)","id_slot":0,"id_task":3}',
        '{"tid":"1","timestamp":2,"level":"INFO","function":"print_timings","line":3,"msg":"generation eval time =     500.00 ms /    25 runs   (   20.00 ms per token,    50.00 tokens per second)","id_slot":0,"id_task":3}',
        "llama_perf_context_print: prompt eval time =      10.00 ms /     5 tokens (    2.00 ms per token,   500.00 tokens per second)",
        "llama_perf_context_print:        eval time =     100.00 ms /    10 runs   (   10.00 ms per token,   100.00 tokens per second)",
    ]) + "\n")
    r = llama.analyze([log])
    assert r["requests"] == 2
    b = by_running(r)
    assert b[1]["gen_tps_mean"] == 50.0  # the JSON request, slot 0 task 3
    assert b[None]["gen_tps_mean"] == 100.0  # llama-cli: no slot lines, concurrency unknown


def test_llama_garbage_and_unpaired_lines(tmp_path):
    log = tmp_path / "g.log"
    log.write_bytes(b"\xff\xfe\x00garbage\n       eval time =  12.00 ms /  3 tokens (4.00 ms per token, 250.00 tokens per second)\n"
                    b"prompt eval time = broken\n")
    r = llama.analyze([log])
    assert r["requests"] == 0 and r["parse"]["unpaired_timing_lines"] == 1


# -- Ollama ---------------------------------------------------------------------------------------------------


def test_ollama_gin_lines_latency_and_in_flight():
    r = ollama.analyze([DATA / "ollama.log"])
    assert r["requests"] == 4 and r["completions"] == 3
    assert r["endpoints"] == {"/api/chat": 2, "/v1/chat/completions": 1, "/api/generate": 1}
    assert r["status"] == {"200": 5, "500": 1}
    assert r["other_requests"] == {"GET /api/tags": 1, "HEAD /": 1}
    assert r["parse"]["gin_lines_unreadable"] == 1
    b = by_running(r)
    # the 62.5 s /api/generate (coloured 500) overlaps everything; /api/chat #1 ended before #2 started
    assert b[2]["samples"] == 1 and b[2]["latency_s_mean"] == 2.0
    assert b[3]["samples"] == 3 and b[3]["latency_s_max"] == 62.5 and b[3]["errors"] == 1
    assert b[3]["latency_s_median"] == 4.0


def test_ollama_log_with_llama_runner_timings(tmp_path):
    log = tmp_path / "o.log"
    log.write_bytes((DATA / "ollama.log").read_bytes() + (DATA / "llama_server_old.log").read_bytes())
    r = ollama.analyze([log])
    assert r["llama_timings"]["requests"] == 1


# -- agent logs -----------------------------------------------------------------------------------------------


def test_agent_failure_classes_models_and_tools():
    r = agent.analyze([DATA / "agent.log"])
    counts = {c["class"]: c["count"] for c in r["classes"]}
    assert counts == {"loading_model_503": 1, "connection_reset": 1, "stream_failed": 1, "dropped_tool_call": 1,
                      "repeated_failure": 1, "tool_error": 2}
    assert r["visible_tool_failures"] == 4 and r["visible_transport_failures"] == 3
    assert r["by_model"]["gemma-4-12b"] == {"tool_error": 2, "repeated_failure": 1}
    assert r["by_model"]["gemma"] == {"dropped_tool_call": 1, "connection_reset": 1}
    assert r["by_model"]["qwen36-27b"] == {"loading_model_503": 1, "stream_failed": 1}
    assert r["by_tool"] == {"kanban_complete": 3, "terminal": 1}
    assert r["iceberg"] is None


def test_agent_iceberg_from_cards_csv():
    r = agent.analyze([DATA / "agent.log"], DATA / "cards.csv")
    ice = r["iceberg"]
    assert ice["items"] == 9 and ice["failed"] == 5 and ice["visible"] == 4
    assert ice["invisible_min"] == 1 and ice["visible_share_max"] == 0.8
    assert ice["final_states"] == {"done": 4, "in_progress": 3, "blocked": 2}
    qwen = next(m for m in ice["by_model"] if m["model"] == "qwen36-27b")
    assert qwen == {"model": "qwen36-27b", "items": 3, "failed": 1, "visible": 0, "invisible_min": 1,
                    "visible_share_max": 0.0}


def test_agent_iceberg_from_a_run_directory(tmp_path):
    """The run store: attempts (+ verdicts when scored). Unscored attempts fail on an open obligation."""
    db = tmp_path / "brainbench.sqlite"
    conn = sqlite3.connect(db)
    conn.executescript("""
        CREATE TABLE attempts (key TEXT PRIMARY KEY, pack TEXT, scenario_id TEXT, scenario_hash TEXT, model TEXT,
          config_hash TEXT, trial INTEGER, status TEXT, started REAL, ended REAL, record TEXT);
        CREATE TABLE verdicts (attempt_key TEXT, scorer TEXT, passed INTEGER, clean INTEGER, failures TEXT,
          details TEXT, scored_at REAL);
    """)
    rec = lambda ob: json.dumps({"dispatches": [{"index": 0, "end_reason": "stop", "open_obligation": ob}]})
    rows = [("a1", "gemma", "completed", rec("card still in_progress")), ("a2", "gemma", "completed", rec(None)),
            ("a3", "gemma", "infra_error", rec(None)), ("a4", "qwen", "completed", rec(None)),
            ("a5", "qwen", "completed", rec(None))]
    conn.executemany("INSERT INTO attempts (key, model, status, record) VALUES (?,?,?,?)", rows)
    conn.executemany("INSERT INTO verdicts (attempt_key, scorer, passed) VALUES (?,?,?)",
                     [("a4", "close_out", 1), ("a5", "close_out", 0), ("a5", "other", 1)])
    conn.commit()
    conn.close()
    log = tmp_path / "a.log"
    log.write_text("model=gemma\nTool kanban_complete returned error (0.00s)\n")
    r = agent.analyze([log], tmp_path)
    ice = r["iceberg"]
    assert ice["truth_source"] == "run" and ice["items"] == 4 and ice["failed"] == 2
    assert {m["model"]: (m["items"], m["failed"], m["visible"]) for m in ice["by_model"]} == \
        {"gemma": (2, 1, 1), "qwen": (2, 1, 0)}


def test_agent_truth_errors_are_one_line(tmp_path):
    from brainbench.logs.common import LogInputError

    with pytest.raises(LogInputError, match="not a brainbench run directory"):
        agent.load_truth(tmp_path)
    bad = tmp_path / "x.csv"
    bad.write_text("justonecolumn\n")
    with pytest.raises(LogInputError, match="card,state"):
        agent.load_truth(bad)


def test_llama_server_real_log_from_the_embedded_binary():
    """Captured from the embedded llama-server (--log-timestamps --log-prefix, 2 slots): one request alone,
    two at once, one alone."""
    r = llama.analyze([DATA / "llama_server_real.log"])
    assert r["requests"] == 4 and r["parse"]["unpaired_timing_lines"] == 0
    b = by_running(r)
    assert b[1]["samples"] == 2 and b[2]["samples"] == 2
    assert sum(x["gen_tokens"] for x in r["buckets"]) == 24 + 19 + 19 + 19
    assert r["requests_per_min"] is not None
