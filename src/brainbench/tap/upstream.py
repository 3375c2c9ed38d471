"""The tap's client side: HTTP/1.1 to the upstream with h11 on an asyncio Protocol, nothing more.

Every relayed piece passes through this code, and httpx's layers (httpcore, anyio, its models) cost about a
millisecond per request on a small machine, half the tap's whole latency budget. This is the least a proxy
needs: one request at a time per connection, a pool of idle connections (dropped after `KEEPALIVE_S`, before
servers drop them), and one immediate retry on a fresh connection when a kept-alive one turns out to be closed
before any byte of the response (llama-server closes every connection after a streamed reply while
advertising keep-alive).

A chunked reply (every stream) takes the fast path, `Response.relay`: the socket's own callback hands each
arrival, framing and all, to the proxy, which writes it to the agent in the same callback. No task switch,
no h11 event and no copy per piece: a tracker (`Dechunk`) only finds where the body ends, and the body bytes
it returns are read after the reply is over. Other replies (a length, or the server's close, ends them) go
through h11 (`Response.pieces`).
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import h11

KEEPALIVE_S = 2.0
"""Idle connections older than this are not reused (llama-server drops them after 5 s)."""
CONNECT_S = 10.0
READ_SIZE = 65536
GO_ON, PAUSE, STOP = 0, 1, 2
"""What `Response.relay`'s consumer says after a piece: go on, pause reading until it drained, stop (the agent
went away)."""
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_MAX_LINE = 8192


class UpstreamError(Exception):
    """The upstream could not be reached, or broke the connection mid-reply (one line)."""


class _Proto(asyncio.BufferedProtocol):
    """The upstream socket: arrivals go to a buffer for `read()` or, while a body is relayed, to `sink`.

    A BufferedProtocol: the socket is read into one reused buffer (a plain Protocol gets a fresh 256 KiB
    allocation per read, which doubled the relay's CPU per streamed piece)."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.buf = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future | None = None
        self.sink: Callable[[bytes], None] | None = None
        self._into = memoryview(bytearray(READ_SIZE))

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._into

    def buffer_updated(self, nbytes: int) -> None:
        data = self._into[:nbytes].tobytes()
        if self.sink is not None:
            self.sink(data)
        else:
            self.buf += data
            self._wake()

    def eof_received(self) -> bool:
        self._ended(None)
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self._ended(exc)

    def _ended(self, exc: BaseException | None) -> None:
        first = not self.eof
        self.eof, self.error = True, self.error or exc
        if self.sink is not None and first:
            self.sink(b"")
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def read(self) -> bytes:
        """What arrived since the last read (waits for something); b"" once the server closed."""
        if not self.buf and not self.eof:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def why(self) -> str:
        """How the connection ended, for an error line."""
        e = self.error
        return f"{type(e).__name__}: {e}" if e else "the server closed the connection"


class _Conn:
    def __init__(self, transport: Any, proto: _Proto):
        self.transport, self.proto = transport, proto
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = time.monotonic()
        self.reused = False

    def close(self) -> None:
        self.transport.abort()


class ChunkError(UpstreamError):
    """Chunked framing that cannot be read."""


class Dechunk:
    """Reads chunked framing as it arrives: each piece's body bytes, and where the message ends. Cheap on
    purpose (one `find` per chunk header, slices otherwise): it runs on the relay's path."""

    def __init__(self) -> None:
        self.left = 0
        """Bytes of the current chunk's data (and its CRLF) still to come."""
        self.data = 0
        """Of those, how many are data (the rest, up to 2, its CRLF)."""
        self.line = b""
        """A size or trailer line split across pieces."""
        self.trailers = False
        """After the last (empty) chunk: trailer lines until an empty one."""
        self.ended = False

    def feed(self, piece: bytes) -> tuple[bytes, int]:
        """(the body bytes in `piece`, the offset just past the message's end or -1 while it goes on)."""
        if not (self.left or self.line or self.trailers):  # the usual piece: exactly one whole chunk
            nl = piece.find(b"\n")
            size = piece[:nl].rstrip(b"\r")
            if nl > 0 and _HEX.fullmatch(size) and (n := int(size, 16)) and len(piece) == nl + n + 3 \
                    and piece.endswith(b"\r\n"):
                return piece[nl + 1:nl + 1 + n], -1
        return self._feed(piece)

    def _feed(self, piece: bytes) -> tuple[bytes, int]:
        out: list[bytes] = []
        i, n = 0, len(piece)
        while i < n:
            if self.left:
                j = min(n, i + self.left)
                if self.data:
                    k = min(j, i + self.data)
                    out.append(piece[i:k])
                    self.data -= k - i
                self.left -= j - i
                i = j
                continue
            nl = piece.find(b"\n", i)
            if nl < 0:
                self.line += piece[i:]
                if len(self.line) > _MAX_LINE:
                    raise ChunkError("the server sent a chunk header line too long to be one")
                break
            line, self.line, i = (self.line + piece[i:nl]).rstrip(b"\r"), b"", nl + 1
            if self.trailers:
                if not line:
                    self.ended = True
                    return b"".join(out), i
                continue
            size = line.split(b";", 1)[0].strip()
            if not _HEX.fullmatch(size):
                raise ChunkError(f"the server sent a bad chunk header {line[:40]!r}")
            self.data = int(size, 16)
            self.left = self.data + 2 if self.data else 0
            self.trailers = not self.data
        return b"".join(out), -1


class Response:
    """Status and headers of an upstream reply; its body once, by `relay` (chunked) or `pieces`."""

    def __init__(self, pool: Upstream, conn: _Conn, head: h11.Response, method: str):
        self._pool, self._conn = pool, conn
        self.status = head.status_code
        self.reason = head.reason.decode("latin-1", "replace")
        self.headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in head.headers]
        self.keep_alive = head.http_version == b"1.1" and "close" not in self.header("connection").lower()
        self.chunked = (method != "HEAD" and self.status >= 200 and self.status not in (204, 304)
                        and "chunked" in self.header("transfer-encoding").lower())
        """The body comes in chunks (every stream): `relay` can pass it on, framing and all."""

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers if k.lower() == name), "")

    async def relay(self, on_piece: Callable[[bytes, bytes], int], drain: Callable[[], Awaitable[None]]) -> bool:
        """Hand a chunked body to `on_piece(raw, body)` as it arrives, from the socket's callback: `raw` the
        bytes the server sent (framing included), `body` the body bytes among them. `on_piece` answers GO_ON,
        PAUSE (reading stops until `drain()` returns) or STOP. Returns False when it stopped; raises
        UpstreamError when the server broke off or sent bad framing."""
        conn, proto = self._conn, self._conn.proto
        scan = Dechunk()
        loop = asyncio.get_running_loop()
        state: dict[str, Any] = {}

        def sink(data: bytes) -> None:
            done = state["done"]
            if done.done():
                proto.buf += data  # after the end: not ours (and the connection is not reused)
                return
            if not data:
                proto.sink = None
                done.set_exception(UpstreamError(f"the reply broke off before its end ({proto.why()})"))
                return
            try:
                body, end = scan.feed(data)
            except ChunkError as e:
                proto.sink = None
                done.set_exception(e)
                return
            if end >= 0:
                proto.sink = None
                proto.buf += data[end:]
                data = data[:end]
            said = on_piece(data, body)
            if end >= 0 or said == STOP:
                proto.sink = None
                done.set_result(said != STOP)
            elif said == PAUSE:
                conn.transport.pause_reading()
                done.set_result(None)

        pending = conn.h11.trailing_data[0]
        complete = False
        try:
            while True:
                state["done"] = loop.create_future()
                pending += bytes(proto.buf)  # what came while nobody listened (before the start, or paused)
                proto.buf.clear()
                proto.sink = sink
                if pending:
                    sink(pending)
                    pending = b""
                if proto.eof and proto.sink is not None and not state["done"].done():
                    sink(b"")
                went_on = await state["done"]
                if went_on is None:  # paused: the agent reads slower than the server writes
                    await drain()
                    conn.transport.resume_reading()
                    continue
                complete = bool(went_on) and scan.ended
                return bool(went_on)
        finally:
            proto.sink = None
            if complete and self.keep_alive and not proto.buf and not proto.eof:
                conn.h11 = h11.Connection(h11.CLIENT)
                self._pool._release(conn, True)
            else:
                conn.close()

    async def pieces(self) -> AsyncGenerator[bytes, None]:
        """Body bytes as they arrive: every piece the socket gave at once, joined (framing removed)."""
        conn, done = self._conn, False
        try:
            while not done:
                out = bytearray()
                while True:
                    ev = conn.h11.next_event()
                    if isinstance(ev, h11.Data):
                        out += ev.data
                    elif isinstance(ev, h11.EndOfMessage):
                        done = True
                        break
                    elif ev is h11.NEED_DATA:
                        if out:
                            break
                        # b"" at EOF: h11 ends a close-delimited body there, or raises for a cut one
                        conn.h11.receive_data(await conn.proto.read())
                    else:  # ConnectionClosed mid-body
                        raise UpstreamError("the server closed the connection before the reply was complete")
                if out:
                    yield bytes(out)
        except h11.RemoteProtocolError as e:
            why = f"{e}; {conn.proto.why()}" if conn.proto.error else str(e)
            raise UpstreamError(f"the server closed the connection before the reply was complete ({why})") from None
        finally:
            self._pool._release(conn, done)


