"""`brainbench watch` against an in-process Prometheus endpoint (real HTTP on 127.0.0.1), the text-format
parser, and the command line of the log miners."""

from __future__ import annotations

import json
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from brainbench.logs import prom, watch
from brainbench.logs.cli import logs_app, watch_cmd
from brainbench.logs.common import LogInputError

DATA = Path(__file__).parent / "data" / "logs"


class FakeServer:
    """Serves /metrics like vLLM (or a llama-server started without --metrics: 501). Each scrape advances
    the counters by a fixed step so the windows' rates are known."""

    def __init__(self, kind: str = "vllm"):
        self.kind = kind
        self.n = 0
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if kind == "drop_reused" else "HTTP/1.0"

            def do_GET(self):  # noqa: N802
                self.served = getattr(self, "served", 0) + 1
                if outer.kind == "drop_reused" and self.served > 1:  # keep-alive advertised, reuse dropped
                    self.close_connection = True
                    return
                if outer.kind == "nometrics":
                    self.send_response(501)
                    self.end_headers()
                    self.wfile.write(b'{"error":{"code":501,"message":"This server does not support metrics endpoint."}}')
                    return
                body = outer.body().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/metrics"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def body(self) -> str:
        k = self.n
        self.n += 1
        if self.kind == "llama":
            # tokens_predicted only moves when a request ends (here: never); slot decodes move live
            return (f"# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.\n"
                    f"# TYPE llamacpp:prompt_tokens_total counter\nllamacpp:prompt_tokens_total {k * 100}\n"
                    f"llamacpp:tokens_predicted_total 0\nllamacpp:n_decode_total {k * 20}\n"
                    f"llamacpp:n_busy_slots_per_decode {2 if k else 0}\nllamacpp:requests_processing 2\n"
                    f"llamacpp:kv_cache_usage_ratio 0.25\n")
        running = 2 if k % 2 else 3
        return "\n".join([
            "# HELP vllm:num_requests_running Number of requests in model execution batches.",
            "# TYPE vllm:num_requests_running gauge",
            f'vllm:num_requests_running{{engine="0",model_name="m"}} {running}.0',
            f'vllm:num_requests_waiting{{engine="0",model_name="m"}} 0.0',
            f'vllm:kv_cache_usage_perc{{engine="0",model_name="m"}} 0.5',
            "# TYPE vllm:prompt_tokens_total counter",
            f'vllm:prompt_tokens_total{{engine="0",model_name="m"}} {k * 1000}.0',
            f'vllm:generation_tokens_total{{engine="0",model_name="m"}} {k * 50}.0',
            f'vllm:request_success_total{{engine="0",finished_reason="stop",model_name="m"}} {k}.0',
            f'vllm:request_success_total{{engine="0",finished_reason="length",model_name="m"}} {k}.0',
            'vllm:time_to_first_token_seconds_bucket{engine="0",le="0.1",model_name="m"} 3.0',
            "python_gc_objects_collected_total{generation=\"0\"} 123.0",
        ]) + "\n"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_prometheus_text_parser():
    text = ('# HELP x y\n# TYPE a counter\na_total{l="v\\"q",m="2"} 3.5 1700000000000\nb 7\nc{} NaN\n'
            'bad line here\nd{x="1"} +Inf\n')
    got = list(prom.parse(text))
    assert got[0] == ("a_total", {"l": 'v"q', "m": "2"}, 3.5)
    assert ("b", {}, 7.0) in got and all(n != "c" for n, _, _ in got)
    assert prom.wanted("vllm:generation_tokens_total") and not prom.wanted("python_gc_objects_collected_total")


