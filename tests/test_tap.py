"""brainbench tap: the real openai SDK as the agent, through the tap, to the in-library fake server.

Every failure class in both stream modes, stitching, protocol rules, storage in the pack run store (and the
report reading it), infrastructure kept apart, secrets kept out, byte-identical relaying, /metrics.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from openai import APIError, OpenAI

from brainbench.store.db import RunStore
from brainbench.tap.rescore import rejudge
from brainbench.tap.rules import RulesError, load_all, parse_rules
from brainbench.testing.fakeserver import ByConversation, FakeServer, Reply, ScriptedBrain

sys.path.insert(0, str(Path(__file__).parent))
from tap_helpers import KANBAN_TOOLS, WEATHER, agent_loop, ask, raw_upstream, running_tap, sync  # noqa: E402

STREAMS = [pytest.param(False, id="plain"), pytest.param(True, id="stream")]
USER = [{"role": "user", "content": "What is the weather in Paris?"}]
CARD = [{"role": "system", "content": "You are a kanban worker."},
        {"role": "user", "content": "Work on card t_42: write notes.md, then close the card."}]


def stored(run_dir: Path) -> list[tuple]:
    """(record, verdict) per stored conversation, oldest first."""
    with RunStore(run_dir) as st:
        verdicts = st.verdicts()
        return sorted(((r, verdicts.get(r.key)) for r in st.attempts()), key=lambda x: x[0].started)


def one_conversation(replies: list[Reply], tmp_path: Path, stream: bool, tools=(WEATHER,), messages=USER,
                     rules=None, answer=None, **kw):
    """Run the scripted agent once through the tap; returns (record, verdict, tap metrics text)."""
    with FakeServer(ScriptedBrain(replies)) as srv, running_tap(srv.base_url, tmp_path / "run", rules, **kw) as (tap, url):
        client = OpenAI(base_url=url, api_key="sk-test-key-123456", max_retries=0)
        agent_loop(client, messages, list(tools) or None, stream, **({"tool_answer": answer} if answer else {}))
        sync(tap)
        metrics = tap.metrics.render()
    rows = stored(tmp_path / "run")
    assert len(rows) == 1, [r.scenario_id for r, _ in rows]
    rec, v = rows[0]
    if rec.turns:  # judged again from the store alone (`brainbench tap rescore`): the verdict the tap gave live
        again = rejudge(rec.model_copy(deep=True), load_all(rules or []))
        assert (again.passed, again.clean, sorted(again.failures)) == (v["passed"], v["clean"], sorted(v["failures"]))
    return rec, v, metrics


# -- failure classes, both stream modes ---------------------------------------------------------------


@pytest.mark.parametrize("stream", STREAMS)
def test_clean_conversation_passes_and_is_stored_as_a_pack_attempt(tmp_path, stream):
    rec, v, _ = one_conversation([Reply.call("get_weather", {"city": "paris"}), Reply.text("18 C and rain.")],
                                 tmp_path, stream)
    assert rec.pack == "tap" and rec.model == "fake-model" and rec.status == "completed"
    assert rec.scenario_id.startswith("what-is-the-weather-in")
    assert len(rec.turns) == 2 and rec.turns[0].result.tool_calls[0].name == "get_weather"
    assert rec.turns[0].tool_results[0].output == '{"ok": true}'  # the agent's tool answer, from the next request
    assert v["passed"] and v["clean"] and v["failures"] == []


@pytest.mark.parametrize("stream", STREAMS)
def test_tool_call_written_as_text_keeps_its_raw_text(tmp_path, stream):
    raw = '{"name": "get_weather", "arguments": {"city": "paris"}}'
    rec, v, metrics = one_conversation([Reply.text(raw)], tmp_path, stream)
    call = rec.turns[0].result.tool_calls[0]
    assert call.in_text and call.raw_text == raw and call.name == "get_weather"
    assert v["failures"] == ["tool_call_in_text"]
    assert 'brainbench_tap_tool_calls_total{channel="text"} 1' in metrics


@pytest.mark.parametrize("stream", STREAMS)
def test_unknown_tool(tmp_path, stream):
    rec, v, _ = one_conversation([Reply.call("get_forecast", {"city": "paris"}), Reply.text("done")], tmp_path, stream)
    assert v["failures"] == ["unknown_tool"]
    assert rec.turns[0].tool_results[0].error_kind == "unknown_tool"


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("args", [{"city": 5}, {}, "{not json"], ids=["wrong-type", "missing", "not-json"])
def test_malformed_arguments_against_the_requests_own_schema(tmp_path, stream, args):
    rec, v, _ = one_conversation([Reply.call("get_weather", args), Reply.text("done")], tmp_path, stream)
    assert v["failures"] == ["malformed_args"], rec.turns[0].tool_results
    assert not v["clean"] and v["passed"]  # an error line, not a silent failure


@pytest.mark.parametrize("stream", STREAMS)
def test_empty_reply(tmp_path, stream):
    _, v, _ = one_conversation([Reply.text("")], tmp_path, stream)
    assert v["failures"] == ["empty_response"]


@pytest.mark.parametrize("stream", STREAMS)
def test_loops_and_repeated_failures_across_turns(tmp_path, stream):
    same = Reply.call("get_weather", {"city": "paris"})
    bad = Reply.call("get_weather", {"town": "paris"})
    _, v, _ = one_conversation([same, same, same, bad, bad, Reply.text("ok")], tmp_path, stream)
    assert sorted(v["failures"]) == ["loop", "malformed_args", "malformed_args", "repeated_failure"]


@pytest.mark.parametrize("stream", STREAMS)
def test_degenerate_text_is_a_loop(tmp_path, stream):
    _, v, _ = one_conversation([Reply.text("\n".join(["I am thinking about it now."] * 6))], tmp_path, stream)
    assert v["failures"] == ["loop"]


@pytest.mark.parametrize("stream", STREAMS)
def test_a_tool_that_answers_an_error_is_a_tool_error_and_repeats_count(tmp_path, stream):
    call = Reply.call("get_weather", {"city": "atlantis"})
    _, v, _ = one_conversation([call, call, Reply.text("no idea")], tmp_path, stream,
                               answer=lambda n, a: '{"error": "no such city"}')
    assert sorted(v["failures"]) == ["repeated_failure", "tool_error", "tool_error"]


# -- infrastructure: stored apart, never a model failure ---------------------------------------------------


@pytest.mark.parametrize("stream", STREAMS)
def test_server_error_then_success_is_infrastructure_not_a_failure(tmp_path, stream):
    replies = [Reply.http_error(500, "CUDA error: out of memory"), Reply.text("18 C")]
    with FakeServer(ScriptedBrain(replies)) as srv, running_tap(srv.base_url, tmp_path / "run") as (tap, url):
        client = OpenAI(base_url=url, api_key="k", max_retries=0)
        with pytest.raises(APIError):
            ask(client, USER, [WEATHER], stream)
        ask(client, USER, [WEATHER], stream)  # the agent retries the same request: same conversation
        sync(tap)
        metrics = tap.metrics.render()
    [(rec, v)] = stored(tmp_path / "run")
    assert v["failures"] == [] and v["passed"]
    assert [e.kind for e in rec.turns[0].result.events] == ["http_5xx"]
    with RunStore(tmp_path / "run") as st:
        assert [(e["kind"], e["attempt_key"]) for e in st.infra_events()] == [("http_5xx", rec.key)]
    assert 'brainbench_tap_infra_events_total{kind="http_5xx"} 1' in metrics
    assert "brainbench_tap_failures_total{" not in metrics


def test_infra_events_count_with_their_conversation_in_export_report_and_drafts(tmp_path):
    """Two server errors, then a reply: the attempt row counts 2 infra events (export, report's iceberg), its
    draft scenario names them, and the events table has each once though the attempt was rewritten per turn."""
    from brainbench.scoring import attempt_rows
    from brainbench.tap.scenarios import export_scenarios

    replies = [Reply.http_error(500, "CUDA error"), Reply.http_error(502, "bad gateway"),
               Reply.call("get_weather", {"city": "paris"}), Reply.text("18 C")]
    with FakeServer(ScriptedBrain(replies)) as srv, running_tap(srv.base_url, tmp_path / "run") as (tap, url):
        client = OpenAI(base_url=url, api_key="k", max_retries=0)
        for _ in range(2):
            with pytest.raises(APIError):
                ask(client, USER, [WEATHER], True)
        agent_loop(client, USER, [WEATHER], True)
        sync(tap)
    with RunStore(tmp_path / "run") as st:
        [row] = attempt_rows(st)
        assert [e["kind"] for e in st.infra_events()] == ["http_5xx", "http_5xx"]
    assert row["infra_events"] == 2 and row["passed"] and row["turns"] == 2
    [path] = export_scenarios(tmp_path / "run", tmp_path / "drafts")
    import yaml

    assert yaml.safe_load(path.read_text())["meta"]["infra_events"] == ["http_5xx", "http_5xx"]


def test_reset_mid_stream_reaches_the_agent_as_a_reset_and_is_infrastructure(tmp_path):
    replies = [Reply(content="one two three four five", fault="reset", fault_after=2)]
    with FakeServer(ScriptedBrain(replies)) as srv, running_tap(srv.base_url, tmp_path / "run") as (tap, url):
        client = OpenAI(base_url=url, api_key="k", max_retries=0)
        with pytest.raises(Exception):
            ask(client, USER, [WEATHER], True)
        sync(tap)
    [(rec, v)] = stored(tmp_path / "run")
    assert rec.status == "infra_error" and v is None and rec.turns == []
    with RunStore(tmp_path / "run") as st:
        assert [e["kind"] for e in st.infra_events()] == ["stream_reset"]


def test_unreachable_upstream_is_a_502_with_one_line_and_an_infra_event(tmp_path):
    with running_tap("http://127.0.0.1:9", tmp_path / "run") as (tap, url):
        r = httpx.post(url + "/chat/completions", json={"model": "m", "messages": USER})
        sync(tap)
    assert r.status_code == 502 and "cannot reach the upstream" in r.json()["error"]["message"]
    with RunStore(tmp_path / "run") as st:
        assert [e["kind"] for e in st.infra_events()] == ["connect_error"]


def test_server_rejected_tool_call_is_a_model_failure(tmp_path):
    replies = [Reply.http_error(500, "Failed to parse tool call arguments as JSON"), Reply.text("sorry")]
    with FakeServer(ScriptedBrain(replies)) as srv, running_tap(srv.base_url, tmp_path / "run") as (tap, url):
        client = OpenAI(base_url=url, api_key="k", max_retries=0)
        with pytest.raises(APIError):
            ask(client, USER, [WEATHER], False)
        sync(tap)
    [(rec, v)] = stored(tmp_path / "run")
    assert v["failures"] == ["malformed_args"] and rec.turns[0].result.tool_calls[0].name == "(unparsed call)"


# -- protocol rules -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", STREAMS)
def test_kanban_worker_that_walks_away_is_an_omitted_closeout(tmp_path, stream):
    replies = [Reply.call("kanban_show", {"task_id": "t_42"}),
               Reply.call("write_file", {"path": "notes.md", "content": "x"}), Reply.text("All done!")]
    _, v, _ = one_conversation(replies, tmp_path, stream, tools=KANBAN_TOOLS, messages=CARD)
    assert v["failures"] == ["omitted_closeout"] and not v["passed"]
    assert v["details"]["obligation"] and "kanban-closeout" in v["details"]["reasons"][0]


@pytest.mark.parametrize("stream", STREAMS)
def test_kanban_closed_after_work_passes(tmp_path, stream):
    replies = [Reply.call("write_file", {"path": "notes.md", "content": "x"}),
               Reply.call("kanban_complete", {"task_id": "t_42", "summary": "wrote notes"}), Reply.text("Done.")]
    _, v, _ = one_conversation(replies, tmp_path, stream, tools=KANBAN_TOOLS, messages=CARD)
    assert v["passed"] and v["clean"] and v["failures"] == []
    assert v["details"]["rules"]["kanban-closeout"]["closed_by"] == "kanban_complete"


def test_close_before_any_work_is_premature_and_calls_after_it_count(tmp_path):
    replies = [Reply.call("kanban_show", {"task_id": "t_42"}),
               Reply.call("kanban_complete", {"task_id": "t_42", "summary": "done"}),
               Reply.call("write_file", {"path": "notes.md", "content": "x"}), Reply.text("ok")]
    _, v, _ = one_conversation(replies, tmp_path, False, tools=KANBAN_TOOLS, messages=CARD)
    assert sorted(v["failures"]) == ["call_after_closeout", "premature_closeout"]


def test_a_failed_closeout_does_not_close(tmp_path):
    replies = [Reply.call("write_file", {"path": "n.md", "content": "x"}), Reply.call("kanban_complete", {"task_id": "t_42", "summary": ""}),
               Reply.text("I marked the card as done.")]
    answer = lambda n, a: '{"error": "provide at least one of: summary (preferred), result"}' if n == "kanban_complete" else "ok"
    _, v, _ = one_conversation(replies, tmp_path, False, tools=KANBAN_TOOLS, messages=CARD, answer=answer)
    assert sorted(v["failures"]) == ["narrated_action", "omitted_closeout", "tool_error"]


def test_idle_conversation_with_an_open_obligation_is_judged_when_it_goes_idle(tmp_path):
    import time

    with FakeServer(ScriptedBrain([Reply.call("write_file", {"path": "n.md", "content": "x"})])) as srv, \
            running_tap(srv.base_url, tmp_path / "run", idle=0.3) as (tap, url):
        client = OpenAI(base_url=url, api_key="k", max_retries=0)
        ask(client, CARD, KANBAN_TOOLS, True)  # a call, then the agent goes silent
        sync(tap)
        assert stored(tmp_path / "run")[0][1]["failures"] == []  # not yet: the agent may still answer
        time.sleep(1.0)
        sync(tap)
        metrics = tap.metrics.render()
    [(rec, v)] = stored(tmp_path / "run")
    assert v["failures"] == ["omitted_closeout"] and v["details"]["ended"] == "idle"
    assert 'brainbench_tap_failures_total{kind="omitted_closeout"} 1' in metrics


def test_a_nudge_after_a_plain_reply_revises_the_verdict_and_is_not_clean(tmp_path):
    replies = [Reply.call("write_file", {"path": "n.md", "content": "x"}), Reply.text("Done."),
               Reply.call("kanban_complete", {"task_id": "t_42", "summary": "notes"}), Reply.text("Closed.")]
    with FakeServer(ScriptedBrain(replies)) as srv, running_tap(srv.base_url, tmp_path / "run") as (tap, url):
        client = OpenAI(base_url=url, api_key="k", max_retries=0)
        msgs = agent_loop(client, CARD, KANBAN_TOOLS, False)
        sync(tap)
        assert stored(tmp_path / "run")[0][1]["failures"] == ["omitted_closeout"]  # provisional, stored at once
        msgs.append({"role": "user", "content": "A plain-text reply is NOT a terminal state: close the card."})
        agent_loop(client, msgs, KANBAN_TOOLS, False)
        sync(tap)
    [(rec, v)] = stored(tmp_path / "run")
    assert v["passed"] and not v["clean"] and v["failures"] == []
    assert rec.turns[1].nudge.startswith("A plain-text reply")


@pytest.mark.parametrize("cmd,kind", [("uv run scripts/fetch_context.py --topic x | head -5", "disallowed_command.pipe_filter"),
                                      ("ls -la", "disallowed_command.bare_binary"),
                                      ("uv run scripts/db_query.py --sql 'select 1' 2>/dev/null", "disallowed_command.stderr_redirect")])
def test_shell_rule_uses_the_shell_packs_deny_list(tmp_path, cmd, kind):
    bash = {"type": "function", "function": {"name": "bash", "parameters": {
        "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}}
    replies = [Reply.call("bash", {"command": cmd}), Reply.call("bash", {"command": "uv run scripts/fetch_context.py --topic x"}),
               Reply.text("ok")]
    _, v, _ = one_conversation(replies, tmp_path, False, tools=[bash], messages=USER)
    assert v["failures"] == [kind]


def test_generic_rule_must_end_with(tmp_path):
    finish = {"type": "function", "function": {"name": "finish", "parameters": {"type": "object", "properties": {}}}}
    _, v, _ = one_conversation([Reply.text("bye")], tmp_path, False, tools=[finish, WEATHER], rules=["generic"])
    assert v["failures"] == ["omitted_closeout"]


def test_a_recorded_run_is_rescored_from_the_store_under_changed_rules(tmp_path):
    """Re-judged under its recorded rules, a conversation gets the verdict the tap gave live; under a changed
    rules file (`brainbench tap rescore --rules`) the new close-out counts; `brainbench score` keeps the new rules."""
    from brainbench.tap.rescore import rescore

    done_tool = {"type": "function", "function": {"name": "kanban_done", "parameters": {"type": "object", "properties": {}}}}
    replies = [Reply.call("write_file", {"path": "n.md"}), Reply.call("write_file", {"path": "n.md", "content": "x"}),
               Reply.call("kanban_done", {}), Reply.text("Done.")]
    _, live, _ = one_conversation(replies, tmp_path, True, tools=KANBAN_TOOLS + [done_tool], messages=CARD,
                                  answer=lambda n, a: '{"error": "disk full"}' if n == "write_file" else "ok")
    assert sorted(live["failures"]) == ["malformed_args", "omitted_closeout", "tool_error"]
    run = tmp_path / "run"
    with RunStore(run, lock=True) as st:
        assert rescore(st) == 1
    [(_, again)] = stored(run)
    assert again == live  # the same verdict, details (rule states) and all
    (tmp_path / "mine.yaml").write_text("rules:\n  - id: done\n    applies: {tools_include: [kanban_done]}\n"
                                        "    must_end_with: [kanban_done]\n")
    res = _bb("tap", "rescore", str(run), "--rules", str(tmp_path / "mine.yaml"))
    assert res.returncode == 0 and "re-scored 1 conversation" in res.stderr, res.stderr
    [(rec, new)] = stored(run)
    assert sorted(new["failures"]) == ["malformed_args", "tool_error"] and new["passed"]
    assert rec.final_state["rules"]["done"]["closed_by"] == "kanban_done"
    res = _bb("score", str(run), "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["rescored"] == 1, res.stderr
    assert stored(run)[0][1] == new


@pytest.mark.parametrize("text,where", [
    ("rules: [{id: x}]", "rules.0.applies: Field required"),
    ("rules:\n  - id: x\n    applies: {tools_include: [a]}\n    must_end_with: [{tool: a, match: {q: '('}}]",
     "rules.0.must_end_with.0.match"),
    ("rules: [{id: x, applies: {tools_include: []}}]", "rules.0.applies.tools_include"),
    ("rules: [", "not valid YAML"), ("- just a list", "(top)"),
])
def test_a_bad_rules_file_is_one_line_naming_file_and_field(text, where):
    with pytest.raises(RulesError) as e:
        parse_rules(text, "mine.yaml")
    msg = str(e.value)
    assert msg.startswith("mine.yaml: ") and where in msg and "\n" not in msg


def test_shipped_rules_load_and_duplicate_ids_are_refused(tmp_path):
    assert {r.id for r in load_all([])} == {"kanban-closeout", "shell-allowlist", "ralf-handshake"}
    with pytest.raises(RulesError, match="defined twice"):
        load_all(["kanban", "kanban"])
    with pytest.raises(RulesError, match="cannot read"):
        load_all([str(tmp_path / "missing.yaml")])


# -- stitching ------------------------------------------------------------------------------------------------


def test_interleaved_conversations_are_stitched_apart(tmp_path):
    def script(messages):
        n = sum(1 for m in messages if m["role"] == "tool")
        return Reply.call("get_weather", {"city": messages[0]["content"][-5:]}) if n < 2 else Reply.text("done")

    a = [{"role": "user", "content": "Weather please, city paris"}]
    b = [{"role": "user", "content": "Weather please, city tokyo"}]
    with FakeServer(ByConversation(script)) as srv, running_tap(srv.base_url, tmp_path / "run") as (tap, url):
        client = OpenAI(base_url=url, api_key="k", max_retries=0)
        for _ in range(3):  # interleave: one turn of each at a time
            for convo in (a, b):
                msg = ask(client, convo, [WEATHER], False)
                convo.append(msg)
                for c in msg.get("tool_calls", []):
                    convo.append({"role": "tool", "tool_call_id": c["id"], "content": "sunny"})
        sync(tap)
    rows = stored(tmp_path / "run")
    assert sorted(len(r.turns) for r, _ in rows) == [3, 3]
    assert {r.scenario_id.rsplit("-", 1)[0] for r, _ in rows} == {"weather-please-city-paris", "weather-please-city-tokyo"}


def test_the_same_opening_twice_is_two_trials_of_one_scenario(tmp_path):
    with FakeServer(ScriptedBrain([Reply.text("18 C")])) as srv, running_tap(srv.base_url, tmp_path / "run") as (tap, url):
        client = OpenAI(base_url=url, api_key="k", max_retries=0)
        first = ask(client, USER, [WEATHER], False)
        ask(client, USER + [first, {"role": "user", "content": "thanks"}], [WEATHER], False)  # continues
        sync(tap)
    assert len(stored(tmp_path / "run")) == 1
    with FakeServer(ScriptedBrain([Reply.text("18 C")])) as srv, running_tap(srv.base_url, tmp_path / "run") as (tap, url):
        ask(OpenAI(base_url=url, api_key="k", max_retries=0), USER, [WEATHER], False)  # a new tap, same run dir
        sync(tap)
    rows = stored(tmp_path / "run")
    assert [r.trial for r, _ in rows] == [0, 1] and len({r.scenario_id for r, _ in rows}) == 1


def test_a_conversation_continued_after_a_tap_restart_joins_its_stored_one(tmp_path):
    """The tap stops mid-conversation (its verdict then: omitted_closeout); a new tap on the same run directory
    gets the continuation: it joins the stored conversation, learns the tool answer, revises the verdict."""
    replies = [Reply.call("write_file", {"path": "notes.md", "content": "x"}),
               Reply.call("kanban_complete", {"task_id": "t_42", "summary": "notes written"}), Reply.text("Done.")]
    msgs = list(CARD)
    with FakeServer(ScriptedBrain(replies)) as srv:
        with running_tap(srv.base_url, tmp_path / "run") as (tap, url):
            msgs.append(ask(OpenAI(base_url=url, api_key="k", max_retries=0), msgs, KANBAN_TOOLS, True))
            sync(tap)
        [(_, before)] = stored(tmp_path / "run")
        assert before["failures"] == ["omitted_closeout"]  # the tap stopped with the card open
        msgs.append({"role": "tool", "tool_call_id": msgs[-1]["tool_calls"][0]["id"], "content": "wrote notes.md"})
        with running_tap(srv.base_url, tmp_path / "run") as (tap, url):
            agent_loop(OpenAI(base_url=url, api_key="k", max_retries=0), msgs, KANBAN_TOOLS, True)
            sync(tap)
            metrics = tap.metrics.render()
    [(rec, v)] = stored(tmp_path / "run")
    assert len(rec.turns) == 3 and rec.turns[0].tool_results[0].output == "wrote notes.md"
    assert v["passed"] and v["failures"] == []
    assert not re.search(r"^brainbench_tap_conversations_total [1-9]", metrics, re.M)  # none opened anew


# -- the wire: bytes, headers, secrets, other paths, Ollama ---------------------------------------------------------


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("reply", [Reply.text("Paris is sunny, 18 C. " * 20),
                                   Reply.hostile({"choices": [{"delta": {"content": "é ☃ \\u00e9"}, "index": 0}]},
                                                 '{"weird": [1, 2, 3]}', ": comment")], ids=["text", "hostile"])
def test_the_agent_gets_byte_identical_responses(tmp_path, stream, reply):
    body = {"model": "fake-model", "messages": USER, "stream": stream}
    with FakeServer(ScriptedBrain([reply])) as srv, running_tap(srv.base_url, tmp_path / "run") as (tap, url):
        direct = httpx.post(srv.base_url + "/chat/completions", json=body)
        tapped = httpx.post(url + "/chat/completions", json=body)
    assert tapped.status_code == direct.status_code == 200
    assert tapped.content == direct.content and len(tapped.content) > 50
    assert tapped.headers["content-type"] == direct.headers["content-type"]


def test_each_streamed_chunk_reaches_the_agent_when_the_server_sends_it(tmp_path):
    """Relayed as they arrive, not batched: through the tap the agent gets as many pieces as directly, at the
    same pace (chunks 60 ms apart)."""
    import time as _time

    def arrivals(url: str) -> list[float]:
        t0, out = _time.perf_counter(), []
        body = {"model": "fake-model", "messages": USER, "stream": True}
        with httpx.Client(timeout=10) as http, http.stream("POST", url + "/chat/completions", json=body) as r:
            out = [_time.perf_counter() - t0 for _ in r.iter_raw()]
        return out

    replies = [Reply(content="one two three four five", chunk_gap=0.06)] * 2
    with FakeServer(ScriptedBrain(replies)) as srv, running_tap(srv.base_url, tmp_path / "run") as (tap, url):
        direct, tapped = arrivals(srv.base_url), arrivals(url)
    gaps = [[b - a for a, b in zip(x, x[1:])] for x in (direct, tapped)]
    assert len(tapped) == len(direct) >= 6 and min(gaps[1][:-1]) > 0.03  # one piece per chunk, none held back
    assert abs(sorted(gaps[1])[len(gaps[1]) // 2] - sorted(gaps[0])[len(gaps[0]) // 2]) < 0.01


def _compressor(coding: str):
    import importlib.util
    import zlib

    if coding == "br" and importlib.util.find_spec("brotli") is None:
        return lambda data: data, lambda: b""  # labelled br, not compressed: the tap cannot read it either way
    if coding == "br":
        import brotli

        c = brotli.Compressor()
        return lambda data: c.process(data) + c.flush(), c.finish
    c = zlib.compressobj(wbits=31 if coding == "gzip" else 15)
    return lambda data: c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH), c.flush


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
def test_a_compressed_reply_is_relayed_untouched_and_decoded_for_scoring(tmp_path, stream, coding):
    """The agent's Accept-Encoding reaches the server; its compressed reply reaches the agent byte for byte
    (chunk by chunk when streamed) and the tap scores the decoded reply: a call written as text, found. br
    without the brotli module: relayed the same, and an infrastructure event says why it was not scored."""
    import importlib.util
    import socket
    import time as _time

    readable = coding != "br" or importlib.util.find_spec("brotli") is not None
    raw = '{"name": "get_weather", "arguments": {"city": "paris"}}'
    events = [{"choices": [{"index": 0, "delta": {"content": raw[i:i + 12]}, "finish_reason": None}]}
              for i in range(0, len(raw), 12)]
    events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    sent: list[bytes] = []
    accepted: list[str] = []

    def serve(sock):
        c, _ = sock.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        req = b""
        while b"\r\n\r\n" not in req:
            req += c.recv(65536)
        head, _, rest = req.partition(b"\r\n\r\n")
        while len(rest) < int(re.search(rb"(?i)content-length: *(\d+)", head).group(1)):
            rest += c.recv(65536)
        accepted.append(re.search(rb"(?i)accept-encoding: *([^\r]*)", head).group(1).decode())
        compress, finish = _compressor(coding)
        ctype = b"text/event-stream" if stream else b"application/json"
        if stream:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Encoding: %s\r\nConnection: close\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n" % (ctype, coding.encode()))
            for ev in [f"data: {json.dumps(e)}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"]:
                data = compress(ev)
                sent.append(data)
                c.sendall(b"%x\r\n%s\r\n" % (len(data), data))
                _time.sleep(0.01)
            data = finish()
            sent.append(data)
            c.sendall((b"%x\r\n%s\r\n" % (len(data), data) if data else b"") + b"0\r\n\r\n")
        else:
            body = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": raw},
                                            "finish_reason": "stop"}]}).encode()
            data = compress(body) + finish()
            sent.append(data)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Encoding: %s\r\nConnection: close\r\n"
                      b"Content-Length: %d\r\n\r\n%s" % (ctype, coding.encode(), len(data), data))
        c.close()

    with raw_upstream(serve) as upstream, running_tap(upstream, tmp_path / "run") as (tap, url):
        body = {"model": "m", "messages": USER, "tools": [WEATHER], "stream": stream}
        with httpx.Client(timeout=10, headers={"accept-encoding": coding}) as http, \
                http.stream("POST", url + "/chat/completions", json=body) as r:
            got = b"".join(r.iter_raw())
            assert r.headers["content-encoding"] == coding
        sync(tap)
    assert accepted == [coding] and got == b"".join(sent)
    [(rec, v)] = stored(tmp_path / "run")
    if not readable:
        assert rec.status == "infra_error" and [e.kind for e in rec.infra_events] == ["bad_reply"]
        assert "install brotli" in rec.infra_events[0].detail
        return
    assert rec.turns[0].result.content == raw and v["failures"] == ["tool_call_in_text"]
    if stream:
        chunks = rec.turns[0].result.timing.chunks  # one per content event, timed by its arrival, not the parse
        assert len(chunks) == len(events) - 1 and chunks[-1] - chunks[0] >= 0.025


def test_a_slow_agent_gets_a_big_stream_whole_while_the_tap_holds_the_server_back(tmp_path, monkeypatch):
    """Megabytes streamed faster than the agent reads: the tap stops reading the server while the agent's side is
    backed up (no unbounded buffer) and resumes; the agent gets every byte, the tap scores the whole reply."""
    import time as _time
    from asyncio import selector_events

    paused = []
    pause = selector_events._SelectorSocketTransport.pause_reading
    monkeypatch.setattr(selector_events._SelectorSocketTransport, "pause_reading",
                        lambda self: (paused.append(1), pause(self))[1])

    events = [f"data: {json.dumps({'choices': [{'index': 0, 'delta': {'content': 'x' * 200_000}}]})}\n\n".encode()
              + b": " + b"-" * 1_000_000 + b"\n\n" for _ in range(12)]  # 12 MB: more than the sockets buffer
    events += [f"data: {json.dumps({'choices': [{'index': 0, 'delta': {}, 'finish_reason': 'stop'}]})}\n\n".encode(),
               b"data: [DONE]\n\n"]

    def serve(sock):
        c, _ = sock.accept()
        c.recv(65536)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                  + b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n")
        c.recv(1)
        c.close()

    with raw_upstream(serve) as upstream, running_tap(upstream, tmp_path / "run") as (tap, url):
        got = bytearray()
        with httpx.Client(timeout=20) as http, http.stream(
                "POST", url + "/chat/completions", json={"model": "m", "messages": USER, "stream": True}) as r:
            for piece in r.iter_raw(65536):
                got += piece
                _time.sleep(0.002)
        sync(tap)
    assert bytes(got) == b"".join(events) and paused  # the server was held back, and nothing was lost
    [(rec, v)] = stored(tmp_path / "run")
    assert len(rec.turns[0].result.content) == 12 * 200_000 and v is not None


def test_authorization_is_forwarded_and_never_stored(tmp_path):
    key = "sk-live-very-secret-0123456789"
    brain = ScriptedBrain([Reply.http_error(401, f"invalid api key {key}"), Reply.text("hi")])
    with FakeServer(brain) as srv, running_tap(srv.base_url, tmp_path / "run") as (tap, url):
        client = OpenAI(base_url=url, api_key=key, max_retries=0)
        with pytest.raises(APIError):
            ask(client, USER, None, False)
        ask(client, USER, None, True)
        sync(tap)
        assert srv.auth_headers == [f"Bearer {key}"] * 2
    blob = b"".join(p.read_bytes() for p in (tmp_path / "run").glob("brainbench.sqlite*"))
    assert key.encode() not in blob and b"very-secret" not in blob
    with RunStore(tmp_path / "run") as st:
        assert "[redacted]" in st.infra_events()[0]["detail"]


def test_other_paths_pass_through_and_metrics_are_prometheus_text(tmp_path):
    with FakeServer(ScriptedBrain([Reply.text("x")])) as srv, running_tap(srv.base_url, tmp_path / "run") as (tap, url):
        models = OpenAI(base_url=url, api_key="k", max_retries=0).models.list()
        ask(OpenAI(base_url=url, api_key="k", max_retries=0), USER, [WEATHER], True)
        missing = httpx.get(url.replace("/v1", "") + "/nope")
        m = httpx.get(url.replace("/v1", "") + "/metrics")
    assert [x.id for x in models.data] == ["fake-model"] and missing.status_code == 404
    assert m.status_code == 200 and m.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = m.text
    assert 'brainbench_tap_requests_total{code="200",route="other",stream="false"} 1' in text
    assert 'brainbench_tap_requests_total{code="200",route="chat",stream="true"} 1' in text
    assert "# TYPE brainbench_tap_request_duration_seconds histogram" in text
    assert 'brainbench_tap_request_duration_seconds_bucket{stream="true",le="+Inf"} 1' in text
    assert 'brainbench_tap_request_duration_seconds_count{stream="true"} 1' in text
    for line in text.splitlines():  # every sample line: name{labels} value
        if not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            float(value)
            assert name.startswith("brainbench_tap_")


@pytest.mark.parametrize("stream", STREAMS)
def test_ollama_native_chat_is_classified_too(tmp_path, stream):
    replies = [Reply.call("get_forecast", {"city": "paris"})]
    with FakeServer(ScriptedBrain(replies)) as srv, running_tap(srv.base_url, tmp_path / "run") as (tap, url):
        base = url.replace("/v1", "")
        r = httpx.post(base + "/api/chat", json={"model": "fake-model", "messages": USER, "tools": [WEATHER], "stream": stream})
        assert r.status_code == 200
        sync(tap)
    [(rec, v)] = stored(tmp_path / "run")
    assert v["failures"] == ["unknown_tool"] and rec.turns[0].result.tool_calls[0].name == "get_forecast"


# -- the run directory: report, export-scenarios, the CLI --------------------------------------------------------


SRC = Path(__file__).resolve().parent.parent / "src"


def _bb(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run([sys.executable, "-m", "brainbench", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env=env)


def test_report_and_export_read_a_tap_run_and_export_scenarios_writes_a_valid_pack(tmp_path):
    replies = [Reply.call("write_file", {"path": "n.md", "content": "x"}), Reply.call("kanban_show", {"task_id": 1}),
               Reply.text("All done.")]
    one_conversation(replies, tmp_path, True, tools=KANBAN_TOOLS, messages=CARD)
    run = tmp_path / "run"
    rep = _bb("report", str(run), "--md", str(tmp_path / "r.md"), "--html", str(tmp_path / "r.html"))
    assert rep.returncode == 0, rep.stderr
    md = (tmp_path / "r.md").read_text()
    assert "tap" in md and "omitted_closeout" in md
    exp = json.loads(_bb("export", str(run), "--format", "json").stdout)
    assert exp["attempts"][0]["pack"] == "tap" and sorted(exp["attempts"][0]["failures"]) == ["malformed_args", "omitted_closeout"]
    res = _bb("tap", "export-scenarios", str(run), "-o", str(tmp_path / "drafts"))
    assert res.returncode == 0, res.stderr
    from brainbench.packs import load_pack

    pack = load_pack(tmp_path / "drafts")
    [sc] = pack.scenarios
    assert sc.env == "schema_tools" and sc.system == "You are a kanban worker."
    assert [m["role"] for m in sc.messages] == ["user", "assistant", "tool"]  # up to the malformed call's turn
    assert sc.state["results"] == {"write_file": ['{"ok": true}']} and sc.meta["failures"]
    assert {t["function"]["name"] for t in sc.state["tools"]} == {"kanban_show", "kanban_complete", "kanban_block", "write_file"}


@pytest.mark.parametrize("args,msg", [
    (["tap", "-o", "x"], "needs --upstream URL and -o RUN_DIR"),
    (["tap", "--upstream", "localhost:8080", "-o", "x"], "--upstream wants"),
    (["tap", "--upstream", "http://h:1", "-o", "x", "--listen", "nope"], "--listen wants HOST:PORT"),
    (["tap", "--upstream", "http://h:1", "-o", "x", "--rules", "missing.yaml"], "missing.yaml: cannot read"),
    (["tap", "export-scenarios", "nowhere", "-o", "d"], "not a brainbench run directory"),
])
def test_cli_errors_are_one_line(tmp_path, args, msg):
    res = _bb(*args, cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.startswith("error:") and msg in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


# -- a killed tap loses no finished turn ---------------------------------------------------------------------------


def test_kill_9_mid_stream_loses_no_stored_turn(tmp_path):
    import re
    import signal

    replies = [Reply.text("18 C."), Reply.call("get_weather", {"city": "paris"}), Reply(endless="content", chunk_gap=0.01)]
    with FakeServer(ScriptedBrain(replies, strict=True)) as srv:
        proc = subprocess.Popen([sys.executable, "-m", "brainbench", "tap", "--upstream", srv.base_url, "--listen",
                                 "127.0.0.1:0", "-o", str(tmp_path / "run")], stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": str(SRC)})
        try:
            line = proc.stderr.readline()
            port = re.search(r"http://127\.0\.0\.1:(\d+)", line).group(1)
            client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0)
            ask(client, [{"role": "user", "content": "Another conversation"}], None, False)
            msgs = USER + [ask(client, USER, [WEATHER], True)]
            msgs.append({"role": "tool", "tool_call_id": msgs[-1]["tool_calls"][0]["id"], "content": "18 C"})
            stream = client.chat.completions.create(model="fake-model", messages=msgs, tools=[WEATHER], stream=True)
            got = [next(stream) for _ in range(5)]  # the reply is streaming to the agent ...
            assert got[-1].choices[0].delta.content == "la "
            os.kill(proc.pid, signal.SIGKILL)  # ... when the tap dies
            proc.wait(10)
            with pytest.raises(Exception):
                for _ in stream:
                    pass
        finally:
            proc.kill()
            proc.wait(10)
    rows = stored(tmp_path / "run")
    assert [len(r.turns) for r, _ in rows] == [1, 1]  # both finished turns; the one in flight is not a turn
    weather = next(r for r, _ in rows if r.turns[0].result.tool_calls)
    assert weather.turns[0].result.tool_calls[0].name == "get_weather"
    assert all(v is not None for _, v in rows)


# -- the documented walk-through's agent -----------------------------------------------------------------------------


def test_the_example_kanban_agent_runs_through_the_tap(tmp_path):
    """examples/kanban_agent.py (docs/concepts/tap.md) against a scripted model: one card done, one walked away."""
    def script(messages):
        card = "t_1" if "t_1" in messages[1]["content"] else "t_3"
        done = sum(1 for m in messages if m["role"] == "tool")
        if card == "t_1":
            steps = [Reply.call("kanban_show", {"task_id": "t_1"}),
                     Reply.call("write_file", {"path": "hello.txt", "content": "hello"}),
                     Reply.call("kanban_complete", {"task_id": "t_1", "summary": "wrote hello.txt"})]
            return steps[min(done, 2)]
        return Reply.text("I cannot deploy, so I will stop here.")  # walks away, nudge or not

    example = Path(__file__).resolve().parent.parent / "examples" / "kanban_agent.py"
    with FakeServer(ByConversation(script)) as srv, running_tap(srv.base_url, tmp_path / "run") as (tap, url):
        res = subprocess.run([sys.executable, str(example), "--base-url", url, "--model", "fake-model", "--stream",
                              "--cards", "t_1", "t_3"], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "PYTHONPATH": str(SRC)})
        assert res.returncode == 0, res.stderr
        sync(tap)
    assert res.stdout.split() == ["t_1:", "done", "t_3:", "in_progress"]
    by_card = {("t_1" if "t_1" in json.dumps(r.dispatches[0].messages[1]) else "t_3"): v for r, v in stored(tmp_path / "run")}
    assert by_card["t_1"]["passed"] and by_card["t_1"]["clean"]
    assert by_card["t_3"]["failures"] == ["omitted_closeout"] and not by_card["t_3"]["clean"]


def test_a_kept_alive_connection_the_server_already_closed_is_retried_once_unseen(tmp_path):
    """llama-server closes every connection after a streamed reply while advertising keep-alive: the tap's
    next request on that connection gets EOF; it is retried at once on a fresh one, and not counted."""
    import socket
    import threading

    served = []

    def server(sock):
        while True:
            try:
                c, _ = sock.accept()
            except OSError:
                return
            c.recv(65536)
            body = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                                            "finish_reason": "stop"}]}).encode()
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nKeep-Alive: timeout=5, max=100\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body) + body)
            served.append(1)
            c.close()  # ... and lets the connection go, keep-alive or not

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    threading.Thread(target=server, args=(sock,), daemon=True).start()
    try:
        with running_tap(f"http://127.0.0.1:{sock.getsockname()[1]}", tmp_path / "run") as (tap, url):
            client = OpenAI(base_url=url, api_key="k", max_retries=0)
            for i in range(3):
                assert ask(client, [{"role": "user", "content": f"q{i}"}], None, False)["content"] == "hi"
            sync(tap)
    finally:
        sock.close()
    assert len(served) == 3
    with RunStore(tmp_path / "run") as st:
        assert st.infra_events() == []


# -- OpenTelemetry (the tap-otel extra) -------------------------------------------------------------------------------


def test_otel_spans_carry_gen_ai_attributes_and_the_failure_kind(tmp_path):
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from brainbench.tap.otel import OtelExport

    mem = InMemorySpanExporter()
    replies = [Reply.call("get_forecast", {"city": "paris"}), Reply.http_error(503, "Loading model"), Reply.text("ok")]
    with FakeServer(ScriptedBrain(replies)) as srv, running_tap(srv.base_url, tmp_path / "run") as (tap, url):
        tap.otel = OtelExport(None, exporter=mem)
        client = OpenAI(base_url=url, api_key="k", max_retries=0)
        msgs = USER + [ask(client, USER, [WEATHER], True)]
        msgs.append({"role": "tool", "tool_call_id": msgs[-1]["tool_calls"][0]["id"], "content": "no such tool"})
        with pytest.raises(APIError):
            ask(client, msgs, [WEATHER], False)
        ask(client, msgs, [WEATHER], False)
        sync(tap)
    first, infra, last = mem.get_finished_spans()
    assert first.name == "chat fake-model" and first.attributes["gen_ai.request.model"] == "fake-model"
    assert first.attributes["gen_ai.operation.name"] == "chat"
    assert list(first.attributes["brainbench.failure.kind"]) == ["unknown_tool"]
    assert list(infra.attributes["brainbench.infra.kind"]) == ["loading_model"] and infra.status.status_code.name == "ERROR"
    assert list(last.attributes["brainbench.failure.kind"]) == [] and last.attributes["gen_ai.usage.output_tokens"] > 0
    assert first.attributes["gen_ai.conversation.id"] == last.attributes["gen_ai.conversation.id"]


def test_otlp_http_export_reaches_a_collector(tmp_path):
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from brainbench.tap.otel import OtelExport

    got: list[tuple[str, str, bytes]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self):
            got.append((self.path, self.headers["Content-Type"], self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    collector = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    try:
        otel = OtelExport(f"http://127.0.0.1:{collector.server_address[1]}/v1/traces")
        with FakeServer(ScriptedBrain([Reply.text("", reasoning="")])) as srv, \
                running_tap(srv.base_url, tmp_path / "run") as (tap, url):
            tap.otel = otel
            ask(OpenAI(base_url=url, api_key="k", max_retries=0), USER, [WEATHER], False)
            sync(tap)
        otel.shutdown()  # flushes the batch
    finally:
        collector.shutdown()
    [(path, ctype, body)] = got
    assert path == "/v1/traces" and ctype == "application/x-protobuf"
    assert b"brainbench.failure.kind" in body and b"empty_response" in body and b"gen_ai.request.model" in body


def test_a_closeout_written_as_text_closes_only_if_the_agent_ran_it(tmp_path):
    text_close = Reply.text('{"name": "kanban_complete", "arguments": {"task_id": "t_42", "summary": "done"}}')
    replies = [Reply.call("write_file", {"path": "n.md", "content": "x"}), text_close, text_close]
    with FakeServer(ScriptedBrain(replies)) as srv, running_tap(srv.base_url, tmp_path / "run") as (tap, url):
        client = OpenAI(base_url=url, api_key="k", max_retries=0)
        msgs = agent_loop(client, CARD, KANBAN_TOOLS, False)  # this agent ignores calls written as text ...
        msgs.append({"role": "user", "content": "Close the card."})
        msgs.append(ask(client, msgs, KANBAN_TOOLS, False))
        sync(tap)
        first = stored(tmp_path / "run")[0][1]
        # ... an agent that does run them answers with a tool message (by its own id)
        msgs.append({"role": "tool", "tool_call_id": "call_x", "content": '{"ok": true}'})
        ask(client, msgs + [], KANBAN_TOOLS, False)
        sync(tap)
    assert sorted(first["failures"]) == ["omitted_closeout", "tool_call_in_text", "tool_call_in_text"]
    [(rec, v)] = stored(tmp_path / "run")
    assert rec.turns[1].nudge == "Close the card."
    assert "omitted_closeout" not in v["failures"] and v["details"]["rules"]["kanban-closeout"]["closed_by"] == "kanban_complete"


def test_a_continuation_sent_before_the_previous_stream_ended_is_stored_in_order(tmp_path):
    """An agent acts on `data: [DONE]` while the server has not yet sent the stream's last bytes: its next request
    reaches the tap first. It must neither hang nor land out of order."""
    import socket
    import threading
    import time

    def serve(c):
        while True:
            data = c.recv(65536)
            if not data:
                return
            while len(data.split(b"\r\n\r\n", 1)[1]) < int(data.lower().split(b"content-length: ")[1].split(b"\r\n")[0]):
                data += c.recv(65536)
            event = json.dumps({"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]})
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            for piece in (f"data: {event}\n\n".encode(), b"data: [DONE]\n\n"):
                c.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            time.sleep(0.5)  # the stream's end comes late
            c.sendall(b"0\r\n\r\n")

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()

    def accept():
        while True:
            try:
                c, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        with running_tap(f"http://127.0.0.1:{sock.getsockname()[1]}", tmp_path / "run") as (tap, url):
            msgs = list(USER)
            for _ in range(2):
                with httpx.Client(timeout=5) as http, http.stream("POST", url + "/chat/completions", json={
                        "model": "m", "messages": msgs, "stream": True}) as r:
                    for line in r.iter_lines():
                        if line == "data: [DONE]":
                            break  # the agent goes on at once
                msgs = msgs + [{"role": "assistant", "content": "hi"}, {"role": "user", "content": "and?"}]
            sync(tap)
    finally:
        sock.close()
    [(rec, v)] = stored(tmp_path / "run")
    assert [t.index for t in rec.turns] == [0, 1] and rec.turns[0].nudge == "and?" and v is not None


@pytest.mark.parametrize("cut", [False, True], ids=["close-delimited", "cut-mid-chunk"])
def test_a_close_delimited_stream_is_whole_and_a_cut_chunk_is_a_reset(tmp_path, cut):
    """A reply without length or chunking ends where the server closes (HTTP/1.1): relayed whole. A chunked
    reply cut mid-chunk is a reset, for the agent and in the store."""

    event = json.dumps({"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]})
    sse = f"data: {event}\n\ndata: [DONE]\n\n".encode()

    def serve(sock):
        c, _ = sock.accept()
        c.recv(65536)
        if cut:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"%x\r\n%s" % (len(sse), sse[:20]))
        else:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n" + sse)
        c.close()

    with raw_upstream(serve) as upstream, running_tap(upstream, tmp_path / "run") as (tap, url):
        body = {"model": "m", "messages": USER, "stream": True}
        if cut:
            with pytest.raises(httpx.HTTPError):
                httpx.post(url + "/chat/completions", json=body)
        else:
            assert httpx.post(url + "/chat/completions", json=body).content == sse
        sync(tap)
    [(rec, v)] = stored(tmp_path / "run")
    with RunStore(tmp_path / "run") as st:
        kinds = [e["kind"] for e in st.infra_events()]
    assert (kinds, rec.status) == ((["stream_reset"], "infra_error") if cut else ([], "completed"))


# -- stitching, as a unit ------------------------------------------------------------------------------------------------


def test_stitcher_continuations_forks_and_identical_openings():
    from brainbench.tap.stitch import Stitcher, prefix_hashes

    st: Stitcher[str] = Stitcher()
    a1 = [{"role": "user", "content": "hi"}]
    a2 = a1 + [{"role": "assistant", "content": "hello", "tool_calls": None}, {"role": "user", "content": "more"}]
    assert st.find(prefix_hashes(a1), set()) is None
    st.advance("A", prefix_hashes(a1))
    # key order and null-vs-absent do not matter
    assert st.find(prefix_hashes([{"content": "hi", "role": "user"}] + a2[1:]), set()) == "A"
    assert st.find(prefix_hashes(a1), set()) == "A"  # a retry of the same request
    assert st.find(prefix_hashes(a1), {id("A")}) is None  # ... unless the first is still in flight: another one
    st.advance("A", prefix_hashes(a2))
    fork = a1 + [{"role": "assistant", "content": "other"}]
    assert st.find(prefix_hashes(fork), set()) is None  # extends a point A has moved past
    assert st.find(prefix_hashes(a2 + [{"role": "user", "content": "x"}]), set()) == "A"
    st.forget("A")
    assert st.find(prefix_hashes(a2), set()) is None


def test_dechunk_finds_the_end_and_the_body_however_the_bytes_are_split():
    from brainbench.tap.upstream import ChunkError, Dechunk

    msg = b"5;ext=1\r\nhello\r\n0C\r\n, world\r\nxx!\r\n0\r\nX-Trailer: 1\r\n\r\n"
    after = b"HTTP/1.1 200 OK\r\n"  # what a server sent after the message (never relayed as part of it)
    for cuts in [[]] + [[i] for i in range(1, len(msg))] + [list(range(1, len(msg)))]:
        bounds = [0, *cuts, len(msg)]
        pieces = [msg[a:b] for a, b in zip(bounds, bounds[1:])]
        pieces[-1] += after
        d, body, ends = Dechunk(), b"", []
        for p in pieces:
            got, end = d.feed(p)
            body += got
            ends.append(end)
        assert body == b"hello, world\r\nxx!" and ends[-1] == len(pieces[-1]) - len(after) and d.ended, cuts
        assert all(e == -1 for e in ends[:-1])
    d = Dechunk()  # the usual arrival, one whole chunk per piece (the fast path), then the last chunk
    assert [d.feed(b"5\r\nhello\r\n"), d.feed(b"2\r\n!\n\r\n"), d.feed(b"0\r\n\r\n")] == [
        (b"hello", -1), (b"!\n", -1), (b"", 5)]
    with pytest.raises(ChunkError):
        Dechunk().feed(b"zz\r\nhello\r\n")
