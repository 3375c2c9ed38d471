"""A hostile server: any reply shape, endless streams, absurd arguments. Never a crash, never a hang.

Every wrong shape is a `bad_reply` (or `bad_json`) infrastructure event for that attempt only; the run goes on and
stores every attempt exactly once.
"""

import contextlib
import json
import time

import pytest
from conftest import client_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_runner_store import perfect_smoke, plan_for, run_plan, smoke

from brainbench.client import InfraError
from brainbench.client.parse import make_call, recover_text_calls
from brainbench.testing import ByConversation, Reply, ScriptedBrain

MSG = [{"role": "user", "content": "hi"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]


def chunk(delta, finish=None):
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def full(message, finish="stop"):
    return {"choices": [{"index": 0, "message": message, "finish_reason": finish}]}


STREAMED = {
    "data is a list": [[1, 2]],
    "data is a number": [5],
    "data is a string": ['"text"'],
    "choices hold strings": [{"choices": ["a", "b"]}],
    "delta is a list": [{"choices": [{"delta": [1]}]}],
    "numeric content": [chunk({"content": 42}), chunk({}, "stop")],
    "tool-call name is a number": [chunk({"tool_calls": [{"index": 0, "function": {"name": 7}}]}), chunk({}, "stop")],
    "tool_calls is an object": [chunk({"tool_calls": {"index": 0}}), chunk({}, "stop")],
    "tool call is a string": [chunk({"tool_calls": ["get_weather"]}), chunk({}, "stop")],
    "index is a string": [chunk({"tool_calls": [{"index": "0", "function": {"name": "x"}}]}), chunk({}, "stop")],
    "usage is a list": [chunk({"content": "hi"}, "stop"), {"choices": [], "usage": [1]}],
    "finish_reason is a number": [chunk({"content": "hi"}, 3)],
}

NOT_STREAMED = {
    "reply is a list": [[1]],
    "message is a string": [{"choices": [{"message": "hello"}]}],
    "choices is a string": [{"choices": "hello"}],
    "tool call without function": [full({"content": None, "tool_calls": [{"id": "a"}]})],
    "content is a number": [full({"content": 3.5})],
    "usage counts are strings": [{**full({"content": "hi"}), "usage": {"prompt_tokens": "many"}}],
}


@pytest.mark.parametrize("name", list(STREAMED))
async def test_wrong_stream_shapes_are_bad_reply_events(fake, name):
    srv = fake(ScriptedBrain([Reply.hostile(*STREAMED[name])]))
    async with client_for(srv, retries=1) as c:
        with pytest.raises(InfraError) as ei:
            await c.chat(MSG, tools=TOOLS)
    kinds = {e.kind for e in ei.value.events}
    assert kinds == {"bad_reply"}, (name, ei.value.events)
    assert "malformed reply" in ei.value.events[0].detail and len(ei.value.events[0].detail) < 400


@pytest.mark.parametrize("name", list(NOT_STREAMED))
async def test_wrong_full_reply_shapes_are_bad_reply_events(fake, name):
    srv = fake(ScriptedBrain([Reply.hostile(*NOT_STREAMED[name])]))
    async with client_for(srv, retries=0) as c:
        with pytest.raises(InfraError) as ei:
            await c.chat(MSG, tools=TOOLS, stream=False)
    assert {e.kind for e in ei.value.events} <= {"bad_reply", "bad_json"}, (name, ei.value.events)


async def test_a_bad_reply_then_a_good_one_recovers(fake):
    srv = fake(ScriptedBrain([Reply.hostile([1]), Reply.text("fine")], strict=True))
    async with client_for(srv) as c:
        r = await c.chat(MSG)
    assert r.content == "fine" and [e.kind for e in r.events] == ["bad_reply"]


@pytest.mark.parametrize("stream", [True, False])
async def test_arguments_sent_as_an_object_are_accepted_and_noted(fake, stream):
    payload = ([chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "get_weather",
                                                                           "arguments": {"city": "Paris"}}}]}),
                chunk({}, "tool_calls")] if stream else
               [full({"content": None, "tool_calls": [{"id": "c1", "function": {"name": "get_weather",
                                                                               "arguments": {"city": "Paris"}}}]})])
    srv = fake(ScriptedBrain([Reply.hostile(*payload)]))
    async with client_for(srv) as c:
        r = await c.chat(MSG, tools=TOOLS, stream=stream)
    assert r.tool_calls[0].name == "get_weather" and r.tool_calls[0].arguments == {"city": "Paris"}
    assert r.events == [] and r.normalized and "JSON object" in r.normalized[0]


