"""The chat client against a fake server on the real wire: parsing, timing, retries and refusals."""

import pytest

from brainbench.client import ChatClient, Endpoint, EndpointError, InfraError
from brainbench.client.parse import recover_text_calls, split_think
from brainbench.testing import Reply, ScriptedBrain
from conftest import client_for

MSG = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("stream", [True, False])
async def test_text_reply_with_usage_and_timing(fake, stream):
    srv = fake(ScriptedBrain([Reply.text("hello there friend", timings={"predicted_n": 3, "predicted_ms": 30.0})]))
    async with client_for(srv) as c:
        r = await c.chat(MSG, stream=stream, max_tokens=8)
    assert r.content == "hello there friend"
    assert r.finish_reason == "stop"
    assert r.usage.completion_tokens == 3 and r.usage.prompt_tokens > 0
    assert r.server_timings == {"predicted_n": 3, "predicted_ms": 30.0}
    t = r.timing
    assert t.sent <= t.first_byte <= t.first_token <= t.end
    if stream:
        assert len(t.chunks) == 3  # one per content chunk; the role-only chunk does not count
        assert r.request["stream_options"] == {"include_usage": True}
    assert r.request["max_tokens"] == 8


@pytest.mark.parametrize("stream", [True, False])
async def test_tool_calls_assembled_from_deltas(fake, stream):
    srv = fake(ScriptedBrain([Reply.calls(("get_weather", {"city": "Paris"}), ("lookup_user", {"name": "Ada"}))]))
    async with client_for(srv) as c:
        r = await c.chat(MSG, tools=[{"type": "function", "function": {"name": "get_weather"}}],
                         tool_choice="auto", stream=stream)
    assert [x.name for x in r.tool_calls] == ["get_weather", "lookup_user"]
    assert r.tool_calls[0].arguments == {"city": "Paris"}
    assert r.tool_calls[0].id.startswith("call_")
    assert r.finish_reason == "tool_calls"
    assert r.request["tool_choice"] == "auto"


async def test_unparseable_arguments_are_kept_raw(fake):
    srv = fake(ScriptedBrain([Reply.call("get_weather", '{"city": "Par')]))
    async with client_for(srv) as c:
        r = await c.chat(MSG, tools=[{"type": "function", "function": {"name": "get_weather"}}])
    call = r.tool_calls[0]
    assert call.arguments is None and call.arguments_raw == '{"city": "Par'
    assert "not valid JSON" in call.parse_error


async def test_reasoning_kept_apart(fake):
    srv = fake(ScriptedBrain([Reply.text("<think>2+2 is 4</think>The answer is 4", reasoning="step one")]))
    async with client_for(srv) as c:
        r = await c.chat(MSG)
    assert r.content == "The answer is 4"
    assert "step one" in r.reasoning and "2+2 is 4" in r.reasoning


def test_split_think_when_template_opened_the_tag():
    assert split_think("hidden plan</think>visible") == ("visible", "hidden plan")
    assert split_think("no thinking") == ("no thinking", "")


async def test_loading_503_then_success_is_recorded(fake):
    srv = fake(ScriptedBrain([Reply.loading(), Reply.loading(), Reply.text("ok")]))
    async with client_for(srv) as c:
        r = await c.chat(MSG)
    assert r.content == "ok"
    assert [e.kind for e in r.events] == ["loading_model", "loading_model"]


@pytest.mark.parametrize("fault,kind", [("reset", "stream_reset"), ("truncate", "stream_truncated"),
                                        ("non_json", "bad_json")])
async def test_mid_stream_faults_are_retried(fake, fault, kind):
    srv = fake(ScriptedBrain([Reply.call("get_weather", {"city": "Paris"}, fault=fault, fault_after=3),
                              Reply.text("recovered")]))
    async with client_for(srv) as c:
        r = await c.chat(MSG, tools=[{"type": "function", "function": {"name": "get_weather"}}])
    assert r.content == "recovered"
    assert [e.kind for e in r.events] == [kind]


async def test_persistent_5xx_gives_infra_error(fake):
    srv = fake(ScriptedBrain([Reply.http_error(500, "boom")]))
    async with client_for(srv, retries=2) as c:
        with pytest.raises(InfraError) as ei:
            await c.chat(MSG)
    assert len(ei.value.events) == 3 and all(e.kind == "http_5xx" for e in ei.value.events)
    assert "gave up after 3 tries" in str(ei.value)


async def test_wrong_model_name_is_one_clear_error_without_retry(fake):
    brain = ScriptedBrain([Reply.text("never")])
    srv = fake(brain)
    async with client_for(srv, model="no-such-model") as c:
        with pytest.raises(EndpointError) as ei:
            await c.chat(MSG)
    assert "no-such-model" in str(ei.value) and "404" in str(ei.value)
    assert brain.requests == []


