"""Async chat client for OpenAI-compatible servers and Ollama's native `/api/chat`.

Retries what the infrastructure gets wrong (5xx, "Loading model" 503s, resets, truncated or non-JSON
replies) with backoff and records each as an InfraEvent; raises EndpointError at once for what retrying
cannot fix (wrong model name, bad URL, rejected parameters).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..core.errors import ContextExhausted, EndpointError, InfraError, ServerRejectedOutput
from ..core.types import ChatResult, InfraEvent, Timing, Usage
from . import shapes
from .parse import make_call, parse_arguments, split_think
from .shapes import BadReply


class _Retry(Exception):
    """Internal: this try failed for an infrastructure reason; try again."""

    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind, self.detail = kind, detail


class _Unanswered(_Retry):
    """Internal: the server closed the connection before a byte of the response, as it does to a kept-alive
    connection it has already let go (llama-server closes every connection after a streamed response while
    advertising keep-alive). The request was never served: try once more at once, on a fresh connection."""


@dataclass
class Endpoint:
    """Where to send requests. The API key lives only in memory (never in the store)."""

    base_url: str
    model: str
    api: str = "openai"  # or "ollama"
    api_key: str | None = field(default=None, repr=False)

    def public(self) -> dict[str, str]:
        """What may be stored: no key."""
        return {"base_url": self.base_url, "model": self.model, "api": self.api}


_CONTEXT_FULL = re.compile(
    r"exceeds? the available context size"  # llama-server
    r"|maximum context length"  # vLLM, OpenAI
    r"|context_length_exceeded"  # OpenAI's error code
    r"|longer than the model's context length",  # SGLang
    re.IGNORECASE)
"""A 400 that says the conversation no longer fits the server's context window (see ContextExhausted)."""

_VLLM_TOOLS_HINT = (
    " (vLLM needs `--enable-auto-tool-choice --tool-call-parser <parser>` to accept `tools`)"
)


_BEARER = re.compile(r"(?i)\b(bearer|api[-_ ]?key[\"']?\s*[:=]\s*[\"']?)\s*[A-Za-z0-9._~+/=-]{8,}")


def redact(text: str, key: str | None) -> str:
    """A server's words with the API key taken out (the exact key, and `Bearer ...`/`api_key=...` forms):
    some servers echo the key in an error body, and what they say is stored and printed."""
    if key:
        text = text.replace(key, "[redacted]")
    return _BEARER.sub(lambda m: m.group(1) + " [redacted]" if m.group(1).lower() == "bearer" else m.group(1)
                       + "[redacted]", text)


def _error_text(resp: httpx.Response) -> str:
    try:
        body = resp.json()
        err = body.get("error", body) if isinstance(body, dict) else body
        msg = err.get("message", err) if isinstance(err, dict) else err
        return " ".join(str(msg).split())[:300]
    except (json.JSONDecodeError, ValueError):
        return " ".join(resp.text.split())[:300]


