"""Arrival times from the kernel: sockets whose reads carry the packet's receive timestamp.

With SO_TIMESTAMPNS (Linux), every `recvmsg` also returns when the kernel received the data, so a
chunk's stamp no longer depends on when a busy Python event loop got round to reading it. Stamps are
converted from CLOCK_REALTIME to `time.perf_counter()` (CLOCK_MONOTONIC) with an offset refreshed
every second; a stamp is never later than the read that returned it. Where the option is missing
(non-Linux) or for TLS (the bytes we read are not the bytes that arrived), the read time is used.
"""

from __future__ import annotations

import asyncio
import platform
import socket
import ssl as ssl_mod
import struct
import sys
import time


def _linux_timestampns() -> int | None:
    """SO_TIMESTAMPNS (= SCM_TIMESTAMPNS); Python does not export it. 35 on the asm-generic ABI
    (x86, arm, arm64, riscv, ...); the few architectures with their own numbering are left out."""
    if hasattr(socket, "SO_TIMESTAMPNS"):
        return socket.SO_TIMESTAMPNS
    if sys.platform.startswith("linux") and platform.machine() in ("x86_64", "i686", "aarch64", "armv7l",
                                                                    "armv8l", "riscv64", "s390x", "ppc64le"):
        return 35
    return None


SO_TIMESTAMPNS: int | None = _linux_timestampns()
SCM_TIMESTAMPNS: int | None = SO_TIMESTAMPNS
_BUF = 1 << 16
_CMSG = socket.CMSG_SPACE(16) if hasattr(socket, "CMSG_SPACE") else 0


class _Offset:
    """CLOCK_REALTIME − CLOCK_MONOTONIC, the median of 5 paired reads, refreshed each second."""

    def __init__(self) -> None:
        self.value = self._measure()
        self.at = time.perf_counter()

    @staticmethod
    def _measure() -> float:
        pairs = []
        for _ in range(5):
            a = time.perf_counter()
            r = time.time()
            b = time.perf_counter()
            pairs.append((b - a, r - (a + b) / 2))
        pairs.sort()
        return pairs[0][1]  # the tightest pair

    def get(self) -> float:
        now = time.perf_counter()
        if now - self.at > 1.0:
            self.value, self.at = self._measure(), now
        return self.value


OFFSET = _Offset()


def enable(sock: socket.socket) -> bool:
    """Ask the kernel to timestamp received data on this socket; False where unsupported."""
    if SO_TIMESTAMPNS is None or not _CMSG:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        return True
    except OSError:
        return False


def stamp_from(ancdata: list[tuple[int, int, bytes]], read_at: float) -> tuple[float, bool]:
    """(perf_counter time the data arrived, whether it came from the kernel)."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack("qq", data[:16])
            if sec:
                return min(sec + nsec * 1e-9 - OFFSET.get(), read_at), True
    return read_at, False


class Conn:
    """A connected non-blocking socket: `await send(data)`, `await recv() -> (bytes, stamp)`."""

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop | None = None):
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.sock = sock
        self.loop = loop or asyncio.get_running_loop()
        self.kernel = enable(sock)
        self.closed = False
        self.kernel_stamps = 0

    @classmethod
    async def connect(cls, host: str, port: int) -> Conn:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        err: Exception | None = None
        for family, type_, proto, _, addr in infos:
            sock = socket.socket(family, type_, proto)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, addr)
                return cls(sock, loop)
            except OSError as e:
                sock.close()
                err = e
        raise err or OSError(f"cannot connect to {host}:{port}")

    async def send(self, data: bytes) -> None:
        await self.loop.sock_sendall(self.sock, data)

    async def recv(self, limit: int = _BUF) -> tuple[bytes, float]:
        """Up to `limit` bytes and their arrival time.

        A read that spans several received packets carries the last packet's stamp, so callers that
        want one stamp per server write ask for exactly one write's bytes (see `peek`)."""
        while True:
            try:
                data, anc, _, _ = self.sock.recvmsg(max(1, limit), _CMSG)
            except (BlockingIOError, InterruptedError):
                await self._readable()
                continue
            t, kern = stamp_from(anc, time.perf_counter())
            self.kernel_stamps += kern
            return data, t

    async def peek(self, n: int = 256) -> bytes:
        """Up to `n` received bytes without consuming them (waits for at least one); b"" at EOF."""
        while True:
            try:
                return self.sock.recv(n, socket.MSG_PEEK)
            except (BlockingIOError, InterruptedError):
                await self._readable()

    async def _readable(self) -> None:
        fut = self.loop.create_future()
        fd = self.sock.fileno()

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        self.loop.add_reader(fd, wake)
        try:
            await fut
        finally:
            self.loop.remove_reader(fd)

    def idle_ok(self) -> bool:
        """A kept-alive connection is reusable if the peer has not closed it meanwhile."""
        if self.closed:
            return False
        try:
            data = self.sock.recv(1, socket.MSG_PEEK)
            return bool(data)  # b"" = closed by the peer; unexpected bytes: also not reusable cleanly
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass


class TlsConn:
    """The same interface over TLS (asyncio streams); stamps are read times."""

    kernel = False
    kernel_stamps = 0

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.closed = False

    @classmethod
    async def connect(cls, host: str, port: int, context: ssl_mod.SSLContext) -> TlsConn:
        r, w = await asyncio.open_connection(host, port, ssl=context, limit=1 << 20)
        return cls(r, w)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def recv(self, limit: int = _BUF) -> tuple[bytes, float]:
        data = await self.reader.read(max(1, limit))
        return data, time.perf_counter()

    async def peek(self, n: int = 256) -> bytes | None:
        return None  # not available through TLS: callers fall back to plain reads

    def idle_ok(self) -> bool:
        return not self.closed and not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close()


def kernel_timestamps_available() -> bool:
    s = socket.socket()
    try:
        return enable(s)
    finally:
        s.close()


__all__ = ["Conn", "OFFSET", "TlsConn", "enable", "kernel_timestamps_available", "stamp_from"]

