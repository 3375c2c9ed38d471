"""An in-process fake model server that speaks the real wire protocols (HTTP, SSE, NDJSON).

For tests only: it makes every scoring and fault path deterministic. A `Brain` decides each reply from
the request body; a `Reply` says what goes on the wire, faults included (503 "Loading model", a reset
mid-stream, a stream cut before its end, a non-JSON body, a delay).

    with FakeServer(ScriptedBrain([Reply.text("hi")])) as srv:
        ChatClient(Endpoint(srv.base_url, "fake-model"))...
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One response. Build with the classmethods."""

    content: str = ""
    reasoning: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    """[{"name": ..., "arguments": {...} or "raw string"}]"""
    status: int = 200
    error_body: str | None = None
    fault: str | None = None
    """None, 'reset' (close the socket mid-stream), 'truncate' (end without finish_reason/[DONE]), 'non_json'."""
    fault_after: int = 2
    """Chunks sent before a reset/truncate."""
    delay: float = 0.0
    """Seconds to wait before answering."""
    chunk_gap: float = 0.0
    """Seconds between streamed chunks."""
    usage: dict[str, Any] | None = None
    timings: dict[str, Any] | None = None
    raw: list[str] | None = None
    """Hostile replies: each string is sent verbatim as one SSE `data:` payload (streamed), or the first one is
    the whole body (not streamed), whatever shape it has; a streamed raw reply ends with `[DONE]`."""
    endless: str | None = None
    """'content': content chunks that never end; 'ping': `: ping` SSE comments that never end (until the
    client goes away)."""

    @classmethod
    def text(cls, content: str, **kw: Any) -> Reply:
        return cls(content=content, **kw)

    @classmethod
    def call(cls, name: str, arguments: dict | str | None = None, **kw: Any) -> Reply:
        return cls(tool_calls=[{"name": name, "arguments": arguments if arguments is not None else {}}], **kw)

    @classmethod
    def calls(cls, *pairs: tuple[str, dict | str], **kw: Any) -> Reply:
        return cls(tool_calls=[{"name": n, "arguments": a} for n, a in pairs], **kw)

    @classmethod
    def http_error(cls, status: int, message: str) -> Reply:
        return cls(status=status, error_body=json.dumps({"error": {"message": message, "code": status}}))

    @classmethod
    def loading(cls) -> Reply:
        return cls.http_error(503, "Loading model")

    @classmethod
    def hostile(cls, *payloads: Any, **kw: Any) -> Reply:
        """A reply of arbitrary shape: each payload (JSON-encoded unless already a string) is one chunk."""
        return cls(raw=[p if isinstance(p, str) else json.dumps(p) for p in payloads], **kw)


Brain = Callable[[dict[str, Any]], Reply]


class ScriptedBrain:
    """Replies in order; repeats the last one when the script runs out (or raises if `strict`)."""

    def __init__(self, replies: list[Reply], strict: bool = False):
        self.replies = list(replies)
        self.strict = strict
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(body)
            if len(self.replies) == 1 and not self.strict:
                return self.replies[0]
            if not self.replies:
                raise AssertionError("script exhausted")
            return self.replies.pop(0)


class ByConversation:
    """Replies chosen per conversation: `script(messages) -> Reply` (safe under concurrency)."""

    def __init__(self, script: Callable[[list[dict[str, Any]]], Reply]):
        self.script = script
        self.requests: list[dict[str, Any]] = []

    def __call__(self, body: dict[str, Any]) -> Reply:
        self.requests.append(body)
        return self.script(body.get("messages", []))


def _tool_call_objs(reply: Reply) -> list[dict[str, Any]]:
    out = []
    for i, c in enumerate(reply.tool_calls):
        args = c["arguments"] if isinstance(c["arguments"], str) else json.dumps(c["arguments"])
        out.append({"index": i, "id": f"call_{uuid.uuid4().hex[:8]}", "type": "function",
                    "function": {"name": c["name"], "arguments": args}})
    return out