class Upstream:
    """One upstream base URL (http or https); `await send(...)` returns a Response once its head arrives."""

    def __init__(self, base_url: str):
        u = urlsplit(base_url)
        self.tls = u.scheme == "https"
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or (443 if self.tls else 80)
        self.prefix = u.path.rstrip("/")
        self.host_header = u.netloc.rsplit("@", 1)[-1]
        self._idle: list[_Conn] = []

    async def _connect(self) -> _Conn:
        ctx = ssl.create_default_context() if self.tls else None
        loop = asyncio.get_running_loop()
        try:
            transport, proto = await asyncio.wait_for(
                loop.create_connection(_Proto, self.host, self.port, ssl=ctx), CONNECT_S)
        except (TimeoutError, OSError) as e:
            why = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
            raise UpstreamError(f"cannot connect to {self.host}:{self.port}: {why}") from None
        return _Conn(transport, proto)

    def _take(self) -> _Conn | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if now - conn.idle_since < KEEPALIVE_S and not conn.transport.is_closing() and not conn.proto.eof:
                conn.reused = True
                return conn
            conn.close()
        return None

    def _release(self, conn: _Conn, complete: bool) -> None:
        h = conn.h11
        if complete and h.our_state is h11.DONE and h.their_state is h11.DONE:
            h.start_next_cycle()
        elif not (complete and h.our_state is h11.IDLE):  # IDLE: `relay` gave it a fresh h11 state
            conn.close()
            return
        conn.idle_since = time.monotonic()
        self._idle.append(conn)

    async def send(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> Response:
        """Send one request; a kept-alive connection the server had already closed is retried once, fresh."""
        conn = self._take() or await self._connect()
        try:
            return await self._exchange(conn, method, target, headers, body)
        except _Unanswered:
            if not conn.reused:
                raise UpstreamError("the server closed the connection without answering") from None
            return await self._exchange(await self._connect(), method, target, headers, body)

    async def _exchange(self, conn: _Conn, method: str, target: str, headers: list[tuple[str, str]],
                        body: bytes) -> Response:
        hdrs = [("host", self.host_header), *headers]
        if body or method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
            hdrs.append(("content-length", str(len(body))))
        try:
            data = conn.h11.send(h11.Request(method=method, target=self.prefix + target, headers=hdrs))
            conn.transport.write(data + conn.h11.send(h11.Data(data=body)) + conn.h11.send(h11.EndOfMessage())
                                 if body else data + conn.h11.send(h11.EndOfMessage()))
            while True:
                ev = conn.h11.next_event()
                if ev is h11.NEED_DATA:
                    got = await conn.proto.read()
                    if not got:
                        conn.close()
                        raise _Unanswered()
                    conn.h11.receive_data(got)
                elif isinstance(ev, h11.InformationalResponse):
                    continue
                elif isinstance(ev, h11.Response):
                    return Response(self, conn, ev, method)
                else:
                    conn.close()
                    raise _Unanswered()
        except (ConnectionError, h11.RemoteProtocolError, h11.LocalProtocolError) as e:
            conn.close()
            raise UpstreamError(f"{type(e).__name__}: {e}") from None

    async def aclose(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()


class _Unanswered(Exception):
    """The connection closed before any byte of the response: the request was never served."""
