"""When did the request really leave? An httpx transport that stamps the first request-header write.

Under concurrency the client spends time before anything reaches the socket (building the request,
opening a connection, waiting for the event loop). That is client overhead, not server latency, so the
TTFT and E2E clocks start when httpcore begins writing the request headers (the same instant GuideLLM
uses). The stamp travels through a context variable set around each timed call; the time before it is
kept as `queue_s`.
"""

from __future__ import annotations

import contextvars
import time
from typing import Any

import httpx

SENT: contextvars.ContextVar[dict[str, float] | None] = contextvars.ContextVar("brainbench_sent", default=None)


class StampingTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport):
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        holder = SENT.get()
        if holder is not None:
            previous = request.extensions.get("trace")

            async def trace(event: str, info: dict[str, Any]) -> None:
                if "sent" not in holder and event.endswith(".send_request_headers.started"):
                    holder["sent"] = time.perf_counter()
                if previous is not None:
                    await previous(event, info)

            request.extensions = {**request.extensions, "trace": trace}
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def timed_http(api_key: str | None, timeout: float, max_connections: int = 1024) -> httpx.AsyncClient:
    """An AsyncClient for timed calls: same limits and headers as ChatClient's own, plus the stamp."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=max_connections,
                                                             max_keepalive_connections=max_connections))
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=10.0), headers=headers,
                             transport=StampingTransport(transport))