def _usage(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    if reply.usage:
        return reply.usage
    prompt = sum(len(str(m.get("content") or "").split()) for m in body.get("messages", [])) + 5
    completion = max(1, len(reply.content.split()) + len(reply.reasoning.split()) + 8 * len(reply.tool_calls))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path in ("/health", "/v1/health"):
            self._json(200, {"status": "ok"})
        elif self.path == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in self.server.models]})
        elif self.path == "/api/tags":
            self._json(200, {"models": [{"name": m, "model": m} for m in self.server.models]})
        else:
            self._json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.auth_headers.append(self.headers.get("Authorization"))
        if self.server.models and body.get("model") not in self.server.models:
            self._json(404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}})
            return
        reply = self.server.brain(body)
        if reply.delay:
            time.sleep(reply.delay)
        if reply.status != 200:
            data = (reply.error_body or "").encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        ollama = self.path == "/api/chat"
        if reply.fault == "non_json":
            data = b"<html>502 Bad Gateway</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        streamed = body.get("stream", False if not ollama else True)
        if reply.raw is not None and not streamed:
            self._raw_body(reply.raw[0].encode("utf-8", "surrogatepass"))
            return
        if not streamed:
            self._json(200, self._full(reply, body, ollama))
            return
        self._stream(reply, body, ollama)

    def _raw_body(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    # -- non-streaming --------------------------------------------------------------------------------

    def _full(self, reply: Reply, body: dict, ollama: bool) -> dict[str, Any]:
        usage = _usage(reply, body)
        calls = _tool_call_objs(reply)
        msg: dict[str, Any]
        if ollama:
            msg = {"role": "assistant", "content": reply.content, "thinking": reply.reasoning or None,
                   "tool_calls": [{"function": {"name": c["function"]["name"],
                                                "arguments": json.loads(c["function"]["arguments"])}} for c in calls]}
            return {"model": body.get("model"), "message": msg, "done": True, "done_reason": "stop",
                    "prompt_eval_count": usage["prompt_tokens"], "eval_count": usage["completion_tokens"],
                    "eval_duration": 1_000_000, "prompt_eval_duration": 1_000_000}
        msg = {"role": "assistant", "content": reply.content or None}
        if reply.reasoning:
            msg["reasoning_content"] = reply.reasoning
        if calls:
            msg["tool_calls"] = [{k: v for k, v in c.items() if k != "index"} for c in calls]
        out = {"id": "chatcmpl-fake", "object": "chat.completion", "model": body.get("model"),
               "choices": [{"index": 0, "message": msg, "finish_reason": "tool_calls" if calls else "stop"}],
               "usage": usage}
        if reply.timings:
            out["timings"] = reply.timings
        return out

    # -- streaming -----------------------------------------------------------------------------------

    def _pieces(self, reply: Reply, body: dict, ollama: bool) -> list[dict[str, Any]]:
        """The chunk objects for this reply, in order (without the terminating [DONE])."""
        words = [w + " " for w in reply.content.split(" ")] if reply.content else []
        if words:
            words[-1] = words[-1][:-1]
        think = [w + " " for w in reply.reasoning.split(" ")] if reply.reasoning else []
        calls = _tool_call_objs(reply)
        usage = _usage(reply, body)
        if ollama:
            out: list[dict[str, Any]] = [{"message": {"role": "assistant", "content": "", "thinking": t}, "done": False}
                                         for t in think]
            out += [{"message": {"role": "assistant", "content": w}, "done": False} for w in words]
            if calls:
                out.append({"message": {"role": "assistant", "content": "", "tool_calls": [
                    {"function": {"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}}
                    for c in calls]}, "done": False})
            out.append({"message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
                        "prompt_eval_count": usage["prompt_tokens"], "eval_count": usage["completion_tokens"],
                        "eval_duration": 1_000_000, "prompt_eval_duration": 1_000_000})
            return out

        def chunk(delta: dict, finish: str | None = None) -> dict[str, Any]:
            return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": body.get("model"),
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        out = [chunk({"role": "assistant", "content": ""})]
        out += [chunk({"reasoning_content": t}) for t in think]
        out += [chunk({"content": w}) for w in words]
        for c in calls:  # name first, then arguments in two pieces, as real servers do
            args = c["function"]["arguments"]
            half = len(args) // 2
            out.append(chunk({"tool_calls": [{"index": c["index"], "id": c["id"], "type": "function",
                                              "function": {"name": c["function"]["name"], "arguments": ""}}]}))
            out.append(chunk({"tool_calls": [{"index": c["index"], "function": {"arguments": args[:half]}}]}))
            out.append(chunk({"tool_calls": [{"index": c["index"], "function": {"arguments": args[half:]}}]}))
        out.append(chunk({}, "tool_calls" if calls else "stop"))
        final: dict[str, Any] = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "choices": [], "usage": usage}
        if reply.timings:
            final["timings"] = reply.timings
        out.append(final)
        return out

    def _stream(self, reply: Reply, body: dict, ollama: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson" if ollama else "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if reply.endless or reply.raw is not None:
            self._hostile_stream(reply, ollama)
            return
        pieces = self._pieces(reply, body, ollama)
        for i, obj in enumerate(pieces):
            if reply.fault in ("reset", "truncate") and i >= reply.fault_after:
                if reply.fault == "reset":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                break
            if self.server.stamp:  # when this chunk left, on the clock every local process shares (benches)
                obj = {**obj, "x_sent": time.perf_counter()}
            line = json.dumps(obj) + "\n" if ollama else f"data: {json.dumps(obj)}\n\n"
            self._write_chunk(line.encode())
            if reply.chunk_gap:
                time.sleep(reply.chunk_gap)
        if reply.fault != "truncate" and not ollama:
            self._write_chunk(b"data: [DONE]\n\n")
        self._write_chunk(b"")

    def _hostile_stream(self, reply: Reply, ollama: bool) -> None:
        try:
            for payload in reply.raw or []:
                line = payload + "\n" if ollama else f"data: {payload}\n\n"
                self._write_chunk(line.encode("utf-8", "surrogatepass"))
            while reply.endless:
                piece = {"choices": [{"index": 0, "delta": {"content": "la "}, "finish_reason": None}]}
                self._write_chunk(b": ping\n\n" if reply.endless == "ping" else f"data: {json.dumps(piece)}\n\n".encode())
                time.sleep(reply.chunk_gap or 0.01)
            if not ollama:
                self._write_chunk(b"data: [DONE]\n\n")
            self._write_chunk(b"")
        except OSError:  # the client gave up (deadline): the endless stream ends here
            self.close_connection = True

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    brain: Brain
    models: list[str]
    auth_headers: list[str | None]
    stamp = False
    """Each streamed chunk carries `x_sent`, its send time (`time.perf_counter()`, CLOCK_MONOTONIC on Linux)."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (a deadline, a test's end) is no error of the fake's: stay quiet."""
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, BrokenPipeError)):
            super().handle_error(request, client_address)


class FakeServer:
    """Runs in a background thread on 127.0.0.1; `base_url` ends in /v1."""

    def __init__(self, brain: Brain, models: list[str] | None = None, port: int = 0):
        self.httpd = _Server(("127.0.0.1", port), _Handler)  # port 0: any free one; a given one: a server back
        self.httpd.brain = brain
        self.httpd.models = models if models is not None else ["fake-model"]
        self.httpd.auth_headers = []
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def auth_headers(self) -> list[str | None]:
        return self.httpd.auth_headers

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
