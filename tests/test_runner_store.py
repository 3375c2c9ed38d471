"""Runner, store, scoring and resume against the fake server on the real wire."""

import json
import sqlite3
from pathlib import Path

import pytest

from brainbench.packs import Pack, PackError, load_pack, select
from brainbench.runner.run import RunPlan, execute, prepare
from brainbench.scoring import attempt_rows, rescore, summary
from brainbench.store import RunStore, StoreError
from brainbench.store.db import DB_NAME, SCHEMA_VERSION
from brainbench.testing import ByConversation, Reply, ScriptedBrain
from conftest import client_for


def smoke() -> Pack:
    return select(["smoke"])[0]


def perfect_smoke(messages):
    """A scripted brain that does every smoke scenario right."""
    last = messages[-1]
    user = next(m["content"] for m in messages if m["role"] == "user")
    tools_done = [m for m in messages if m["role"] == "tool"]
    if "capital of France" in user:
        return Reply.text("Paris")
    if "17 + 25" in user:
        return Reply.text("42")
    if "temperature in Paris" in user:
        return Reply.call("get_weather", {"city": "Paris"}) if not tools_done else Reply.text("It is 18 °C.")
    if "Ada Lovelace" in user:
        if not tools_done:
            return Reply.call("lookup_user", {"name": "Ada Lovelace"})
        if len(tools_done) == 1:
            return Reply.call("get_orders", {"user_id": json.loads(last["content"])["user_id"]})
        return Reply.text("Ada Lovelace has 3 orders.")
    raise AssertionError(user)


def plan_for(packs, trials=1, concurrency=2):
    return RunPlan(packs=packs, model="fake-model", config={"t": 1}, trials=trials, concurrency=concurrency)


async def run_plan(srv, tmp_path, plan, **client_kw):
    store = RunStore(tmp_path / "run", create=True)
    todo = prepare(plan, store)
    async with client_for(srv, **client_kw) as c:
        await execute(plan, c, store, todo)
    return store


async def test_perfect_brain_passes_every_smoke_scenario(fake, tmp_path):
    srv = fake(ByConversation(perfect_smoke))
    store = await run_plan(srv, tmp_path, plan_for([smoke()], trials=2))
    rows = attempt_rows(store)
    assert len(rows) == 8 and all(r["passed"] and r["clean"] for r in rows), rows
    s = summary(rows)["fake-model"]["overall"]
    assert s["pass"]["rate"] == 1.0 and s["pass_hat_k"]["2"] == 1.0
    assert s["tool_calls"] == 2 * 3


async def test_text_calls_are_recovered_executed_and_flagged(fake, tmp_path):
    def script(messages):
        if not any(m["role"] == "tool" for m in messages):
            return Reply.text('```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```')
        return Reply.text("18 degrees")

    srv = fake(ByConversation(script))
    pack = smoke().model_copy(update={"scenarios": [s for s in smoke().scenarios if s.id == "weather-single-call"]})
    store = await run_plan(srv, tmp_path, plan_for([pack]))
    (row,) = attempt_rows(store)
    assert row["passed"] and row["failures"] == ["tool_call_in_text"]
    rec = next(store.attempts())
    call = rec.turns[0].result.tool_calls[0]
    assert call.in_text and '"get_weather"' in call.raw_text
    assert rec.turns[0].tool_results[0].ok


async def test_wrong_answers_are_classified(fake, tmp_path):
    srv = fake(ScriptedBrain([Reply.call("get_weather", {"city": "Paris"})]))  # calls forever
    store = await run_plan(srv, tmp_path, plan_for([smoke()], concurrency=1))
    rows = {r["scenario"]: r for r in attempt_rows(store)}
    assert "unneeded_call" in rows["chat-capital"]["failures"]
    assert "unknown_tool" in rows["chat-capital"]["failures"]  # no tools offered: any call names an unknown tool
    assert "turn_budget_exhausted" in rows["weather-single-call"]["failures"]
    assert not any(r["passed"] for r in rows.values())


async def test_infra_failures_are_stored_apart_and_never_scored(fake, tmp_path):
    srv = fake(ScriptedBrain([Reply.http_error(502, "bad gateway")]))
    store = await run_plan(srv, tmp_path, plan_for([smoke()]), retries=1)
    rows = attempt_rows(store)
    assert {r["status"] for r in rows} == {"infra_error"} and not any(r["scored"] for r in rows)
    s = summary(rows)
    assert s == {}  # nothing scored: infrastructure errors are not model failures
    assert len(store.infra_events()) == 4 * 2