def test_watch_records_and_builds_concurrency_tables(tmp_path):
    with FakeServer() as srv:
        sess = watch.record(srv.url, tmp_path, interval=0.05, duration=0.3, label="250W", watts=1000)
    conn = sqlite3.connect(tmp_path / "brainbench.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    n_scrapes = conn.execute("SELECT COUNT(*) FROM metrics_scrapes WHERE session=? AND ok=1", (sess,)).fetchone()[0]
    names = {r[0] for r in conn.execute("SELECT DISTINCT name FROM metrics_samples")}
    conn.close()
    assert n_scrapes >= 4
    assert "vllm:generation_tokens_total" in names and "python_gc_objects_collected_total" not in names
    r = watch.report(tmp_path, sess)
    assert r["parse"]["windows"] == n_scrapes - 1
    rows = {b["running"]: b for b in r["buckets"]}
    assert set(rows) == {2, 3}
    for b in rows.values():
        assert b["label"] == "250W" and b["watts"] == 1000
        # 50 generated tokens and 2 completions (summed over finished reasons) per scrape interval
        assert b["completions_per_min"] and b["gen_tps_mean"] == pytest.approx(
            b["completions_per_min"] / 2 * 50 / 60, rel=1e-4)
        assert b["prefill_tps_active"] == pytest.approx(b["gen_tps_mean"] * 20, rel=1e-4)
        assert b["kv_cache_usage_mean"] == 50.0
        assert b["per_request_tps"] == pytest.approx(b["gen_tps_mean"] / b["running"], abs=0.01)


def test_watch_llama_metrics_have_no_completions(tmp_path):
    with FakeServer("llama") as srv:
        watch.record(srv.url, tmp_path, interval=0.05, duration=0.25)
    r = watch.report(tmp_path)
    (b,) = r["buckets"]
    assert b["running"] == 2 and b["completions_per_min"] is None and b["kv_cache_usage_mean"] == 25.0
    # 40 slot decodes and 100 prompt tokens per scrape interval
    assert b["gen_tps_mean"] > 0 and b["prefill_tps_active"] == pytest.approx(b["gen_tps_mean"] * 2.5, rel=1e-3)


def test_a_kept_alive_connection_the_server_dropped_is_scraped_again_not_a_gap():
    srv = FakeServer("drop_reused")
    srv.thread.start()
    scraper = watch.Scraper(srv.url)
    try:
        assert [len(scraper.scrape()) > 0 for _ in range(3)] == [True, True, True]
    finally:
        scraper.close()
        srv.httpd.shutdown()


def test_watch_llama_server_without_metrics_flag_is_one_clear_line(tmp_path):
    with FakeServer("nometrics") as srv:
        with pytest.raises(LogInputError, match="--metrics"):
            watch.record(srv.url, tmp_path, interval=0.05, duration=0.1)


def test_watch_refused_connection(tmp_path):
    with pytest.raises(LogInputError, match="cannot scrape"):
        watch.record("http://127.0.0.1:9/metrics", tmp_path, interval=0.05, duration=0.1, timeout=1)


# -- command line -------------------------------------------------------------------------------------------

app = typer.Typer()
app.add_typer(logs_app, name="logs")
app.command("watch")(watch_cmd)
runner = CliRunner()


def test_cli_vllm_json_has_the_documented_keys():
    res = runner.invoke(app, ["logs", "vllm", str(DATA / "vllm_v1.log"), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    keys = {"running", "samples", "gen_tps_mean", "gen_tps_median", "gen_tps_p95", "gen_tps_peak",
            "per_request_tps", "prefill_tps_sustained", "prefill_tps_active", "completions_per_min"}
    assert data["buckets"] and all(keys <= set(b) for b in data["buckets"])
    assert all("label" not in b for b in data["buckets"])


def test_cli_vllm_tables_and_windows_label(tmp_path):
    w = tmp_path / "w.csv"
    w.write_text("08-24 16:00:00,08-24 17:00:00,cfgA,800\n")
    res = runner.invoke(app, ["logs", "vllm", str(DATA / "vllm_v1.log"), "--windows", str(w)])
    assert res.exit_code == 0, res.output
    assert "Running: N reqs" in res.stdout and "cfgA" in res.stdout and "t/kW" in res.stdout
    res = runner.invoke(app, ["logs", "vllm", str(DATA / "vllm_v1.log"), "--windows", str(w), "--json"])
    assert all(b["label"] == "cfgA" for b in json.loads(res.stdout)["buckets"])


@pytest.mark.parametrize("args,needle", [
    (["logs", "vllm", "/no/such/file.log"], "no such file"),
    (["logs", "llama", str(DATA)], "is a directory"),
    (["logs", "vllm", str(DATA / "vllm_v1.log"), "--windows", "/no/w.csv"], "no such windows file"),
    (["logs", "vllm", str(DATA / "vllm_v1.log"), "--engine", "x"], "--engine"),
    (["logs", "agent", str(DATA / "agent.log"), "--truth", "/no/truth.csv"], "no such file"),
    (["watch"], "--metrics-url"),
    (["watch", "--report", "--run-dir", "/no/run/dir"], "nothing recorded"),
])
def test_cli_bad_input_is_one_line_exit_2(args, needle):
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    assert needle in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_cli_other_commands_run():
    for args in (["logs", "llama", str(DATA / "llama_server.log")], ["logs", "ollama", str(DATA / "ollama.log")],
                 ["logs", "agent", str(DATA / "agent.log"), "--truth", str(DATA / "cards.csv")]):
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["logs", "agent", str(DATA / "agent.log"), "--truth", str(DATA / "cards.csv"), "--json"])
    assert json.loads(res.stdout)["iceberg"]["failed"] == 5


def test_cli_watch_records_then_reports(tmp_path):
    with FakeServer() as srv:
        res = runner.invoke(app, ["watch", "--metrics-url", srv.url, "--run-dir", str(tmp_path), "--interval", "0.05",
                                  "--duration", "0.3", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["buckets"]
    res = runner.invoke(app, ["watch", "--report", "--run-dir", str(tmp_path)])
    assert res.exit_code == 0 and "scraped /metrics windows" in res.stdout


def test_cli_summary_running_range():
    res = runner.invoke(app, ["logs", "vllm", str(DATA / "vllm_v1.log"), "--summary-running", "3", "--json"])
    assert res.exit_code == 0, res.output
    (s,) = json.loads(res.stdout)["summary"]
    assert s["running_range"] == [3, 3] and s["samples"] == 2 and s["gen_tps_mean"] == 79.0
    res = runner.invoke(app, ["logs", "vllm", str(DATA / "vllm_v1.log"), "--summary-running", "1-3"])
    assert "windows with 1 to 3 running requests" in res.stdout
    res = runner.invoke(app, ["logs", "vllm", str(DATA / "vllm_v1.log"), "--summary-running", "x"])
    assert res.exit_code == 2 and "--summary-running" in res.output
