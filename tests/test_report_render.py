"""HTML and Markdown reports rendered from stored fixture runs (real runner, store and scorer on the fake server)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from brainbench.cli import app
from brainbench.report.data import build_report, judge, mean_ci
from brainbench.report.outputs.html import render_html
from brainbench.report.outputs.md import render_markdown
from brainbench.report.render import write_report
from brainbench.report.tables import summary_table
from brainbench.store import RunStore
from report_fixtures import SloppyBrain, good_brain, make_run

from brainbench.testing import Reply


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("report-runs")
    good = make_run(root / "good", "brain-medium", good_brain, speed_scale=30.0, watts=200.0)
    sloppy = make_run(root / "sloppy", "brain-small", SloppyBrain(), speed_scale=90.0)
    # a bare run: no speed leg, no host record, an endpoint model of unknown size, one trial
    bare = make_run(root / "bare", "mystery-7b", lambda m: Reply.text("I would rather not."), trials=1)
    with RunStore(bare) as s:
        s.set_meta("run", {"packs": ["smoke"], "backend": {"endpoint": "http://127.0.0.1:9/v1", "model": "mystery-7b"},
                           "trials": 1, "concurrency": 1, "retries": 1})
        s.set_meta("server", {"endpoint": "http://127.0.0.1:9/v1", "api": "openai"})
        s.conn.execute("DELETE FROM meta WHERE key='host'")
    return {"good": good, "sloppy": sloppy, "bare": bare}


@pytest.fixture(scope="session")
def pair(runs):
    rep = build_report([runs["good"], runs["sloppy"]])
    return rep, render_html(rep), render_markdown(rep)


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.srcs: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "id" in a:
            self.ids.add(a["id"])
        if "href" in a:
            self.hrefs.append(a["href"])
        if "src" in a:
            self.srcs.append(a["src"])


def test_html_is_self_contained_and_small(pair):
    _, html, _ = pair
    p = _Links()
    p.feed(html)
    assert not p.srcs, "no external scripts or images"
    assert "link" not in p.tags
    assert all(h.startswith("#") for h in p.hrefs), [h for h in p.hrefs if not h.startswith("#")]
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", html), "no network address in the report"
    assert "<style>" in html and "<script>" in html and "<svg" in html
    assert len(html.encode()) < 400_000


def test_every_number_links_to_evidence(pair):
    rep, html, _ = pair
    p = _Links()
    p.feed(html)
    failed = [(e, f) for e in rep.entries for f in e.failed]
    assert failed, "the sloppy brain must fail something"
    for e, f in failed:
        anchor = f"t-{e.id}-{f['key']}"
        assert f"#{anchor}" in p.hrefs and anchor in p.ids
    for href in p.hrefs:
        assert href[1:] in p.ids or href == "#", f"dangling link {href}"


def test_overview_scatter_and_packs(pair):
    rep, html, md = pair
    good, sloppy = rep.entries
    assert good.summary["overall"]["clean"]["rate"] == 1.0
    assert sloppy.summary["overall"]["clean"]["rate"] < 1.0
    # the scatter: one point per brain, speed on x from the speed leg
    assert good.decode["value"] == 30.0 and sloppy.decode["value"] == 90.0
    assert html.count('<g class="pt">') == 2
    assert 'aria-label="clean pass rate against decode tok/s per request"' in html
    # per-pack rates with their intervals, in both formats
    assert "100% [76–100]" in md and "100% [76–100]" in html
    assert "| smoke | brain-small | 12 |" in md
    assert "1.00 (k=3)" in md


def test_errors_per_100_calls_and_iceberg(pair):
    rep, html, md = pair
    sloppy = rep.entries[1]
    o = sloppy.summary["overall"]
    assert o["failures_by_class"], o
    for cls, n in o["failures_by_class"].items():
        per = o["errors_per_100_calls"][cls]
        assert f"| `{cls}` | 0 | {per:.1f} ({n}) |" in md
        assert f"<code>{cls}</code>" in html
    ib = sloppy.iceberg
    assert ib["error_line"] >= 3 and ib["silent"] > ib["error_line"], ib  # the hallucinated tool shows; the guesses don't
    assert ib["failed_without_error_line"] >= 3
    assert "waterline" in html and f"{ib['silent']} silent failures" in html


def test_transcript_marks_failing_turn_and_class(pair):
    rep, html, _ = pair
    sloppy = rep.entries[1]
    weather = next(f for f in sloppy.failed if f["scenario"] == "weather-single-call")
    t = weather["transcript"]
    first, last = t["turns"][0], t["turns"][-1]
    assert any("tool" in m or m == "unknown_tool" for m in first["marks"]), first["marks"]
    assert first["calls"][0]["name"] == "get_wether" and first["calls"][0]["ok"] is False
    assert last["marks"], "the wrong final answer is marked on the last turn"
    art = html[html.index(f'id="t-{sloppy.id}-{weather["key"]}"'):]
    art = art[: art.index("</article>")]
    assert 'class="turn failing"' in art and "get_wether" in art and 'class="cls mark"' in art
    assert "What is the temperature in Paris" in art  # the task as the model saw it


def test_model_text_is_escaped(pair):
    _, html, _ = pair
    assert "It is warm in Paris &lt;b&gt;now&lt;/b&gt;." in html
    assert "<b>now</b>" not in html


def test_speed_energy_throughput_and_per_gb(pair):
    rep, html, md = pair
    good, sloppy = rep.entries
    assert len(good.curves[0]["points"]) == 4
    for title in ("aggregate decode tok/s", "per-request decode tok/s", "completions per minute", "TTFT p99 (ms)"):
        assert f'aria-label="{title} against concurrency"' in html
    # energy: only the good brain has power readings; J/token = W / aggregate tok/s
    e1 = good.energy[0]
    assert e1["joules_per_token"] == pytest.approx(210 / 30.0)
    assert "| brain-medium | 1 | 210 | 30.0 | 7.000 |" in md and not sloppy.energy
    # useful throughput at the run's own concurrency (2): completions/h × clean rate, inputs shown
    u = sloppy.useful["chosen"]
    assert u["concurrency"] == 2
    assert u["clean_tasks_per_hour"] == pytest.approx(u["completions_per_hour"] * sloppy.summary["overall"]["clean"]["rate"])
    assert f"**{u['clean_tasks_per_hour']:,.0f}**" in md
    # per GB from the embedded brains' GGUF sizes
    assert good.size_source == "GGUF file of embedded brain-medium"
    assert good.efficiency["tps_per_gb"] == pytest.approx(30.0 / (good.size_bytes / 1e9))
    assert "tok/s per GB" in html


def test_provenance(pair):
    _, html, md = pair
    assert "Test CPU 9000" in html and "8 cores" in html and "Fake GPU 24G" in html
    assert "llama-server <code>-c 8192 --parallel 2</code>" in html
    assert "brainbench 0.1.0" in md and "embedded `brain-small`" in md


def test_missing_parts_degrade_to_not_measured(runs, tmp_path):
    rep = write_report([runs["bare"]], html=tmp_path / "r.html", md=tmp_path / "r.md")
    e = rep.entries[0]
    assert e.size_bytes is None and e.efficiency["tps_per_gb"] is None and not e.curves
    html, md = (tmp_path / "r.html").read_text(), (tmp_path / "r.md").read_text()
    assert "not measured" in html.lower() and "unknown" in html and "not recorded" in html
    assert "Under load: not measured" in md and "Energy per token: not measured" in md
    assert "host not recorded" in md
    # sizes given on the command line fill the gap
    rep = build_report([runs["bare"]], model_sizes={"mystery-7b": 4.5})
    assert rep.entries[0].size_bytes == 4_500_000_000


def test_baseline_deltas_judged_against_noise(runs, tmp_path):
    # sloppy vs good: 12 attempts each; the intervals overlap, so the drop is "within noise", never a loss
    rep = build_report([runs["sloppy"]], runs["good"])
    d = rep.entries[0].delta["packs"]["ALL"]["clean"]
    assert d["delta"] < 0
    if d["cur_ci95"][1] >= d["base_ci95"][0]:
        assert d["verdict"] == "within noise"
    md = render_markdown(rep)
    assert "Δ clean vs baseline" in md and d["verdict"] in md
    # bare (0% clean) vs good (100%, 12 attempts): the intervals are apart, a real loss
    rep = build_report([runs["bare"]], runs["good"])
    assert rep.entries[0].delta["packs"]["ALL"]["clean"]["verdict"] == "worse"
    assert "pack changed" not in render_html(rep)


def test_judge_and_mean_ci():
    assert judge(0.6, [0.4, 0.8], 0.5, [0.3, 0.7]) == "within noise"
    assert judge(0.9, [0.8, 1.0], 0.3, [0.1, 0.5]) == "better"
    assert judge(0.3, [0.1, 0.5], 0.9, [0.8, 1.0]) == "worse"
    assert judge(10.0, [9, 11], 20.0, [19, 21], higher_is_better=False) == "better"
    assert judge(None, None, 0.5, [0.3, 0.7]) == "n/a"
    m = mean_ci([10.0, 12.0, 11.0, 9.0])
    assert m["value"] == 10.5 and m["ci95"][0] < 10.5 < m["ci95"][1] and m["n"] == 4
    assert mean_ci([]) is None


def test_report_and_compare_commands(runs, tmp_path):
    r = CliRunner().invoke(app, ["report", str(runs["good"]), str(runs["sloppy"]), "--baseline", str(runs["good"]),
                                 "--html", str(tmp_path / "out.html"), "--md", str(tmp_path / "REPORT.md")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out.html").stat().st_size > 10_000 and "## Per pack" in (tmp_path / "REPORT.md").read_text()
    r = CliRunner().invoke(app, ["compare", str(runs["good"]), str(runs["sloppy"])], env={"COLUMNS": "160"})
    assert r.exit_code == 0, r.output
    assert "within noise" in r.output and "decode tok/s" in r.output and "+200%" in r.output
    r = CliRunner().invoke(app, ["report", str(runs["good"]), "--model-size", "nonsense", "--md", str(tmp_path / "x.md")])
    assert r.exit_code != 0


def test_summary_table_still_renders(runs):
    from brainbench.scoring import attempt_rows, summary

    with RunStore(runs["sloppy"]) as s:
        t = summary_table(summary(attempt_rows(s)))
    assert t.row_count == 2


def test_server_log_curves(runs, tmp_path):
    import json

    log = tmp_path / "vllm.json"
    log.write_text(json.dumps({"buckets": [
        {"running": 0, "gen_tps_mean": 0.0, "completions_per_min": 0.0},
        {"running": 1, "gen_tps_mean": 40.0, "per_request_tps": 40.0, "completions_per_min": 6.0, "watts": 300,
         "gen_tps_per_kw": 133.3},
        {"running": 4, "gen_tps_mean": 120.0, "per_request_tps": 30.0, "completions_per_min": 18.0, "watts": 300,
         "gen_tps_per_kw": 400.0},
    ]}))
    # attached to a brain: its curves, energy and useful throughput
    rep = build_report([runs["bare"]], log_files=[("mystery-7b", log)])
    e = rep.entries[0]
    assert [p["concurrency"] for p in e.curves[0]["points"]] == [1, 4]
    assert e.energy[0]["joules_per_token"] == pytest.approx(300 / 40.0)
    assert e.useful["rows"] and e.useful["chosen"]["concurrency"] == 1
    assert "| mystery-7b | vllm | 4 | 120.0 | 30.0 | 18.0 |" in render_markdown(rep)
    # loose: its own dashed series next to two brains
    rep = build_report([runs["good"], runs["sloppy"]], log_files=[(None, log)])
    assert rep.loose_logs and "(log) vllm" in render_markdown(rep)
    assert "not tied to a brain" in render_html(rep)


def _rec(turns):
    from brainbench.core.types import ChatResult, Timing, ToolCall
    from brainbench.core.records import AttemptRecord, Turn

    out = []
    for i, (content, calls) in enumerate(turns):
        r = ChatResult(content=content, timing=Timing(sent=0.0),
                       tool_calls=[ToolCall(id=f"c{i}{j}", name=n, arguments_raw="{}") for j, n in enumerate(calls)])
        out.append(Turn(index=i, dispatch=0, messages_before=1 + 2 * i, result=r))
    return AttemptRecord(key="k", scenario_id="s", pack="p", scenario_hash="h", model="m", config_hash="c", trial=0,
                         status="completed", turns=out)


def test_failing_turn_inference():
    from brainbench.report.data import failing_turns

    rec = _rec([("", ["search_web"]), ("The meaning of life is 42.", [])])
    assert failing_turns(rec, ["unneeded_call"], {}) == {0: ["unneeded_call"]}
    assert failing_turns(rec, ["omitted_closeout"], {}) == {1: ["omitted_closeout"]}
    assert failing_turns(rec, ["wrong_result"], {"failing_turn": 0}) == {0: ["wrong_result"]}
    rec = _rec([("", []), ("ok", [])])
    assert failing_turns(rec, ["empty_response"], {}) == {0: ["empty_response"]}


def test_soak_results_are_shown(runs, tmp_path):
    import shutil

    d = tmp_path / "soaked"
    shutil.copytree(runs["bare"], d)
    with RunStore(d) as s:
        s.put_result("soak", "soak-10x5", "mystery-7b", {"sessions_run": 10, "sessions_complete": 9, "turns": 50,
                                                         "turns_ok": 48, "silent_empty": 2, "crashes": {"total": 0},
                                                         "decode_tps_median": 41.5, "tps_retention": 0.93,
                                                         "passed": False, "reasons": ["2 silent-empty replies"]})
    rep = build_report([d])
    assert "| mystery-7b | soak-10x5 | 9/10 | 48/50 | 2 | 0 | 41.5 | failed |" in render_markdown(rep)
    assert "2 silent-empty replies" in render_html(rep)


def test_pack_filter(runs):
    from brainbench.report.data import ReportError

    rep = build_report([runs["good"]], packs=["smoke"])
    assert rep.packs == ["smoke"] and rep.entries[0].summary["overall"]["attempts"] == 12
    with pytest.raises(ReportError, match="no scored attempts in pack"):
        build_report([runs["good"]], packs=["kanban"])