async def test_vllm_tools_trap_is_explained(fake):
    msg = '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'
    srv = fake(ScriptedBrain([Reply.http_error(400, msg)]))
    async with client_for(srv) as c:
        with pytest.raises(EndpointError) as ei:
            await c.chat(MSG, tools=[{"type": "function", "function": {"name": "x"}}])
    assert "--enable-auto-tool-choice" in str(ei.value) and "vLLM" in str(ei.value)


async def test_dead_endpoint_is_an_infra_error():
    async with ChatClient(Endpoint("http://127.0.0.1:9/v1", "m"), retries=1, backoff=0.01) as c:
        with pytest.raises(InfraError) as ei:
            await c.chat(MSG)
    assert ei.value.events[0].kind == "connect_error"


async def test_api_key_sent_as_header_but_not_stored(fake):
    srv = fake(ScriptedBrain([Reply.text("ok")]))
    async with ChatClient(Endpoint(srv.base_url, "fake-model", api_key="sk-secret"), backoff=0.01) as c:
        r = await c.chat(MSG)
    assert srv.auth_headers == ["Bearer sk-secret"]
    assert "sk-secret" not in r.model_dump_json()


@pytest.mark.parametrize("stream", [True, False])
async def test_ollama_native_api(fake, stream):
    brain = ScriptedBrain([Reply.call("get_weather", {"city": "Oslo"})])
    srv = fake(brain)
    ep = Endpoint(srv.base_url.removesuffix("/v1"), "fake-model", api="ollama")
    async with ChatClient(ep, backoff=0.01) as c:
        r = await c.chat([*MSG, {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "1"}],
            tools=[{"type": "function", "function": {"name": "get_weather"}}], stream=stream, max_tokens=5)
    assert r.tool_calls[0].name == "get_weather" and r.tool_calls[0].arguments == {"city": "Oslo"}
    assert r.server_timings["eval_count"] == r.usage.completion_tokens
    sent = brain.requests[0]
    assert sent["options"] == {"num_predict": 5}
    assert sent["messages"][1]["tool_calls"][0]["function"]["arguments"] == {"a": 1}  # objects, not strings


def test_recover_text_calls_shapes():
    fenced = 'Sure.\n```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```'
    tagged = '<tool_call>\n{"name": "kanban_show", "arguments": {}}\n</tool_call>'
    bare = '{"name": "get_orders", "arguments": {"user_id": "u-1"}}'
    nested = '{"tool_calls": [{"function": {"name": "a", "arguments": "{\\"x\\": 1}"}}]}'
    for text, name in [(fenced, "get_weather"), (tagged, "kanban_show"), (bare, "get_orders"), (nested, "a")]:
        calls = recover_text_calls(text)
        assert [c.name for c in calls] == [name]
        assert calls[0].in_text and calls[0].raw_text
    assert recover_text_calls("The weather is nice.") == []
    assert recover_text_calls('{"not": "a call"}') == []


class _DropReused:
    """A real HTTP/1.1 server that advertises keep-alive but closes a connection, unanswered, when a request
    arrives on it after the first (every request when `drop_all`): llama-server closes its connections after
    each streamed response, so a pooled client's next request on one is never answered."""

    def __init__(self, drop_all: bool = False):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        outer = self
        self.seen = 0

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):  # noqa: N802
                outer.seen += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.served = getattr(self, "served", 0) + 1
                if drop_all or self.served > 1:
                    self.close_connection = True
                    return
                data = b'{"choices":[{"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return Endpoint(base_url=f"http://127.0.0.1:{self.httpd.server_address[1]}/v1", model="m")

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


async def test_a_kept_alive_connection_the_server_let_go_is_retried_at_once_and_not_counted():
    srv = _DropReused()
    with srv as ep:
        async with ChatClient(ep, retries=3, backoff=5.0) as c:  # a counted retry would sleep 5 s
            results = [await c.chat(MSG, stream=False) for _ in range(4)]
    assert [r.content for r in results] == ["ok"] * 4 and all(r.events == [] for r in results)
    assert srv.seen == 7  # each reuse was dropped unanswered, then served on a fresh connection


async def test_a_server_that_never_answers_still_counts_every_retry():
    srv = _DropReused(drop_all=True)
    with srv as ep:
        async with ChatClient(ep, retries=2, backoff=0.01) as c:
            with pytest.raises(InfraError) as e:
                await c.chat(MSG, stream=False)
    assert len(e.value.events) == 3 and {ev.kind for ev in e.value.events} == {"stream_reset"}
    assert srv.seen == 4  # one free try, then the client's three counted tries
