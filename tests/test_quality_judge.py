"""The LLM judge: a separate pass, full conversation in the prompt, verdicts stored apart."""

from __future__ import annotations

import asyncio
import json

from quality_helpers import record, result

from brainbench.client import Endpoint
from brainbench.packs import Scenario
from brainbench.scoring.judge import build_prompt, judge_store, parse_verdict, scorer_name, transcript
from brainbench.store import RunStore
from brainbench.testing import ByConversation, Reply

RECALL = Scenario(
    id="recall", pack="context", meta={"judge": "Recalls that the user is Alex from Porto."},
    messages=[{"role": "user", "content": "Hi, I'm Alex from Porto."},
              {"role": "assistant", "content": "Hello Alex!"},
              {"role": "user", "content": "What's my name and city?"}],
)
CLOSED = Scenario(id="closed", pack="math", messages=[{"role": "user", "content": "2+2?"}])


def _store(tmp_path, items):
    store = RunStore(tmp_path, create=True)
    store.set_meta("scenarios", {sc.content_hash(): sc.model_dump(mode="json") for sc, _ in items})
    for i, (sc, res) in enumerate(items):
        rec = record(res)
        rec.key, rec.scenario_id, rec.pack, rec.scenario_hash = f"k{i}", sc.id, sc.pack, sc.content_hash()
        store.put_attempt(rec)
        store.put_verdict(rec.key, "deterministic", True, True, [], {"reasons": []})
    return store


def test_prompt_has_the_whole_conversation():
    rec = record(result("", calls=[("lookup", {"q": "porto"})]), result("You are Alex, from Porto."))
    rec.turns[0].nudge = None
    conv, final = transcript(RECALL, rec)
    assert "[user] Hi, I'm Alex from Porto." in conv and "[assistant] Hello Alex!" in conv
    assert "lookup" in conv and final == "You are Alex, from Porto."
    prompt = build_prompt(RECALL, rec)
    assert "Recalls that the user is Alex" in prompt and "whole conversation" in prompt


def test_parse_verdict():
    assert parse_verdict('{"verdict": "pass", "score": 5, "reason": "ok"}')["passed"] is True
    assert parse_verdict('Sure.\n```json\n{"verdict": "FAIL", "score": 1, "reason": "no"}\n```')["passed"] is False
    assert parse_verdict("it is fine") is None
    assert parse_verdict('{"verdict": "maybe"}') is None


def test_judge_pass_stores_apart_and_never_touches_deterministic(tmp_path, fake):
    seen = []

    def script(messages):
        seen.append(messages[-1]["content"])
        return Reply.text(json.dumps({"verdict": "fail", "score": 2, "reason": "wrong city"}))

    srv = fake(ByConversation(script))
    store = _store(tmp_path, [(RECALL, result("You are Alex from Lisbon.")), (CLOSED, result("4"))])
    stats = asyncio.run(judge_store(store, Endpoint(srv.base_url, "fake-model")))
    assert (stats.judged, stats.passed, stats.skipped) == (1, 0, 1)
    assert "Hi, I'm Alex from Porto." in seen[0] and "You are Alex from Lisbon." in seen[0]
    judged = store.verdicts(scorer_name())
    assert list(judged) == ["k0"] and judged["k0"]["passed"] is False
    assert judged["k0"]["details"]["prompt_version"] == "v1" and judged["k0"]["details"]["reason"] == "wrong city"
    det = store.verdicts("deterministic")
    assert det["k0"]["passed"] is True and det["k1"]["passed"] is True  # untouched


def test_judge_all_and_unparseable(tmp_path, fake):
    srv = fake(ByConversation(lambda m: Reply.text("I think it's good")))
    store = _store(tmp_path, [(RECALL, result("Alex, Porto")), (CLOSED, result("4"))])
    stats = asyncio.run(judge_store(store, Endpoint(srv.base_url, "fake-model"), judge_all=True))
    assert stats.unparseable == 2 and stats.judged == 0
    assert store.verdicts(scorer_name()) == {}


def test_cli_score_with_judge(tmp_path, fake):
    from typer.testing import CliRunner

    from brainbench.cli import app

    srv = fake(ByConversation(lambda m: Reply.text('{"verdict": "pass", "score": 5, "reason": "ok"}')))
    _store(tmp_path, [(RECALL, result("Alex, Porto"))]).close()
    res = CliRunner().invoke(app, ["score", str(tmp_path), "--json", "--judge-endpoint", srv.base_url,
                                   "--judge-model", "fake-model"])
    assert res.exit_code == 0, res.output
    with RunStore(tmp_path) as store:
        assert store.verdicts("judge:v1")["k0"]["passed"] is True
