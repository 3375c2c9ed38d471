"""Read the replies the tap relays: the relayed bytes -> a ChatResult, or an infrastructure event.

Reuses the client's own readers (`client.chat`: the SSE/NDJSON accumulator, the non-streamed parser, the error
classes), so a reply means the same to the tap as to a pack run. Nothing here touches the bytes the agent gets:
the proxy relays first and feeds a copy here. A compressed reply (the agent asked for it) is decoded here, piece
by piece in arrival order, so its chunks keep their arrival times.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from ..client import chat as _chat
from ..client.chat import _CONTEXT_FULL, _Retry, _StreamAcc, redact
from ..client.shapes import BadReply
from ..core.types import ChatResult, InfraEvent, Timing

SERVER_REJECTED = "failed to parse tool call"
"""llama-server's HTTP 500 when the model wrote a broken call: a model failure (`malformed_args`), not infra."""


@dataclass
class Outcome:
    """What one relayed exchange amounts to."""

    result: ChatResult | None = None
    """The model's reply, when there was one."""
    events: list[InfraEvent] = field(default_factory=list)
    """Infrastructure events met (5xx, reset, truncated stream, non-JSON reply): never model failures."""
    rejected: str | None = None
    """The server refused the model's own output (its words): one `malformed_args` call."""
    context_full: str | None = None
    """The server said the conversation no longer fits its context (its words): `context_exhausted`."""


class Undecodable(Exception):
    """A Content-Encoding the tap cannot read (one line)."""


class _Inflate:
    """deflate as servers send it: zlib-wrapped, or raw (some servers), told apart by the first bytes."""

    def __init__(self) -> None:
        self.d: Any = None

    def decompress(self, data: bytes) -> bytes:
        if self.d is None:
            self.d = zlib.decompressobj()
            try:
                return self.d.decompress(data)
            except zlib.error:
                self.d = zlib.decompressobj(-zlib.MAX_WBITS)
        return self.d.decompress(data)


def _decoder(coding: str) -> Any:
    """A decompressor (`.decompress(bytes) -> bytes`) for one content coding."""
    if coding in ("gzip", "x-gzip"):
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    if coding == "deflate":
        return _Inflate()
    if coding == "br":
        try:
            import brotli
        except ImportError:
            try:
                import brotlicffi as brotli
            except ImportError:
                raise Undecodable("Content-Encoding br: not read (install brotli to score such replies)") from None
        return brotli.Decompressor()
    raise Undecodable(f"Content-Encoding {coding}: not read (the tap reads gzip, deflate and br)")


def decode_pieces(pieces: list[bytes], encoding: str) -> list[bytes]:
    """Each piece decoded, in order (the codings undone last first); raises Undecodable."""
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip() and c.strip().lower() != "identity"]
    for coding in reversed(codings):
        d = _decoder(coding)
        try:
            pieces = [d.decompress(p) for p in pieces]
        except Exception as e:  # zlib.error, brotli.error: the bytes do not match their coding
            raise Undecodable(f"Content-Encoding {coding}: the body does not decode ({e})") from None
    return pieces


class _Parse:
    """The client's non-streamed parser needs only `endpoint.api`."""

    def __init__(self, api: str):
        self.endpoint = _chat.Endpoint("", "", api)


def infra_event(kind: str, detail: str) -> InfraEvent:
    """An infrastructure event, now (never a model failure; not retried by the tap)."""
    return InfraEvent(kind=kind, detail=detail, at=time.time(), retried=False)


def error_outcome(status: int, body: bytes, key: str | None, encoding: str = "") -> Outcome:
    """An HTTP error reply: a model failure the server reported, or an infrastructure event."""
    if encoding:
        try:
            body = b"".join(decode_pieces([body], encoding))
        except Undecodable:
            pass  # still an error reply: its text is only less readable
    text = redact(_error_text(body), key)
    if status == 500 and SERVER_REJECTED in text.lower():
        return Outcome(rejected=f"HTTP 500: {text}")
    if status in (400, 413) and _CONTEXT_FULL.search(text):
        return Outcome(context_full=f"HTTP {status}: {text}")
    if status == 503 and "loading" in text.lower():
        return Outcome(events=[infra_event("loading_model", f"503 Loading model: {text}")])
    kind = "http_5xx" if status >= 500 else "http_429" if status == 429 else "http_4xx"
    return Outcome(events=[infra_event(kind, f"HTTP {status}: {text}")])


def _error_text(body: bytes) -> str:
    import json

    raw = body.decode("utf-8", "replace")
    try:
        data = json.loads(raw)
        err = data.get("error", data) if isinstance(data, dict) else data
        msg = err.get("message", err) if isinstance(err, dict) else err
        return " ".join(str(msg).split())[:300]
    except (ValueError, RecursionError):
        return " ".join(raw.split())[:300]


