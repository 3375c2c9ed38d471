"""Environments declare what the runner and the scorer need (no env names or tool names in generic code)."""

import asyncio

from brainbench.core.records import AttemptRecord, Dispatch, Turn
from brainbench.core.types import ChatResult, Timing
from brainbench.envs import REGISTRY, Environment, get_env, tool
from brainbench.packs import Scenario
from brainbench.scoring.score import _env_info, score_attempt


def test_every_registered_env_declares_its_capabilities(tmp_path):
    for name in REGISTRY:
        cls = get_env(name)
        assert set(cls.terminal_tools) <= set(cls.tool_names()), name  # a terminal tool is a real tool
        assert isinstance(cls.requires_closeout({}), bool) and isinstance(cls.call_only_turns, bool)
    assert get_env("shell").call_only_turns and "ralf_spawn" in get_env("shell").narration_names
    assert not get_env("toy")({}, tmp_path).closed  # the base: never closed


class _Door(Environment):
    """A minimal new environment: one terminal tool, an obligation, and `closed` after the terminal call."""

    name = "door_test"
    terminal_tools = ("shut_door",)
    narration_names = ("door_latch",)

    def setup(self, state):
        self.state = {"open": True}

    @classmethod
    def requires_closeout(cls, state):
        return True

    @property
    def closed(self):
        return not self.state["open"]

    def open_obligation(self):
        return "the door is still open" if self.state["open"] else None

    @tool
    def shut_door(self) -> str:
        """Shut the door."""
        self.state["open"] = False
        return "shut"


def test_scoring_reads_a_new_envs_declarations(monkeypatch, tmp_path):
    monkeypatch.setitem(REGISTRY, "door_test", f"{__name__}:_Door")
    sc = Scenario.model_validate({"id": "d1", "pack": "t", "env": "door_test", "messages": [
        {"role": "user", "content": "shut it"}], "checks": []})
    names, call_only, obligation = _env_info(sc)
    assert {"shut_door", "door_latch"} <= set(names) and obligation and not call_only
    env = _Door({}, tmp_path)
    asyncio.run(env.call("shut_door", {}))
    assert env.closed and env.open_obligation() is None
    said = ChatResult(content="I will call door_latch now.", timing=Timing(sent=0.0))
    rec = AttemptRecord(key="k", scenario_id="d1", pack="t", scenario_hash="h", model="m", config_hash="c", trial=0,
                        status="completed", turns=[Turn(index=0, dispatch=0, messages_before=1, result=said)],
                        dispatches=[Dispatch(index=0, end_reason="stop", open_obligation="the door is still open")])
    v = score_attempt(sc, rec)
    assert "narrated_action" in v.failures and "omitted_closeout" in v.failures and v.details["obligation"]
