"""The agent harness: deterministic wrapping, 20-40 tools keeping the scenario's own, distractor calls denied and
classified, and attempt keys of runs without --harness unchanged."""

from __future__ import annotations

import json

from conftest import client_for
from typer.testing import CliRunner

from brainbench.cli import app
from brainbench.core.errors import BrainbenchError
from brainbench.core.records import attempt_key
from brainbench.core.run_config import RunConfig
from brainbench.envs import get_env
from brainbench.packs import Pack, Scenario, select
from brainbench.profiles.schema import AgenticLeg
from brainbench.runner.harness import TOOLS_MAX, TOOLS_MIN, plan_config, wrap
from brainbench.runner.run import RunPlan, execute, new_record, prepare
from brainbench.scoring import attempt_rows
from brainbench.store import RunStore
from brainbench.testing import ByConversation, Reply

CONFIG = {"backend": {"brain": "brain-small"}, "server": {"ctx": 4096}}


def _scenarios() -> list[Scenario]:
    return [s for p in select(["kanban", "shell", "smoke"]) for s in p.scenarios]


def _wrap(sc: Scenario):
    env = get_env(sc.env)(sc.state, __import__("pathlib").Path("/nonexistent"))
    return wrap("agent", sc, env.tool_specs(sc.tools), env.tool_names()), env


def test_the_agent_harness_is_deterministic():
    for sc in _scenarios()[::7]:
        a, _ = _wrap(sc)
        b, _ = _wrap(sc)
        assert a.model_dump() == b.model_dump()
    one, two = _scenarios()[:2]
    assert _wrap(one)[0].tools != _wrap(two)[0].tools  # seeded by the scenario, not one fixed list


def test_20_to_40_tools_keeping_the_scenario_s_own():
    for sc in _scenarios():
        w, env = _wrap(sc)
        names = [t["function"]["name"] for t in w.tools]
        own = [t["function"]["name"] for t in env.tool_specs(sc.tools)]
        assert TOOLS_MIN <= len(names) <= TOOLS_MAX and len(set(names)) == len(names), sc.id
        assert set(own) <= set(names) and not set(w.distractors) & set(env.tool_names()), sc.id
        assert set(names) == set(own) | set(w.distractors)
        assert len(w.system) > 3000 and "completion protocol" in w.system  # the close-out rule, stated once
        if sc.system:
            assert sc.system in w.system


def test_the_task_is_wrapped_in_ticket_context():
    sc = select(["smoke"])[0].scenarios[0]
    w, _ = _wrap(sc)
    first = next(m for m in w.messages if m["role"] == "user")
    assert sc.messages[0]["content"] in first["content"] and first["content"].count("\n\n") >= 3


def test_minimal_is_the_scenario_as_written():
    sc = select(["smoke"])[0].scenarios[0]
    env = get_env(sc.env)(sc.state, __import__("pathlib").Path("/nonexistent"))
    w = wrap("minimal", sc, env.tool_specs(sc.tools), env.tool_names())
    assert (w.system, w.messages, w.tools, w.distractors) == (sc.system, sc.messages, env.tool_specs(sc.tools), [])


def test_a_run_without_harness_keeps_today_s_keys():
    sc = Scenario(id="s1", pack="p", messages=[{"role": "user", "content": "hi"}])
    plan = RunPlan.of(RunConfig(), packs=[Pack(name="p", scenarios=[sc])], model="fake-model", config=dict(CONFIG))
    # the config hash and key brainbench computed before --harness existed (same config, retries 1)
    assert plan.config_hash == "fa48ea940b1242ea" and plan.config == CONFIG
    assert new_record(plan, sc, 0).key == attempt_key(sc.content_hash(), "fake-model", "fa48ea940b1242ea", 0)
    agent = RunPlan.of(RunConfig(harness="agent"), packs=plan.packs, model="fake-model", config=dict(CONFIG))
    assert agent.config == {**CONFIG, "harness": "agent"} and agent.config_hash != plan.config_hash
    assert plan_config("minimal") == {}


def test_an_agentic_leg_without_harness_dumps_as_before():
    assert "harness" not in AgenticLeg(type="agentic").model_dump(mode="json")
    leg = AgenticLeg(type="agentic", harness="agent")
    assert leg.model_dump(mode="json")["harness"] == "agent" and leg.run_config(["smoke"], []).harness == "agent"