class ChatClient:
    """One endpoint, one model. Use `async with ChatClient(...) as c: await c.chat(messages)`."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        timeout: float = 300.0,
        retries: int = 3,
        backoff: float = 1.0,
        http: httpx.AsyncClient | None = None,
        pooled: bool = True,
        request_timeout: float | None = None,
    ):
        self.endpoint = endpoint
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.request_timeout = request_timeout
        """Total seconds one try may take, end to end; None: derived per request (see `deadline`)."""
        headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
        self._http = http or httpx.AsyncClient(
            # pool=None: waiting for a free connection is the client's own limit, never a server timeout
            timeout=httpx.Timeout(timeout, connect=10.0, pool=None), headers=headers,
            # drop idle connections well before servers do (llama-server's cpp-httplib: 5 s, httpx's default
            # is also 5 s): reusing one the server is closing fails the request ("disconnected without sending
            # a response"). llama-server also closes after every streamed response; see _Unanswered.
            # Unpooled (a fresh connection per request) for soaks, where every reset counted must be the server's.
            # no cap on connections: the runner's -c bounds what is in flight
            limits=httpx.Limits(max_connections=None, keepalive_expiry=2.0) if pooled
            else httpx.Limits(max_keepalive_connections=0),
        )

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._http.aclose()

    # -- public -------------------------------------------------------------------------------------

    async def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | dict | None = None,
        stream: bool = True,
        **params: Any,
    ) -> ChatResult:
        """Send one chat turn, retrying infrastructure failures; returns the parsed, timed result."""
        body = self._body(messages, tools, tool_choice, stream, params)
        deadline = self.deadline(params.get("max_tokens"))
        events: list[InfraEvent] = []
        free, tries = True, 0  # free: one unanswered try (a kept-alive connection the server let go) is no event
        while True:
            try:
                result = await self._bounded(body, stream, deadline, params.get("max_tokens"))
                result.events = events
                return result
            except _Retry as r:
                if isinstance(r, _Unanswered) and free:
                    free = False
                    continue
                last = tries == self.retries
                detail = redact(r.detail, self.endpoint.api_key)
                events.append(InfraEvent(kind=r.kind, detail=detail, at=time.time(), retried=not last))
                if last:
                    break
                await asyncio.sleep(self._delay(tries, r.kind))
                tries += 1
        raise InfraError(
            f"{self.endpoint.base_url}: {events[-1].detail} (gave up after {len(events)} tries)", events
        )

    # -- wire formats -------------------------------------------------------------------------------

    def _url(self) -> str:
        base = self.endpoint.base_url.rstrip("/")
        if self.endpoint.api == "ollama":
            return base.removesuffix("/v1") + "/api/chat"
        return base + "/chat/completions"

    def _body(self, messages, tools, tool_choice, stream, params) -> dict[str, Any]:
        if self.endpoint.api == "ollama":
            return _ollama_body(self.endpoint.model, messages, tools, stream, params)
        body: dict[str, Any] = {"model": self.endpoint.model, "messages": messages, "stream": stream, **params}
        if tools:
            body["tools"] = tools
            if tool_choice is not None:
                body["tool_choice"] = tool_choice
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def deadline(self, max_tokens: Any) -> float:
        """Total seconds one try may take. The read timeout bounds only the gap between reads, so a server
        that streams forever (content without end, or `: ping` comments) would never time out: this bounds the
        whole try at the read timeout plus max_tokens at a floor speed of FLOOR_TOK_S."""
        if self.request_timeout:
            return self.request_timeout
        tokens = max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else DEFAULT_TOKENS
        return self.timeout + tokens / FLOOR_TOK_S

    async def _bounded(self, body: dict[str, Any], stream: bool, deadline: float, max_tokens: Any) -> ChatResult:
        try:
            return await asyncio.wait_for(self._once(body, stream, max_tokens), deadline)
        except TimeoutError as e:
            raise _Retry("timeout", f"no complete reply within the request deadline of {deadline:.0f}s "
                                    "(--request-timeout)") from e

    def _delay(self, attempt: int, kind: str) -> float:
        base = self.backoff * (2**attempt)
        return min(base * (3 if kind == "loading_model" else 1), 60.0)

    # -- one try ------------------------------------------------------------------------------------

    async def _once(self, body: dict[str, Any], stream: bool, max_tokens: Any = None) -> ChatResult:
        timing = Timing(sent=time.perf_counter())
        try:
            async with self._http.stream("POST", self._url(), json=body) as resp:
                timing.first_byte = time.perf_counter()
                await self._check_status(resp)
                if stream:
                    acc = _StreamAcc(self.endpoint.api, max_tokens)
                    await acc.consume(resp, timing)
                    result = acc.result(timing)
                else:
                    raw = await resp.aread()
                    timing.end = time.perf_counter()
                    result = self._parse_full(raw, timing)
        except httpx.TimeoutException as e:
            raise _Retry("timeout", f"timed out ({type(e).__name__})") from e
        except httpx.ConnectError as e:
            raise _Retry("connect_error", f"cannot connect: {e}") from e
        except httpx.RemoteProtocolError as e:
            if "without sending a response" in str(e):
                raise _Unanswered("stream_reset", f"connection closed before any response: {e}") from e
            raise _Retry("stream_reset", f"connection reset mid-response: {e}") from e
        except (httpx.ReadError, httpx.WriteError) as e:
            raise _Retry("stream_reset", f"connection reset mid-response: {e}") from e
        except BadReply as e:
            raise _Retry("bad_reply", f"malformed reply: {e.detail}") from e
        result.request = body
        return result

    async def _check_status(self, resp: httpx.Response) -> None:
        if resp.status_code < 400:
            return
        await resp.aread()
        text = redact(_error_text(resp), self.endpoint.api_key)
        code = resp.status_code
        if code == 500 and "failed to parse tool call" in text.lower():
            raise ServerRejectedOutput(f"HTTP {code}: {text}")
        if code in (400, 413) and _CONTEXT_FULL.search(text):
            raise ContextExhausted(f"HTTP {code}: {text}")
        if code in (405, 501):  # no chat endpoint here at all (e.g. a static file server on the port)
            raise EndpointError(f"{self._url()} answered HTTP {code} ({text[:80]}): this is not an "
                                f"{'Ollama' if self.endpoint.api == 'ollama' else 'OpenAI-compatible'} chat "
                                "endpoint (wrong port or path?)",
                                [InfraEvent(kind="http_4xx", detail=f"HTTP {code}: {text}", at=time.time(),
                                            retried=False)])
        if code == 503 and "loading" in text.lower():
            raise _Retry("loading_model", f"503 Loading model: {text}")
        if code >= 500 or code == 429:
            raise _Retry("http_5xx" if code >= 500 else "http_429", f"HTTP {code}: {text}")
        event = InfraEvent(kind="http_4xx", detail=f"HTTP {code}: {text}", at=time.time(), retried=False)
        hint = _VLLM_TOOLS_HINT if "tool" in text.lower() and ("auto" in text.lower() or "parser" in text.lower()) else ""
        if code in (401, 403):
            hint = " (check the API key: --api-key-env VAR)"
        if code == 404 and "model" in text.lower():
            hint = f" (is the model name right? asked for {self.endpoint.model!r})"
        raise EndpointError(f"{self.endpoint.base_url} refused the request: HTTP {code}: {text}{hint}", [event])

    def _parse_full(self, raw: bytes, timing: Timing) -> ChatResult:
        try:
            data = shapes.loads(raw.decode("utf-8", "replace"))
        except ValueError as e:
            raise _Retry("bad_json", f"reply is not JSON: {raw[:80]!r}") from e
        if self.endpoint.api == "ollama":
            return _ollama_result(shapes.obj(data, "reply"), timing)
        data = shapes.obj(data, "reply")
        choices = shapes.opt_list(data.get("choices"), "reply.choices")
        if not choices:
            raise _Retry("bad_json", f"reply has no choices[0].message: {str(data)[:120]}")
        choice = shapes.obj(choices[0], "choices[0]")
        msg = shapes.obj(choice.get("message"), "choices[0].message")
        content, think = split_think(shapes.opt_text(msg.get("content"), "message.content"))
        notes: list[str] = []
        calls = [_full_call(c, i, notes) for i, c in
                 enumerate(shapes.opt_list(msg.get("tool_calls"), "message.tool_calls"))]
        timing.first_token = timing.end
        reasoning = msg.get("reasoning_content") or msg.get("reasoning")
        return ChatResult(
            content=content,
            reasoning=shapes.opt_text(reasoning, "message.reasoning_content") + think,
            tool_calls=calls,
            finish_reason=_finish(choice.get("finish_reason")),
            usage=_usage(data.get("usage")),
            timing=timing,
            server_timings=shapes.opt_obj(data.get("timings"), "reply.timings") or None,
            response=data,
            normalized=notes,
        )


FLOOR_TOK_S = 2.0
"""The slowest decode a request deadline allows for (tokens per second), on top of the read timeout."""
DEFAULT_TOKENS = 4096
"""Tokens a request without max_tokens is assumed to ask for, for its deadline."""


def _finish(value: Any) -> str | None:
    return shapes.opt_text(value, "finish_reason") or None


def _full_call(c: Any, i: int, notes: list[str]) -> Any:
    """One non-streamed tool call, checked: {id?, function: {name: str, arguments: str|object}}."""
    c = shapes.obj(c, f"tool_calls[{i}]")
    fn = shapes.obj(c.get("function"), f"tool_calls[{i}].function")
    name = shapes.opt_text(fn.get("name"), f"tool_calls[{i}].function.name")
    args = shapes.arguments(fn.get("arguments"), f"tool_calls[{i}].function.arguments", notes)
    return make_call(name, args, shapes.opt_text(c.get("id"), f"tool_calls[{i}].id"))


def _usage(u: Any) -> Usage:
    u = shapes.opt_obj(u, "usage")
    if not u:
        return Usage()
    details = shapes.opt_obj(u.get("prompt_tokens_details"), "usage.prompt_tokens_details")
    cdetails = shapes.opt_obj(u.get("completion_tokens_details"), "usage.completion_tokens_details")
    return Usage(
        prompt_tokens=shapes.opt_int(u.get("prompt_tokens"), "usage.prompt_tokens"),
        completion_tokens=shapes.opt_int(u.get("completion_tokens"), "usage.completion_tokens"),
        cached_tokens=shapes.opt_int(details.get("cached_tokens"), "usage.cached_tokens"),
        reasoning_tokens=shapes.opt_int(cdetails.get("reasoning_tokens"), "usage.reasoning_tokens"),
    )


class _StreamAcc:
    """Accumulates an SSE (OpenAI) or NDJSON (Ollama) stream into one ChatResult."""

    def __init__(self, api: str, max_tokens: Any = None):
        self.api = api
        self.max_chunks = 4 * max_tokens + 64 if isinstance(max_tokens, int) and max_tokens > 0 else None
        """More content-bearing chunks than this: the server ignores max_tokens (an endless stream)."""
        self.size = 0
        self.marked = 0
        self.notes: list[str] = []
        self.chunks: list[dict[str, Any]] = []
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[int, dict[str, str]] = {}
        self.slot_of: dict[int, int] = {}
        """The wire's `index` -> the call being assembled for it (a new id at a used index starts a new call)."""
        self.finish: str | None = None
        self.usage: dict | None = None
        self.timings: dict | None = None
        self.done = False
        self.junk = ""
        """The first line that was not SSE data (shown when a reply is not a stream at all)."""

    async def consume(self, resp: httpx.Response, timing: Timing) -> None:
        async for line in resp.aiter_lines():
            data = self._payload(line)
            if data is None:
                continue
            if self.api == "ollama":
                self._ollama_chunk(data, timing)
            else:
                self._openai_chunk(data, timing)
        timing.end = time.perf_counter()
        if not self.chunks and not self.done:
            raise _Retry("bad_json", f"reply is not a {'NDJSON' if self.api == 'ollama' else 'SSE'} stream: "
                                     f"{self.junk[:80]!r}")
        if not self.done and self.finish is None:
            raise _Retry("stream_truncated", "stream ended before the reply was complete (no finish_reason)")

    def _payload(self, line: str) -> dict | None:
        line = line.strip()
        if self.api != "ollama":
            if not line.startswith("data:"):
                self.junk = self.junk or line
                return None
            line = line[5:].strip()
            if line == "[DONE]":
                self.done = True
                return None
        if not line:
            return None
        try:
            data = shapes.loads(line)
        except ValueError as e:
            raise _Retry("bad_json", f"stream chunk is not JSON: {line[:80]!r}") from e
        data = shapes.obj(data, "stream chunk")
        if "error" in data:
            raise _Retry("stream_error", f"server error mid-stream: {str(data['error'])[:200]}")
        self.chunks.append(data)
        return data

    def _mark(self, timing: Timing, *pieces: str) -> None:
        self.size += sum(len(p) for p in pieces)
        self.marked += 1
        if self.size > shapes.MAX_REPLY_BYTES:
            raise BadReply("the reply", f"over {shapes.MAX_REPLY_BYTES} characters")
        if self.max_chunks is not None and self.marked > self.max_chunks:
            raise BadReply("the stream", f"over {self.max_chunks} content chunks (max_tokens ignored)")
        now = time.perf_counter()
        timing.chunks.append(now)
        if timing.first_token is None:
            timing.first_token = now

    def _openai_chunk(self, data: dict, timing: Timing) -> None:
        if data.get("usage"):
            self.usage = shapes.obj(data["usage"], "chunk.usage")
        if data.get("timings"):
            self.timings = shapes.obj(data["timings"], "chunk.timings")
        for choice in shapes.opt_list(data.get("choices"), "chunk.choices"):
            choice = shapes.obj(choice, "chunk.choices[]")
            delta = shapes.opt_obj(choice.get("delta"), "delta")
            text = shapes.opt_text(delta.get("content"), "delta.content")
            think = shapes.opt_text(delta.get("reasoning_content") or delta.get("reasoning"), "delta.reasoning")
            tcs = shapes.opt_list(delta.get("tool_calls"), "delta.tool_calls")
            if text or think or tcs:
                self._mark(timing, text, think)
            self.content.append(text)
            self.reasoning.append(think)
            for tc in tcs:
                self._call_delta(shapes.obj(tc, "delta.tool_calls[]"), timing)
            if choice.get("finish_reason"):
                self.finish = _finish(choice["finish_reason"])

    def _call_delta(self, tc: dict[str, Any], timing: Timing) -> None:
        """One streamed tool-call delta. Some servers give every call index 0 (seen with 20+ tools): a delta that
        brings a new id, or a new name after arguments, at an index already in use starts a new call instead of
        gluing two calls into one; the repair is noted."""
        index = shapes.opt_int(tc.get("index"), "tool_calls[].index") or 0
        fn = shapes.opt_obj(tc.get("function"), "tool_calls[].function")
        new_id = shapes.opt_text(tc.get("id"), "tool_calls[].id")
        new_name = shapes.opt_text(fn.get("name"), "tool_calls[].function.name")
        slot = self.calls.get(self.slot_of.get(index, -1))
        same_id = bool(new_id) and new_id == (slot or {}).get("id")
        if slot is not None and not same_id and ((new_id and slot["id"]) or (new_name and slot["args"])):
            note = "several streamed tool calls shared one index; split by id"
            if note not in self.notes:
                self.notes.append(note)
            slot = None
        if slot is None:
            self.slot_of[index] = len(self.calls)
            slot = self.calls[len(self.calls)] = {"id": "", "name": "", "args": ""}
        slot["id"] = new_id or slot["id"]
        slot["name"] += new_name
        args = shapes.arguments(fn.get("arguments"), "tool_calls[].function.arguments", self.notes)
        slot["args"] += args
        self.size += len(args)

    def _ollama_chunk(self, data: dict, timing: Timing) -> None:
        msg = shapes.opt_obj(data.get("message"), "message")
        text = shapes.opt_text(msg.get("content"), "message.content")
        think = shapes.opt_text(msg.get("thinking"), "message.thinking")
        tcs = shapes.opt_list(msg.get("tool_calls"), "message.tool_calls")
        if text or think or tcs:
            self._mark(timing, text, think)
        self.content.append(text)
        self.reasoning.append(think)
        for tc in tcs:
            fn = shapes.obj(shapes.obj(tc, "message.tool_calls[]").get("function"), "message.tool_calls[].function")
            args = fn.get("arguments", {})  # Ollama's native shape: an object (a string is accepted too)
            self.calls[len(self.calls)] = {"id": "", "name": shapes.opt_text(fn.get("name"), "function.name"),
                                           "args": args if isinstance(args, str) else _ollama_args(args)}
        if data.get("done"):
            self.done = True
            self.finish = _finish(data.get("done_reason")) or "stop"
            self.usage = {"prompt_tokens": data.get("prompt_eval_count"), "completion_tokens": data.get("eval_count")}
            self.timings = _ollama_timings(data)

    def result(self, timing: Timing) -> ChatResult:
        content, think = split_think("".join(self.content))
        calls = [make_call(c["name"], c["args"], c["id"]) for _, c in sorted(self.calls.items())]
        return ChatResult(
            normalized=self.notes,
            content=content,
            reasoning="".join(self.reasoning) + think,
            tool_calls=calls,
            finish_reason=self.finish,
            usage=_usage(self.usage),
            timing=timing,
            server_timings=self.timings,
            response=self.chunks,
        )


