"""--think: the switch goes into every request, modes are kept apart, reasoning is counted apart."""

from __future__ import annotations

import asyncio

import pytest
from quality_helpers import record, result

from brainbench.client import ChatClient, Endpoint
from brainbench.core.errors import BrainbenchError
from brainbench.testing import Reply, ScriptedBrain
from brainbench.think import reasoning_stats, think_config, think_label, think_modes, with_think


def test_modes_and_labels():
    assert think_modes(None) == [None] and think_modes("both") == ["on", "off"] and think_modes("off") == ["off"]
    with pytest.raises(BrainbenchError):
        think_modes("maybe")
    assert think_label("brain-small", None) == "brain-small"
    assert think_label("brain-small", "on") == "brain-small [think]"
    assert think_label("brain-small", "off") == "brain-small [no-think]"
    assert think_config(None) == {} and think_config("on") == {"think": "on"}


@pytest.mark.parametrize("mode,flag", [("on", True), ("off", False)])
def test_switch_is_sent_on_the_wire(fake, mode, flag):
    brain = ScriptedBrain([Reply.text("ok", reasoning="hmm")])
    srv = fake(brain)

    async def go():
        async with ChatClient(Endpoint(srv.base_url, "fake-model"), backoff=0.01) as c:
            r = await with_think(c, mode).chat([{"role": "user", "content": "hi"}], max_tokens=8,
                                               chat_template_kwargs={"other": 1})
            return r

    r = asyncio.run(go())
    body = brain.requests[-1]
    assert body["chat_template_kwargs"] == {"other": 1, "enable_thinking": flag}
    assert r.content == "ok" and r.reasoning.strip() == "hmm"  # thinking kept apart from the graded answer


def test_no_mode_sends_nothing(fake):
    brain = ScriptedBrain([Reply.text("ok")])
    srv = fake(brain)

    async def go():
        async with ChatClient(Endpoint(srv.base_url, "fake-model"), backoff=0.01) as c:
            await with_think(c, None).chat([{"role": "user", "content": "hi"}])

    asyncio.run(go())
    assert "chat_template_kwargs" not in brain.requests[-1]


def test_reasoning_stats():
    class S:
        def attempts(self, status=None):
            a = record(result("4", reasoning="two plus two is four"), result("", reasoning="long " * 10, finish="length"))
            a.model = "m [think]"
            b = record(result("4"))
            b.model = "m [no-think]"
            return [a, b]

    st = reasoning_stats(S())
    assert st["m [think]"]["thinking_turns"] == 2 and st["m [think]"]["reasoning_words"] == 15
    assert st["m [think]"]["cut_while_thinking"] == 1
    assert st["m [no-think]"]["thinking_turns"] == 0


def test_cli_run_think_both(tmp_path, fake):
    from typer.testing import CliRunner

    from brainbench.cli import app
    from brainbench.store import RunStore

    brain = ScriptedBrain([Reply.text("Paris 42", reasoning="thinking...")])
    srv = fake(brain, models=["fake-model"])
    res = CliRunner().invoke(app, ["run", "--endpoint", srv.base_url, "--model", "fake-model", "-p", "smoke",
                                   "--think", "both", "-o", str(tmp_path / "r"), "--json"])
    assert res.exit_code == 0, res.output
    flags = [b.get("chat_template_kwargs", {}).get("enable_thinking") for b in brain.requests if "messages" in b]
    assert True in flags and False in flags
    with RunStore(tmp_path / "r") as store:
        models = {r.model for r in store.attempts()}
        assert models == {"fake-model [think]", "fake-model [no-think]"}
        assert len({r.key for r in store.attempts()}) == 2 * 4
        assert all(t.result.reasoning.strip() == "thinking..." for r in store.attempts() for t in r.turns)