@pytest.mark.parametrize("stream", [True, False])
async def test_a_lone_surrogate_is_replaced_and_the_result_stores(fake, stream):
    bad = '{"choices": [{"index": 0, "delta": {"content": "a\\ud800b"}, "finish_reason": "stop"}]}'
    if not stream:
        bad = '{"choices": [{"index": 0, "message": {"content": "a\\ud800b"}, "finish_reason": "stop"}]}'
    srv = fake(ScriptedBrain([Reply.hostile(bad)]))
    async with client_for(srv) as c:
        r = await c.chat(MSG, stream=stream)
    assert r.content == "a\ufffdb"
    json.loads(r.model_dump_json())  # storable: no surrogate left anywhere, raw response included


@pytest.mark.parametrize("endless", ["content", "ping"])
async def test_an_endless_stream_ends_at_the_request_deadline(fake, endless):
    srv = fake(ScriptedBrain([Reply(endless=endless, chunk_gap=0.02)]))
    t0 = time.monotonic()
    async with client_for(srv, timeout=5, request_timeout=1.0, retries=0) as c:
        with pytest.raises(InfraError) as ei:
            await c.chat(MSG)
    assert time.monotonic() - t0 < 4
    assert ei.value.events[0].kind == "timeout" and "request deadline" in ei.value.events[0].detail


async def test_an_endless_stream_past_max_tokens_is_cut_without_waiting_for_the_deadline(fake):
    srv = fake(ScriptedBrain([Reply(endless="content", chunk_gap=0.001)]))
    async with client_for(srv, timeout=30, retries=0) as c:
        with pytest.raises(InfraError) as ei:
            await c.chat(MSG, max_tokens=16)
    assert ei.value.events[0].kind == "bad_reply" and "max_tokens" in ei.value.events[0].detail


def test_the_default_deadline_follows_max_tokens():
    from brainbench.client import ChatClient, Endpoint

    c = ChatClient(Endpoint("http://127.0.0.1:9/v1", "m"), timeout=5)
    assert c.deadline(256) == pytest.approx(5 + 256 / 2.0)
    assert c.deadline(None) > c.deadline(256)
    assert ChatClient(Endpoint("http://127.0.0.1:9/v1", "m"), request_timeout=7).deadline(256) == 7


@pytest.mark.parametrize("raw, why", [
    ("[" * 20_000 + "]" * 20_000, "not valid JSON"),  # deeper than json's recursion limit
    ('{"a": ' + "[" * 500 + "]" * 500 + "}", "nested deeper"),
    ('{"path": "' + "x" * 70_000 + '"}', "characters"),
])
def test_absurd_arguments_are_malformed_not_a_crash(raw, why):
    call = make_call("write_file", raw)
    assert call.arguments is None and why in call.parse_error


def test_arguments_written_as_text_nested_absurdly_are_ignored():
    assert recover_text_calls("[" * 100_000) == []
    calls = recover_text_calls('{"name": "f", "arguments": {"p": "a\\ud800"}}')
    assert calls[0].arguments == {"p": "a\ufffd"}


async def test_one_hostile_attempt_at_c8_does_not_abort_the_run(fake, tmp_path):
    def script(messages):
        user = next(m["content"] for m in messages if m["role"] == "user")
        return Reply.hostile([1, 2]) if "capital of France" in user else perfect_smoke(messages)

    srv = fake(ByConversation(script))
    store = await run_plan(srv, tmp_path, plan_for([smoke()], trials=2, concurrency=8), retries=1)
    counts = store.count()
    assert counts == {"completed": 6, "infra_error": 2}, counts
    kinds = {e["kind"] for e in store.infra_events()}
    assert kinds == {"bad_reply"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["choices", "delta", "message", "content", "tool_calls", "function", "name", "arguments",
                         "index", "finish_reason", "usage", "id"]), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payloads=st.lists(st.lists(json_values, min_size=1, max_size=3), min_size=1, max_size=4))
