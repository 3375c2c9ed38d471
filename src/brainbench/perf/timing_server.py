"""An OpenAI-compatible server that streams on a known schedule: the ground truth for measuring clients.

Request k (counted from 0) gets
    TTFT_k = ttft × (1 + ttft_spread × u_k)      inter-token gap_k = itl × (1 + itl_spread × v_k)
with u_k, v_k low-discrepancy points in [0, 1) (golden-ratio sequences), and streams `tokens` tokens, one
per chunk, at absolute times  t_recv + TTFT_k + i × gap_k  (i = 0..tokens-1), so lateness never
accumulates. `t_recv` is when the last byte of the request arrived: the kernel's receive timestamp where
the OS gives one (SO_TIMESTAMPNS), so a busy server does not start the schedule late. A role-only chunk goes out at once
(role=immediate, the default) to check that clients do not start the TTFT clock on it.

`GET /stats` returns the schedule of every completed request and how late the server actually wrote
each token (its own error, to tell server-side from client-side error); `POST /stats/reset` clears it.

    python -m brainbench.perf.timing_server --port 8123 --ttft-ms 200 --itl-ms 20 --tokens 64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from .ktime import Conn, enable

PHI = 0.6180339887498949


@dataclass
class Schedule:
    ttft_s: float = 0.2
    itl_s: float = 0.02
    tokens: int = 64
    ttft_spread: float = 0.0
    itl_spread: float = 0.0
    role: str = "immediate"  # immediate | first | none
    llama_timings: bool = False
    """Also send llama-server-style `timings` (prompt_ms = TTFT, predicted_ms = first to last token write)."""

    def for_request(self, k: int) -> tuple[float, float]:
        u = (k * PHI) % 1.0
        v = (k * PHI * PHI + 0.5) % 1.0
        return self.ttft_s * (1 + self.ttft_spread * u), self.itl_s * (1 + self.itl_spread * v)


@dataclass
class Stats:
    completed: list[dict[str, Any]] = field(default_factory=list)
    started: int = 0
    aborted: int = 0

    def to_dict(self) -> dict[str, Any]:
        late = sorted(x for r in self.completed for x in r["late_ms"])

        def q(p: float) -> float | None:
            if not late:
                return None
            return late[min(len(late) - 1, int(p / 100 * (len(late) - 1) + 0.5))]

        return {
            "started": self.started, "aborted": self.aborted, "completed": len(self.completed),
            "requests": [{k: v for k, v in r.items() if k != "late_ms"} for r in self.completed],
            "server_lateness_ms": {"median": q(50), "p99": q(99), "max": late[-1] if late else None},
        }


class TimingServer:
    def __init__(self, schedule: Schedule, host: str = "127.0.0.1", port: int = 0, model: str = "timing-model"):
        self.schedule, self.host, self.port, self.model = schedule, host, port, model
        self.stats = Stats()
        self._k = 0

    async def start(self) -> TimingServer:
        loop = asyncio.get_running_loop()
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind((self.host, self.port))
        self._lsock.listen(1024)
        self._lsock.setblocking(False)
        self.kernel_stamps = enable(self._lsock)
        self.port = self._lsock.getsockname()[1]
        self._tasks: set[asyncio.Task] = set()
        self._accepting = loop.create_task(self._accept())
        return self

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    async def close(self) -> None:
        self._accepting.cancel()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(self._accepting, *self._tasks, return_exceptions=True)
        self._lsock.close()

    # -- HTTP -----------------------------------------------------------------------------------------

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            sock, _ = await loop.sock_accept(self._lsock)
            task = loop.create_task(self._conn(Conn(sock, loop)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _conn(self, conn: Conn) -> None:
        """Requests on one keep-alive connection. A request's arrival time is the kernel's receive stamp
        of the bytes that completed it, so the schedule does not start late when this process is busy."""
        buf = bytearray()
        t_last = 0.0
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data, t_last = await conn.recv()
                    if not data:
                        return
                    buf += data
                i = buf.index(b"\r\n\r\n")
                lines = bytes(buf[:i]).decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
                end = i + 4 + int(headers.get("content-length", "0") or 0)
                while len(buf) < end:
                    data, t_last = await conn.recv()
                    if not data:
                        return
                    buf += data
                body = bytes(buf[i + 4:end])
                del buf[:end]
                keep = headers.get("connection", "").lower() != "close"
                await self._route(method, path.split("?")[0], body, t_last, conn)
                if not keep:
                    return
        except (ConnectionError, OSError, ValueError):
            pass
        finally:
            conn.close()

    async def _json(self, writer: Conn, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        await writer.send(f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(data)}\r\n\r\n".encode() + data)

    async def _route(self, method: str, path: str, body: bytes, t_recv: float, writer: Conn) -> None:
        if method == "GET" and path in ("/health", "/v1/health"):
            await self._json(writer, 200, {"status": "ok"})
        elif method == "GET" and path in ("/v1/models", "/models"):
            await self._json(writer, 200, {"object": "list", "data": [{"id": self.model, "object": "model",
                                                                       "owned_by": "brainbench"}]})
        elif method == "GET" and path == "/stats":
            await self._json(writer, 200, self.stats.to_dict())
        elif method == "POST" and path == "/stats/reset":
            self.stats = Stats()
            self._k = 0
            await self._json(writer, 200, {"reset": True})
        elif method == "POST" and path in ("/v1/chat/completions", "/v1/completions"):
            try:
                req = json.loads(body or b"{}")
            except json.JSONDecodeError:
                await self._json(writer, 400, {"error": {"message": "body is not JSON"}})
                return
            await self._complete(req, path.endswith("chat/completions"), t_recv, writer)
        else:
            await self._json(writer, 404, {"error": {"message": f"no route {method} {path}"}})

    # -- completions ----------------------------------------------------------------------------------

    async def _complete(self, req: dict[str, Any], chat: bool, t_recv: float, writer: Conn) -> None:
        k = self._k
        self._k += 1
        self.stats.started += 1
        ttft, gap = self.schedule.for_request(k)
        n = self.schedule.tokens
        limit = req.get("max_tokens") or req.get("max_completion_tokens")
        if isinstance(limit, int) and limit > 0:
            n = min(n, limit)
        if chat:
            prompt = " ".join(str(m.get("content") or "") for m in req.get("messages") or [] if isinstance(m, dict))
        else:
            prompt = str(req.get("prompt") or "")
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": n, "total_tokens": len(prompt.split()) + n}
        rid = f"cmpl-timing-{k}"
        if not req.get("stream"):
            await asyncio.sleep(max(0.0, t_recv + ttft + (n - 1) * gap - time.perf_counter()))
            text = "".join(f" tok{i}" for i in range(n))
            choice = {"index": 0, "finish_reason": "length",
                      **({"message": {"role": "assistant", "content": text}} if chat else {"text": text})}
            await self._json(writer, 200, {"id": rid, "object": "chat.completion" if chat else "text_completion",
                                           "model": self.model, "choices": [choice], "usage": usage})
            self._record(k, ttft, gap, n, [], t_recv)
            return

        obj_name = "chat.completion.chunk" if chat else "text_completion"

        def chunk(delta: dict[str, Any] | None, text: str | None = None, finish: str | None = None) -> bytes:
            choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
            if chat:
                choice["delta"] = delta or {}
            else:
                choice["text"] = text or ""
            obj = {"id": rid, "object": obj_name, "created": int(time.time()), "model": self.model, "choices": [choice]}
            data = f"data: {json.dumps(obj)}\n\n".encode()
            return f"{len(data):x}\r\n".encode() + data + b"\r\n"

        start = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
        role = self.schedule.role if chat else "none"
        if role == "immediate":
            start += chunk({"role": "assistant", "content": ""})
        await writer.send(start)
        late: list[float] = []
        writes: list[float] = []

        def final(first: float | None) -> bytes:
            end = {"id": rid, "object": obj_name, "model": self.model, "choices": [], "usage": usage}
            if first is not None:
                # like llama-server: predicted_ms spans n token intervals (first to last write spans n - 1)
                pred_ms = (time.perf_counter() - first) * 1000 * (n / (n - 1) if n > 1 else 1)
                p_ms = (first - t_recv) * 1000
                end["timings"] = {
                    "cache_n": 0, "prompt_n": usage["prompt_tokens"], "prompt_ms": p_ms,
                    "prompt_per_second": usage["prompt_tokens"] / p_ms * 1000 if p_ms > 0 else None,
                    "predicted_n": n, "predicted_ms": pred_ms,
                    "predicted_per_second": n / pred_ms * 1000 if pred_ms > 0 else None}
            data = f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode()
            return chunk({}, "", "length") + f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n\r\n"

        # everything rendered before the first deadline: at a deadline the server only sends
        pieces = [chunk({"content": f" tok{i}"}, f" tok{i}") for i in range(n)]
        if role == "first" and pieces:
            pieces[0] = chunk({"role": "assistant", "content": ""}) + pieces[0]
        tail = None if self.schedule.llama_timings else final(None)
        try:
            for i in range(n):
                target = t_recv + ttft + i * gap
                delay = target - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                out = pieces[i]
                if i == n - 1:
                    out += tail if tail is not None else final(writes[0] if writes else time.perf_counter())
                now = time.perf_counter()
                late.append((now - target) * 1000)
                writes.append(now)
                await writer.send(out)
        except (ConnectionError, asyncio.CancelledError):
            self.stats.aborted += 1
            raise ConnectionError("client went away") from None
        self._record(k, ttft, gap, n, late, t_recv, writes)

    def _record(self, k: int, ttft: float, gap: float, n: int, late: list[float], t_recv: float = 0.0,
                writes: list[float] | None = None) -> None:
        """The schedule, and what was actually delivered (monotonic clock: comparable across processes)."""
        w = writes or []
        self.stats.completed.append({
            "k": k, "ttft_ms": ttft * 1000, "itl_ms": gap * 1000, "tokens": n, "t_recv": t_recv,
            "ttft_delivered_ms": (w[0] - t_recv) * 1000 if w else None,
            "itl_delivered_ms": (w[-1] - w[0]) / (len(w) - 1) * 1000 if len(w) > 1 else None,
            "late_ms": [round(x, 3) for x in late]})


async def serve(schedule: Schedule, host: str, port: int, model: str) -> None:
    srv = await TimingServer(schedule, host, port, model).start()
    print(json.dumps({"base_url": srv.base_url, "port": srv.port}), flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--model", default="timing-model")
    ap.add_argument("--ttft-ms", type=float, default=200.0)
    ap.add_argument("--itl-ms", type=float, default=20.0)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--ttft-spread", type=float, default=0.0)
    ap.add_argument("--itl-spread", type=float, default=0.0)
    ap.add_argument("--role", choices=("immediate", "first", "none"), default="immediate")
    ap.add_argument("--llama-timings", action="store_true", help="Send llama-server-style `timings` too.")
    a = ap.parse_args(argv)
    sched = Schedule(a.ttft_ms / 1000, a.itl_ms / 1000, a.tokens, a.ttft_spread, a.itl_spread, a.role, a.llama_timings)
    try:
        asyncio.run(serve(sched, a.host, a.port, a.model))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