def test_a_bad_harness_is_one_line(tmp_path):
    r = CliRunner().invoke(app, ["run", "--harness", "fancy", "-o", str(tmp_path / "r")])
    assert isinstance(r.exception, BrainbenchError)  # `main` prints it as one `error:` line, exit 2
    assert str(r.exception) == "--harness must be one of minimal, agent, not 'fancy'"
    assert not (tmp_path / "r").exists()


async def test_a_distractor_call_is_denied_and_classified(fake, tmp_path):
    weather = next(s for s in select(["smoke"])[0].scenarios if s.id == "weather-single-call")
    plan = RunPlan.of(RunConfig(harness="agent"), packs=[Pack(name="smoke", scenarios=[weather])],
                      model="fake-model", config={"t": 1})
    distractor = _wrap(weather)[0].distractors[0]  # the same pick the run makes: it is deterministic

    def script(messages):
        tools = [m for m in messages if m["role"] == "tool"]
        if not tools:
            return Reply.call(distractor, {"query": "Paris weather"})
        if len(tools) == 1:
            return Reply.call("get_weather", {"city": "Paris"})
        return Reply.text("It is 18 °C in Paris.")

    brain = ByConversation(script)
    srv = fake(brain)
    store = RunStore(tmp_path / "run", create=True)
    async with client_for(srv) as c:
        await execute(plan, c, store, prepare(plan, store))
    body = brain.requests[0]
    names = [t["function"]["name"] for t in body["tools"]]
    assert TOOLS_MIN <= len(names) <= TOOLS_MAX and "get_weather" in names and distractor in names
    rec = next(iter(store.attempts()))
    first = rec.turns[0].tool_results[0]
    assert first.error_kind == "unknown_tool" and "not available in this workspace" in json.loads(first.output)["error"]
    row = attempt_rows(store)[0]
    assert "unknown_tool" in row["failures"] and row["tool_errors"] == 1
    assert rec.dispatches[0].messages[0]["content"] == body["messages"][0]["content"]  # the wrapped prompt is stored
    assert brain.requests[1]["messages"][0] == body["messages"][0]  # the same wrapped prompt on every turn


def _harness_run(run_dir, harness: str, brain) -> None:
    import asyncio

    from brainbench.client import ChatClient, Endpoint
    from brainbench.testing import FakeServer

    cfg = RunConfig(packs=["smoke"], trials=2, harness=harness)
    plan = RunPlan.of(cfg, packs=select(["smoke"]), model="brain-x", config={"backend": {"brain": "brain-x"}})

    async def go(srv):
        with RunStore(run_dir, create=True) as store:
            store.set_meta("run", cfg.stored())
            async with ChatClient(Endpoint(srv.base_url, "brain-x"), backoff=0.01) as client:
                await execute(plan, client, store, prepare(plan, store))

    with FakeServer(ByConversation(brain), models=["brain-x"]) as srv:
        asyncio.run(go(srv))


def test_the_report_shows_the_realism_gap(tmp_path):
    from report_fixtures import good_brain

    from brainbench.report.data import build_report
    from brainbench.report.outputs import render

    def wanders(messages):  # under the agent harness: one distractor call first, then the right work
        if len(messages[0]["content"]) > 3000 and not any(m["role"] == "tool" for m in messages):
            return Reply.call("docs_search", {"query": "how to"})
        return good_brain(messages)

    _harness_run(tmp_path / "min", "minimal", wanders)
    _harness_run(tmp_path / "agent", "agent", wanders)
    rep = build_report([tmp_path / "min", tmp_path / "agent"])
    assert [e.harness for e in rep.entries] == ["minimal", "agent"]
    (g,) = rep.realism
    assert g["minimal"]["errors_per_100"]["value"] == 0 and g["agent"]["errors_per_100"]["value"] > 0
    assert g["agent"]["errors_per_100"]["ci95"][0] > 0 and g["verdict"]["verdict"] in (
        "A better", "B better", "not separable")
    for name in ("md", "html", "terminal"):
        text = render(rep, name, **({"width": 200} if name == "terminal" else {}))
        assert "realism gap" in text.lower() and "agent" in text, name
    compare = build_report([tmp_path / "agent"], tmp_path / "min")  # compare A B gives it too
    assert compare.realism and compare.realism[0]["agent"]["run"] == "agent"