async def test_fuzzed_reply_shapes_never_crash_and_store_every_attempt_once(fake, tmp_path_factory, payloads):
    replies = [Reply.hostile(*p) for p in payloads]
    n = iter(range(10**6))
    srv = fake(ScriptedBrain([replies[next(n) % len(replies)] for _ in range(400)], strict=False))
    tmp = tmp_path_factory.mktemp("fuzz")
    store = await run_plan(srv, tmp, plan_for([smoke()], trials=1, concurrency=4), retries=0, timeout=5)
    counts = store.count()
    assert sum(counts.values()) == 4 and set(counts) <= {"completed", "infra_error"}, counts
    keys = [r.key for r in store.attempts()]
    assert len(keys) == len(set(keys)) == 4


async def test_a_server_that_echoes_the_api_key_never_gets_it_stored_or_printed(fake):
    secret = "sk-live-0123456789abcdef"
    srv = fake(ScriptedBrain([Reply.http_error(500, f"bad key {secret}; header was Bearer {secret}")]))
    from brainbench.client import ChatClient, Endpoint

    async with ChatClient(Endpoint(srv.base_url, "fake-model", api_key=secret), retries=1, backoff=0.01) as c:
        with pytest.raises(InfraError) as ei:
            await c.chat(MSG)
    texts = [str(ei.value)] + [e.detail for e in ei.value.events]
    assert all(secret not in t for t in texts) and "[redacted]" in texts[0], texts


def test_redact_forms():
    from brainbench.client.chat import redact

    assert redact("Authorization: Bearer abcdefghijkl", None) == "Authorization: Bearer [redacted]"
    assert redact('{"api_key": "abcdefghijkl"}', None) == '{"api_key": "[redacted]"}'
    assert redact("short k", "k-not-there") == "short k"


async def test_a_server_that_is_not_an_openai_endpoint_is_one_line_without_retries():
    import http.server
    import threading

    from brainbench.client import ChatClient, Endpoint, EndpointError

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
        t0 = time.monotonic()
        async with ChatClient(Endpoint(url, "m"), backoff=1.0) as c:
            with pytest.raises(EndpointError) as ei:
                await c.chat(MSG)
        assert time.monotonic() - t0 < 1.0
        assert "HTTP 501" in str(ei.value) and "not an OpenAI-compatible chat endpoint" in str(ei.value)
    finally:
        httpd.shutdown()


@pytest.mark.parametrize("body", ["[1, 2]", '"models"', "null", '{"data": "x"}', '{"data": [1, "a"]}'])
def test_an_odd_model_list_is_not_a_crash(body):
    from brainbench.backend import check_model_served
    from brainbench.client import Endpoint
    from brainbench.packs.haystack import server_context

    with _answering_get(body.encode()) as url:
        check_model_served(Endpoint(url, "m"))  # nothing to read: the first request will tell
        assert server_context(url) is None


async def test_streamed_calls_that_all_say_index_0_stay_separate_calls(fake):
    def call(i, name, args):
        return [chunk({"tool_calls": [{"index": 0, "id": f"c{i}", "function": {"name": name, "arguments": ""}}]}),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": args}}]})]

    payload = [*call(1, "get_weather", '{"city": "Paris"}'), *call(2, "get_weather", '{"city": "Rome"}'),
               chunk({}, "tool_calls")]
    srv = fake(ScriptedBrain([Reply.hostile(*payload)]))
    async with client_for(srv) as c:
        r = await c.chat(MSG, tools=TOOLS)
    assert [(t.id, t.name, t.arguments) for t in r.tool_calls] == [
        ("c1", "get_weather", {"city": "Paris"}), ("c2", "get_weather", {"city": "Rome"})]
    assert any("shared one index" in n for n in r.normalized)


def test_a_name_llama_server_does_not_list_is_a_warning_not_silence():
    from brainbench.backend import check_model_served
    from brainbench.client import Endpoint

    with _answering_get(b'{"object": "list", "data": [{"id": "brain-small", "owned_by": "llamacpp"}]}') as url:
        warning = check_model_served(Endpoint(url, "Qwen/Qwen3-8B"))
        assert warning and "serving brain-small whatever name" in warning and "'Qwen/Qwen3-8B'" in warning
        assert check_model_served(Endpoint(url, "brain-small")) is None


@contextlib.contextmanager
def _answering_get(data: bytes):
    """A plain HTTP server whose every GET answers 200 with `data` (a model list of any shape); yields its /v1 URL."""
    import http.server
    import threading

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