# -- Ollama native ----------------------------------------------------------------------------------


def _ollama_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI-format messages to Ollama's: tool-call arguments are objects, not strings."""
    out = []
    for m in messages:
        m = dict(m)
        if m.get("tool_calls"):
            m["tool_calls"] = [
                {"function": {"name": c["function"]["name"],
                              # Ollama wants an object; a malformed call the model wrote goes back as {}
                              "arguments": parse_arguments(c["function"]["arguments"])[0] or {}}}
                for c in m["tool_calls"]
            ]
        m.pop("tool_call_id", None)
        out.append(m)
    return out


def _ollama_body(model, messages, tools, stream, params) -> dict[str, Any]:
    options = {k: v for k, v in params.items() if k in ("temperature", "top_p", "seed", "top_k")}
    if "max_tokens" in params:
        options["num_predict"] = params["max_tokens"]
    body: dict[str, Any] = {"model": model, "messages": _ollama_messages(messages), "stream": stream}
    if tools:
        body["tools"] = tools
    if options:
        body["options"] = options
    return body


def _ollama_args(args: Any) -> str:
    if not isinstance(args, dict):
        raise BadReply("message.tool_calls[].function.arguments", args)
    return json.dumps(args)


def _ollama_timings(data: dict) -> dict[str, Any]:
    keys = ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count", "eval_duration")
    return {k: data.get(k) for k in keys if k in data}


def _ollama_result(data: dict, timing: Timing) -> ChatResult:
    acc = _StreamAcc("ollama")
    acc.chunks.append(data)
    acc._ollama_chunk(data, timing)
    timing.first_token = timing.end
    timing.chunks = [timing.end] if timing.end else []
    result = acc.result(timing)
    result.response = data
    return result