async def test_resume_runs_only_missing_and_infra_failed_attempts(fake, tmp_path):
    broken = fake(ScriptedBrain([Reply.http_error(500, "down")]))
    await run_plan(broken, tmp_path, plan_for([smoke()]), retries=0)
    brain = ByConversation(perfect_smoke)
    good = fake(brain)
    store = await run_plan(good, tmp_path, plan_for([smoke()]))
    rows = attempt_rows(store)
    assert len(rows) == 4 and all(r["status"] == "completed" and r["passed"] for r in rows)
    n_requests = len(brain.requests)
    store = await run_plan(good, tmp_path, plan_for([smoke()]))  # nothing left to do
    assert len(brain.requests) == n_requests
    assert len(store.infra_events()) == 4  # the history of the failed tries is kept


async def test_keys_follow_content_not_position(fake, tmp_path):
    srv = fake(ByConversation(perfect_smoke))
    pack = smoke()
    store = await run_plan(srv, tmp_path, plan_for([pack]))
    keys = {r["scenario"]: r["key"] for r in attempt_rows(store)}
    reordered = pack.model_copy(update={"scenarios": list(reversed(pack.scenarios))})
    assert prepare(plan_for([reordered]), store) == []
    edited = [s.model_copy(update={"max_turns": 5}) if s.id == "chat-capital" else s for s in pack.scenarios]
    todo = prepare(plan_for([pack.model_copy(update={"scenarios": edited})]), store)
    assert [s.id for s, _ in todo] == ["chat-capital"]  # an edited scenario is a new task
    assert len(set(keys.values())) == 4


async def test_rescore_rebuilds_verdicts_without_a_model(fake, tmp_path):
    srv = fake(ByConversation(perfect_smoke))
    store = await run_plan(srv, tmp_path, plan_for([smoke()]))
    before = attempt_rows(store)
    store.conn.execute("DELETE FROM verdicts")
    srv.httpd.brain = lambda body: pytest.fail("scoring must not call the model")
    assert rescore(store) == 4
    assert attempt_rows(store) == before


def test_newer_schema_is_refused_in_one_line(tmp_path):
    RunStore(tmp_path, create=True).close()
    con = sqlite3.connect(tmp_path / DB_NAME)
    con.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer brainbench"):
        RunStore(tmp_path)


def test_not_a_run_dir(tmp_path):
    with pytest.raises(StoreError, match="not a brainbench run directory"):
        RunStore(tmp_path)
    (tmp_path / DB_NAME).write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="cannot open"):
        RunStore(tmp_path)


@pytest.mark.parametrize("text,needle", [
    ("name: p\nscenarios:\n  - id: a\n    messages: [{role: user, content: hi}]\n    max_turns: zero\n",
     "field 'max_turns'"),
    ("name: p\nscenarios:\n  - id: a\n", "field 'messages'"),
    ("name: p\nscenarios:\n  - id: a\n    messages: [{role: user, content: hi}]\n    colour: red\n", "field 'colour'"),
    ("name: p\nscenarios: [\n", "not valid YAML"),
    ("- just a list\n", "must be a mapping"),
])
def test_broken_pack_files_give_one_clear_line(tmp_path, text, needle):
    (tmp_path / "pack.yaml").write_text(text)
    with pytest.raises(PackError) as ei:
        load_pack(tmp_path)
    msg = str(ei.value)
    assert needle in msg and "\n" not in msg and str(tmp_path) in msg


def test_server_command_line_is_loopback_and_respects_user_context(tmp_path, monkeypatch):
    from brainbench.backend import server

    monkeypatch.setattr(server, "binary", lambda name="llama-server": tmp_path / "llama-server")
    srv = server.LlamaServer(tmp_path / "m.gguf", log_path=tmp_path / "log", parallel=4, extra_args=["-c", "4096"])
    assert srv.cmd[srv.cmd.index("--host") + 1] == "127.0.0.1"
    assert srv.cmd.count("-c") == 1 and srv.cmd[srv.cmd.index("-c") + 1] == "4096"
    default = server.LlamaServer(tmp_path / "m.gguf", log_path=tmp_path / "log", parallel=4, ctx_per_slot=1000)
    assert default.cmd[default.cmd.index("-c") + 1] == "4000"
    assert "--port" not in " ".join(default.profile()["args"])
