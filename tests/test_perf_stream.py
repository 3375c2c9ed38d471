"""The lean timed client: same ChatResult as ChatClient on the same wire, errors and keep-alive."""

import pytest

from brainbench.client import ChatClient, Endpoint, EndpointError, InfraError
from brainbench.perf.measure import sample_from_result
from brainbench.perf.stream import RawStreamClient
from brainbench.testing import Reply, ScriptedBrain

MSG = [{"role": "user", "content": "hi"}]


async def test_same_result_as_chat_client(fake):
    srv = fake(ScriptedBrain([Reply.calls(("read_file", {"path": "a.txt"}), reasoning="plan first",
                                          content="<think>x</think>ok", timings={"predicted_n": 9})]))
    async with RawStreamClient(srv.base_url, "fake-model") as raw, ChatClient(Endpoint(srv.base_url, "fake-model")) as cc:
        a = await raw.chat(MSG, tools=[{"type": "function", "function": {"name": "read_file"}}], max_tokens=5)
        b = await cc.chat(MSG, tools=[{"type": "function", "function": {"name": "read_file"}}], max_tokens=5)
    assert (a.content, a.reasoning, a.finish_reason) == (b.content, b.reasoning, b.finish_reason)
    assert [(c.name, c.arguments) for c in a.tool_calls] == [(c.name, c.arguments) for c in b.tool_calls]
    assert a.usage == b.usage and a.server_timings == {"predicted_n": 9}
    assert len(a.timing.chunks) == len(b.timing.chunks)  # role-only chunk not stamped by either
    assert a.request["stream_options"] == {"include_usage": True} and a.request["max_tokens"] == 5
    s = sample_from_result(a)
    assert s.ttft_reasoning_s is not None and s.ttft_tool_s is not None and s.ttft_reasoning_s <= s.ttft_tool_s


async def test_keep_alive_reuses_one_connection(fake):
    srv = fake(ScriptedBrain([Reply.text("one two three")]))
    async with RawStreamClient(srv.base_url, "fake-model") as raw:
        for _ in range(3):
            r = await raw.chat(MSG)
            assert r.content == "one two three" and r.usage.completion_tokens == 3
        assert len(raw._idle) == 1


@pytest.mark.parametrize("reply,exc,needle", [
    (Reply.http_error(400, "bad field min_tokens"), EndpointError, "HTTP 400: bad field min_tokens"),
    (Reply.http_error(500, "boom"), InfraError, "HTTP 500"),
    (Reply.text("a b c d", fault="truncate", fault_after=2), InfraError, "stream ended"),
    (Reply.text("a b c d", fault="reset", fault_after=2), InfraError, ""),
    (Reply(fault="non_json"), InfraError, "not an SSE stream"),
])
async def test_failures_are_errors_never_retried(fake, reply, exc, needle):
    brain = ScriptedBrain([reply, Reply.text("fine")], strict=True)
    srv = fake(brain)
    async with RawStreamClient(srv.base_url, "fake-model") as raw:
        with pytest.raises(exc) as e:
            await raw.chat(MSG)
        assert needle in str(e.value)
        assert (await raw.chat(MSG)).content == "fine"  # the client is still usable
    assert len(brain.requests) == 2


async def test_dead_endpoint_and_bad_scheme():
    async with RawStreamClient("http://127.0.0.1:9/v1", "m", timeout=5) as raw:
        with pytest.raises(InfraError):
            await raw.chat(MSG)
    with pytest.raises(EndpointError):
        RawStreamClient("ftp://x/v1", "m")


async def test_stale_keep_alive_connection_is_replaced_once(fake):
    import socket

    srv = fake(ScriptedBrain([Reply.text("one two")]))
    async with RawStreamClient(srv.base_url, "fake-model") as raw:
        await raw.chat(MSG)
        for conn, _ in raw._idle:  # the server "timed out" every pooled connection, unnoticed
            conn.sock.shutdown(socket.SHUT_RDWR)
            conn.idle_ok = lambda: True
        r = await raw.chat(MSG)
        assert r.content == "one two"


@pytest.mark.parametrize("client", ["raw", "httpx"])
async def test_time_to_the_response_head_is_measured_apart(fake, client):
    """A server that works before it answers with a head (llama-server templates and tokenises first): both
    clients stamp the head, and the sample keeps it as ttfb_s, inside TTFT."""
    srv = fake(ScriptedBrain([Reply.text("one two three", delay=0.08, chunk_gap=0.03)]))
    c = RawStreamClient(srv.base_url, "fake-model") if client == "raw" else ChatClient(Endpoint(srv.base_url, "fake-model"))
    async with c:
        s = sample_from_result(await c.chat(MSG))
    assert 0.08 <= s.ttfb_s < s.ttft_s < s.e2e_s
