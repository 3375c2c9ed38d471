"""brainbench tap in front of the real embedded llama-server (brain-small), the openai SDK as the agent."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from openai import OpenAI

from brainbench.backend import LlamaServer, ensure_brain
from brainbench.store.db import RunStore

sys.path.insert(0, str(Path(__file__).parent))
from tap_helpers import KANBAN_TOOLS, WEATHER, agent_loop, running_tap, sync  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def model_path():
    return ensure_brain("brain-small")


def test_tap_scores_a_real_model_in_both_stream_modes(model_path, tmp_path):
    card = [{"role": "system", "content": "You are a kanban worker. Use the tools; end with kanban_complete."},
            {"role": "user", "content": "Card t_1: write hello.txt containing 'hi', then complete the card."}]
    with LlamaServer(model_path, log_path=tmp_path / "srv.log", parallel=2) as srv, \
            running_tap(srv.base_url, tmp_path / "run") as (tap, url):
        client = OpenAI(base_url=url, api_key="none", max_retries=0)
        for stream in (False, True):
            agent_loop(client, [{"role": "user", "content": f"Weather in Paris? ({'stream' if stream else 'plain'})"}],
                       [WEATHER], stream, max_turns=3)
            agent_loop(client, card + [{"role": "user", "content": "stream" if stream else "plain"}], KANBAN_TOOLS,
                       stream, max_turns=4)
        sync(tap)
        metrics = tap.metrics.render()
    with RunStore(tmp_path / "run") as st:
        recs, verdicts = list(st.attempts()), st.verdicts()
    assert len(recs) == 4 and all(r.status == "completed" and r.pack == "tap" for r in recs)
    assert all(r.key in verdicts for r in recs)
    turns = [t for r in recs for t in r.turns]
    plain = [t for t in turns if not t.result.request.get("stream")]
    assert plain and all(t.result.usage.completion_tokens for t in plain)  # the server's usage, read from the relay
    assert all(t.result.finish_reason for t in turns)  # every reply read to its end, streamed or not
    assert all(t.result.server_timings and t.result.server_timings.get("predicted_n") for t in plain)
    calls = [c for t in turns for c in t.result.tool_calls]
    assert calls, "brain-small calls tools (as text, under llama-server's template)"
    kanban = [r for r in recs if "kanban-closeout" in r.final_state.get("rules", {})]
    assert len(kanban) == 2
    for r in kanban:  # the rule judged each card: closed, or its omission counted
        st = r.final_state["rules"]["kanban-closeout"]
        assert (st["closed_by"] is not None) or ("omitted_closeout" in verdicts[r.key]["failures"]) \
            or r.turns[-1].result.tool_calls
    assert 'brainbench_tap_requests_total{code="200",route="chat",stream="true"}' in metrics