class ReplyReader:
    """Fed the relayed bytes of one 2xx reply as they pass; `finish()` says what they amount to."""

    def __init__(self, api: str, streamed: bool, sent: float, encoding: str = ""):
        self.api = api
        self.encoding = encoding
        """The reply's Content-Encoding ('' or identity: none)."""
        self.streamed = streamed
        self.timing = Timing(sent=sent)
        self.acc = _StreamAcc(api) if streamed else None
        self.buf = bytearray()
        self.pieces: list[tuple[float, bytes]] = []
        self.events: list[InfraEvent] = []

    def feed(self, data: bytes) -> None:
        """Called after each piece was relayed: kept with its arrival time, read at `finish` (off the relay's
        path: parsing chunk by chunk here would slow the relay of the next one)."""
        now = time.perf_counter()
        if self.timing.first_byte is None:
            self.timing.first_byte = now
        self.pieces.append((now, data))

    def _read_pieces(self) -> None:
        """Read every piece's complete lines, timing each chunk by its piece's arrival (not by the parse)."""
        for at, data in self.pieces:
            self.buf += data
            n, first = len(self.timing.chunks), self.timing.first_token
            while not self.events and (nl := self.buf.find(b"\n")) >= 0:
                line = bytes(self.buf[:nl]).decode("utf-8", "replace")
                del self.buf[: nl + 1]
                self._line(line)
            self.timing.chunks[n:] = [at] * (len(self.timing.chunks) - n)
            if first is None and self.timing.first_token is not None:
                self.timing.first_token = at
        self.pieces.clear()

    def _line(self, line: str) -> None:
        acc = self.acc
        assert acc is not None  # lines are only fed for a streamed reply, which has an accumulator
        try:
            data = acc._payload(line)
            if data is None:
                return
            (acc._ollama_chunk if self.api == "ollama" else acc._openai_chunk)(data, self.timing)
        except _Retry as e:
            self.events.append(infra_event(e.kind, e.detail))
        except BadReply as e:
            self.events.append(infra_event("bad_reply", e.detail))

    def finish(self, cut: str | None = None, kind: str = "stream_reset", end: float | None = None) -> Outcome:
        """The reply ended (at `end`, perf_counter; default now. `cut`: how it was cut short, when it was;
        `kind`: whose doing, as an event id)."""
        self.timing.end = end or time.perf_counter()
        if self.encoding and self.pieces:
            try:
                decoded = decode_pieces([p for _, p in self.pieces], self.encoding)
            except Undecodable as e:
                self.pieces = []
                return Outcome(events=[infra_event(kind, cut)] if cut else [infra_event("bad_reply", str(e))])
            self.pieces = [(at, d) for (at, _), d in zip(self.pieces, decoded)]
        if self.acc is None:
            self.buf = bytearray(b"".join(p for _, p in self.pieces))
        else:
            self._read_pieces()
        if cut:
            return Outcome(events=self.events + [infra_event(kind, cut)])
        if self.events:
            return Outcome(events=self.events)
        if self.acc is None:
            return self._full()
        if self.buf.strip():
            self._line(bytes(self.buf).decode("utf-8", "replace"))
        if not self.acc.chunks and not self.acc.done:
            return Outcome(events=self.events or [infra_event("bad_json", "reply is not a stream")])
        if not self.acc.done and self.acc.finish is None:
            return Outcome(events=[infra_event("stream_truncated", "stream ended before the reply was complete "
                                                              "(no finish_reason)")])
        try:
            return Outcome(result=self.acc.result(self.timing), events=self.events)
        except BadReply as e:
            return Outcome(events=[infra_event("bad_reply", e.detail)])

    def _full(self) -> Outcome:
        try:
            result = _chat.ChatClient._parse_full(_Parse(self.api), bytes(self.buf), self.timing)  # type: ignore[arg-type]
        except _Retry as e:
            return Outcome(events=[infra_event(e.kind, e.detail)])
        except BadReply as e:
            return Outcome(events=[infra_event("bad_reply", e.detail)])
        return Outcome(result=result)


def request_api(path: str) -> str | None:
    """Which chat API a path speaks: 'openai', 'ollama', or None (passed through, not scored)."""
    p = path.split("?", 1)[0].rstrip("/")
    if p.endswith("/chat/completions"):
        return "openai"
    if p.endswith("/api/chat"):
        return "ollama"
    return None


def is_stream(content_type: str) -> bool:
    ct = content_type.lower()
    return "text/event-stream" in ct or "ndjson" in ct


def loads_body(body: bytes) -> dict[str, Any] | None:
    """A request body as a JSON object, or None (then the tap relays it without scoring)."""
    import json

    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None
