"""A lean HTTP/1.1 streaming client for timed calls, so the client's own cost stays out of the figures.

Why not httpx for the timed calls: at 32-64 streams on a small CPU, httpx's connection-pool bookkeeping
and its layered async iterators cost milliseconds per request and ~100 µs per chunk, and every
microsecond spent there is added to the TTFT and gaps the client records (see bench/measurement_truth.py).
This client does the minimum on the hot path: one `recvmsg()` per arrival, stamped with the kernel's
receive time where the OS gives it (see `ktime.py`; otherwise the moment the read returns), chunked
framing and SSE line splitting on bytes; JSON is parsed only after the stream has ended.

It speaks OpenAI-compatible chat completions over http:// or https:// with keep-alive connections
(one per request in flight) and returns the same `ChatResult` as `ChatClient`, so the per-request
figures are computed by the same code. Untimed requests (probes) keep using `ChatClient`.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

from ..client.parse import make_call, split_think
from ..core.errors import EndpointError, InfraError
from ..core.types import ChatResult, InfraEvent, Timing, Usage
from .ktime import Conn, TlsConn


def _usage(u: dict | None) -> Usage:
    if not u:
        return Usage()
    details = u.get("prompt_tokens_details") or {}
    cdetails = u.get("completion_tokens_details") or {}
    return Usage(prompt_tokens=u.get("prompt_tokens"), completion_tokens=u.get("completion_tokens"),
                 cached_tokens=details.get("cached_tokens"), reasoning_tokens=cdetails.get("reasoning_tokens"))


def _infra(kind: str, detail: str) -> InfraError:
    return InfraError(detail, [InfraEvent(kind=kind, detail=detail, at=time.time(), retried=False)])


IDLE_MAX_S = 2.0
"""Kept-alive connections idle longer than this are closed rather than reused (servers time them out;
a new connection costs nothing in the figures: the clock starts after it is open)."""


class RawStreamClient:
    """POST /chat/completions with stream=true; one keep-alive connection per request in flight."""

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, timeout: float = 600.0):
        u = urlsplit(base_url.rstrip("/"))
        if u.scheme not in ("http", "https"):
            raise EndpointError(f"{base_url}: only http:// and https:// endpoints are supported")
        self.model = model
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or (443 if u.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if u.scheme == "https" else None
        self.path = (u.path or "") + "/chat/completions"
        self.host_header = u.netloc
        self.api_key = api_key
        self.timeout = timeout
        self._idle: list[tuple[Conn | TlsConn, float]] = []
        self.kernel_stamps = 0
        """Reads whose stamp came from the kernel (SO_TIMESTAMPNS); the rest are read times."""

    async def __aenter__(self) -> RawStreamClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for c, _ in idle:
            c.close()

    def body(self, messages: list[dict[str, Any]], tools: list[dict] | None, params: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": messages, "stream": True,
                                "stream_options": {"include_usage": True}, **params}
        if tools:
            body["tools"] = tools
        return body

    async def chat(self, messages: list[dict[str, Any]], *, tools: list[dict] | None = None, **params: Any) -> ChatResult:
        body = self.body(messages, tools, params)
        try:
            return await asyncio.wait_for(self._once(body), self.timeout)
        except TimeoutError:
            raise _infra("timeout", f"timed out after {self.timeout:.0f}s") from None
        except (ConnectionError, OSError) as e:
            raise _infra("stream_reset", f"connection failed mid-request: {type(e).__name__}: {e}") from None
        except (ValueError, IndexError) as e:  # not HTTP, or broken chunked framing
            raise _infra("bad_http", f"malformed HTTP response: {type(e).__name__}: {e}") from None

    async def _connect(self, fresh: bool = False) -> tuple[Conn | TlsConn, bool]:
        now = time.monotonic()
        while self._idle and not fresh:
            c, since = self._idle.pop()
            if now - since < IDLE_MAX_S and c.idle_ok():
                return c, True
            c.close()
        if self.ssl is not None:
            return await TlsConn.connect(self.host, self.port, self.ssl), False
        return await Conn.connect(self.host, self.port), False

    async def _send(self, data: bytes) -> tuple[Conn | TlsConn, Timing, bytearray, float]:
        """Send the request; read until the response head is complete. Returns (conn, timing, bytes, stamp)."""
        conn, reused = await self._connect()
        for attempt in (0, 1):
            timing = Timing(sent=time.perf_counter())
            buf = bytearray()
            try:
                await conn.send(data)
                while b"\r\n\r\n" not in buf:
                    chunk, t = await conn.recv(await self._head_limit(conn, buf))
                    if not chunk:
                        raise ConnectionResetError("connection closed before the response head")
                    buf += chunk
                return conn, timing, buf, t
            except (ConnectionError, OSError):
                conn.close()
                if not reused or attempt:  # a stale keep-alive connection: once more, on a fresh one
                    raise
                conn, reused = await self._connect(fresh=True)
        raise AssertionError("unreachable")

    @staticmethod
    async def _head_limit(conn: Conn | TlsConn, buf: bytearray) -> int:
        """Read exactly to the end of the response head, so the body starts on a fresh stamp."""
        ahead = await conn.peek(8192)
        if not ahead:
            return 1 << 16
        i = (bytes(buf[-3:]) + ahead).find(b"\r\n\r\n")
        return len(ahead) if i < 0 else i + 4 - len(buf[-3:])

    @staticmethod
    async def _chunk_limit(conn: Conn | TlsConn, frame: bytearray, need: int | None) -> int:
        """How many bytes complete the current HTTP chunk (one server write): reading exactly that much
        gives each chunk its own arrival stamp even when several are already waiting."""
        if need is not None:
            return max(1, need - len(frame))
        ahead = await conn.peek(64)
        if not ahead:
            return 1 << 16
        head = bytes(frame) + ahead
        i = head.find(b"\r\n")
        if i < 0:
            return len(ahead)
        try:
            size = int(head[:i].split(b";")[0] or b"0", 16)
        except ValueError:
            return len(ahead)
        total = i + 2 + (size + 2 if size else 2)
        return max(1, total - len(frame))

    async def _once(self, body: dict[str, Any]) -> ChatResult:
        payload = json.dumps(body).encode()
        head = (f"POST {self.path} HTTP/1.1\r\nHost: {self.host_header}\r\nContent-Type: application/json\r\n"
                f"Accept: text/event-stream\r\nContent-Length: {len(payload)}\r\n"
                + (f"Authorization: Bearer {self.api_key}\r\n" if self.api_key else "") + "\r\n").encode()
        conn, timing, buf, t_head = await self._send(head + payload)
        k0 = conn.kernel_stamps
        timing.first_byte = t_head
        i = buf.index(b"\r\n\r\n")
        lines = bytes(buf[:i]).decode("latin-1").split("\r\n")
        rest = bytes(buf[i + 4:])
        status = int(lines[0].split(" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = int(headers["content-length"]) if "content-length" in headers else None
        try:
            events, complete = await self._read_body(conn, chunked, length, status < 400, rest, t_head)
        except BaseException:
            conn.close()
            raise
        timing.end = events[-1][0] if events and status < 400 else time.perf_counter()
        self.kernel_stamps += conn.kernel_stamps - k0
        if complete and headers.get("connection", "").lower() != "close":
            self._idle.append((conn, time.monotonic()))
        else:
            conn.close()
        if status >= 400:
            text = b"".join(e for _, e in events).decode("utf-8", "replace")
            try:
                err = json.loads(text)
                err = err.get("error", err) if isinstance(err, dict) else err
                text = str(err.get("message", err) if isinstance(err, dict) else err)
            except ValueError:
                pass
            detail = f"HTTP {status}: {' '.join(text.split())[:300]}"
            if status >= 500 or status == 429:
                raise _infra("http_5xx" if status >= 500 else "http_429", detail)
            raise EndpointError(f"refused the request: {detail}",
                                [InfraEvent(kind="http_4xx", detail=detail, at=time.time(), retried=False)])
        return self._result(events, timing, body)

    async def _read_body(self, conn: Conn | TlsConn, chunked: bool, length: int | None, sse: bool,
                         first: bytes, t_first: float) -> tuple[list[tuple[float, bytes]], bool]:
        """(stamp, bytes) per SSE data line (or raw body pieces for errors), and whether the body ended cleanly.

        A line's stamp is the arrival of the read that completed it."""
        out: list[tuple[float, bytes]] = []
        frame = bytearray()   # undecoded transfer bytes
        text = bytearray()    # decoded body bytes not yet split into lines
        need: int | None = None  # bytes left in the current chunk (+2 for its CRLF); None = expecting a size line
        got = 0
        done = False
        data, t = first, t_first
        while True:
            if not chunked:
                text += data
                got += len(data)
                done = length is not None and got >= length
            else:
                frame += data
                while True:
                    if need is None:
                        i = frame.find(b"\r\n")
                        if i < 0:
                            break
                        size = int(bytes(frame[:i]).split(b";")[0] or b"0", 16)
                        del frame[:i + 2]
                        if size == 0:
                            done = True
                            break
                        need = size + 2
                    if len(frame) < need:
                        break
                    text += frame[:need - 2]
                    del frame[:need]
                    need = None
            if sse:
                self._split(out, text, t)
            if done:
                return self._flush(out, text, t, sse), True
            limit = await self._chunk_limit(conn, frame, need) if chunked else 1 << 16
            data, t = await conn.recv(limit)
            if not data:
                return self._flush(out, text, t, sse), length is None and not chunked

    @staticmethod
    def _split(out: list[tuple[float, bytes]], text: bytearray, t: float) -> None:
        while True:
            i = text.find(b"\n")
            if i < 0:
                return
            line = bytes(text[:i]).rstrip(b"\r")
            del text[:i + 1]
            if line.startswith(b"data:"):
                out.append((t, line[5:].strip()))

    def _flush(self, out: list[tuple[float, bytes]], text: bytearray, t: float, sse: bool) -> list[tuple[float, bytes]]:
        if sse:
            text += b"\n"
            self._split(out, text, t)
        elif text:
            out.append((t, bytes(text)))
        return out

    def _result(self, events: list[tuple[float, bytes]], timing: Timing, body: dict[str, Any]) -> ChatResult:
        chunks: list[dict[str, Any]] = []
        content: list[str] = []
        reasoning: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        finish = usage = timings = None
        done = False
        for t, data in events:
            if data == b"[DONE]":
                done = True
                continue
            try:
                obj = json.loads(data)
            except ValueError:
                raise _infra("bad_json", f"stream chunk is not JSON: {data[:80]!r}") from None
            if isinstance(obj, dict) and "error" in obj:
                raise _infra("stream_error", f"server error mid-stream: {str(obj['error'])[:200]}")
            chunks.append(obj)
            if obj.get("usage"):
                usage = obj["usage"]
            if obj.get("timings"):
                timings = obj["timings"]
            for choice in obj.get("choices") or []:
                delta = choice.get("delta") or {}
                text = delta.get("content") or ""
                think = delta.get("reasoning_content") or delta.get("reasoning") or ""
                tcs = delta.get("tool_calls") or []
                if text or think or tcs:
                    timing.chunks.append(t)
                    if timing.first_token is None:
                        timing.first_token = t
                content.append(text)
                reasoning.append(think)
                for tc in tcs:
                    slot = calls.setdefault(tc.get("index", 0), {"id": "", "name": "", "args": ""})
                    fn = tc.get("function") or {}
                    slot["id"] = tc.get("id") or slot["id"]
                    slot["name"] += fn.get("name") or ""
                    slot["args"] += fn.get("arguments") or ""
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
        if not chunks:
            raise _infra("bad_json", "reply is not an SSE stream")
        if not done and finish is None:
            raise _infra("stream_truncated", "stream ended before the reply was complete (no finish_reason)")
        text, think = split_think("".join(content))
        return ChatResult(
            content=text, reasoning="".join(reasoning) + think,
            tool_calls=[make_call(c["name"], c["args"], c["id"]) for _, c in sorted(calls.items())],
            finish_reason=finish, usage=_usage(usage), timing=timing, server_timings=timings,
            request=body, response=chunks,
        )
