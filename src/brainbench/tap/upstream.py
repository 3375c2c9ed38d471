"""The tap's client side: HTTP/1.1 to the upstream server over asyncio streams with h11, kept-alive connections.

Why not httpx here: every request and every relayed piece passes through this code, and httpx's layers
(httpcore, anyio, its models) cost about a millisecond per request on a small machine, half the tap's whole
latency budget. This is the least a proxy needs: one request at a time per connection, a pool of idle
connections (dropped after `KEEPALIVE_S`, before servers drop them), pieces yielded as they arrive, and one
immediate retry on a fresh connection when a kept-alive one turns out to be closed before any byte of the
response (llama-server closes every connection after a streamed reply while advertising keep-alive).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncGenerator
from urllib.parse import urlsplit

import h11

KEEPALIVE_S = 2.0
"""Idle connections older than this are not reused (llama-server drops them after 5 s)."""
CONNECT_S = 10.0
READ_SIZE = 65536


class UpstreamError(Exception):
    """The upstream could not be reached, or broke the connection mid-reply (one line)."""


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = time.monotonic()
        self.reused = False

    def close(self) -> None:
        self.writer.transport.abort()


class Response:
    """Status and headers of an upstream reply; `pieces()` yields its body as it arrives, once."""

    def __init__(self, pool: Upstream, conn: _Conn, head: h11.Response):
        self._pool, self._conn = pool, conn
        self.status = head.status_code
        self.reason = head.reason.decode("latin-1", "replace")
        self.headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in head.headers]

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers if k.lower() == name), "")

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
                        conn.h11.receive_data(await conn.reader.read(READ_SIZE))
                    else:  # ConnectionClosed mid-body
                        raise UpstreamError("the server closed the connection before the reply was complete")
                if out:
                    yield bytes(out)
        except h11.RemoteProtocolError as e:
            raise UpstreamError(f"the server closed the connection before the reply was complete ({e})") from None
        except ConnectionError as e:
            raise UpstreamError(f"{type(e).__name__}: {e}") from None
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
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=ctx, limit=READ_SIZE), CONNECT_S)
        except (TimeoutError, OSError) as e:
            raise UpstreamError(f"cannot connect to {self.host}:{self.port}: {e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__}") from None
        return _Conn(reader, writer)

    def _take(self) -> _Conn | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if now - conn.idle_since < KEEPALIVE_S and not conn.writer.transport.is_closing():
                conn.reused = True
                return conn
            conn.close()
        return None

    def _release(self, conn: _Conn, complete: bool) -> None:
        h = conn.h11
        if complete and h.our_state is h11.DONE and h.their_state is h11.DONE:
            h.start_next_cycle()
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()

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
            conn.writer.write(data + conn.h11.send(h11.Data(data=body)) + conn.h11.send(h11.EndOfMessage())
                              if body else data + conn.h11.send(h11.EndOfMessage()))
            while True:
                ev = conn.h11.next_event()
                if ev is h11.NEED_DATA:
                    got = await conn.reader.read(READ_SIZE)
                    if not got:
                        conn.close()
                        raise _Unanswered()
                    conn.h11.receive_data(got)
                elif isinstance(ev, h11.InformationalResponse):
                    continue
                elif isinstance(ev, h11.Response):
                    return Response(self, conn, ev)
                else:
                    conn.close()
                    raise _Unanswered()
        except (ConnectionError, h11.RemoteProtocolError, h11.LocalProtocolError) as e:
            conn.close()
            if conn.reused and isinstance(e, ConnectionError):
                raise _Unanswered() from None
            raise UpstreamError(f"{type(e).__name__}: {e}") from None

    async def aclose(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()


class _Unanswered(Exception):
    """The connection closed before any byte of the response: the request was never served."""
