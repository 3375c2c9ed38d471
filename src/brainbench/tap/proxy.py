"""The tap's HTTP relay: an OpenAI-compatible (and Ollama `/api/chat`) reverse proxy that scores what passes.

The agent's side is an asyncio stream with h11 (already a dependency of httpx), no web framework; the upstream
side is `upstream.Upstream`. A chunked reply (every stream) is passed on as the server framed it, each arrival
written to the agent from the upstream socket's own callback; any other reply piece by piece through h11. The
body bytes are kept as they pass and read only after the last byte is out: parsing, scoring and storage never
sit between two chunks. The agent's headers go upstream unchanged except the hop-by-hop ones (a compressed
reply the agent asked for is relayed compressed and decoded for scoring); the Authorization header is forwarded
and never stored. `/metrics` is the tap's own (Prometheus); every other path is passed through.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import h11

from ..core.records import AttemptRecord, Dispatch, Turn
from ..core.types import InfraEvent
from . import classify
from .metrics import Metrics
from .rules import Rule
from .stitch import Stitcher, prefix_hashes
from .storage import PACK, TapStore, scenario_id
from .upstream import GO_ON, PAUSE, STOP, Response, Upstream, UpstreamError
from .wire import Outcome, ReplyReader, error_outcome, infra_event, is_stream, loads_body, request_api

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "host", "content-length"}
MAX_BODY = 256 * 2**20
"""Largest request body the tap accepts (bytes): agents with images stay well under it."""
HIGH_WATER = 65536
"""Bytes waiting for a slow agent beyond which the tap stops reading the upstream until they are out."""
PROVISIONAL = ("omitted_closeout", "narrated_action")
"""Failures the agent can still undo by continuing: counted in the metrics only when the conversation ends."""


@dataclass
class Conv:
    """One stitched conversation, in memory while it is open."""

    rec: AttemptRecord
    hashes: list[str] = field(default_factory=list)
    """Prefix hashes of its latest request's messages."""
    n_messages: int = 0
    tools: list[Any] = field(default_factory=list)
    opening: str = ""
    busy: int = 0
    last_seen: float = 0.0
    counted: dict[str, int] = field(default_factory=dict)
    """Failures already added to the metrics."""
    pending: list[InfraEvent] = field(default_factory=list)
    """Infrastructure events since the last reply (shown with the next turn; stored once in infra_events)."""
    stored: Any = None
    """An asyncio future of the latest exchange: done once it is recorded, its result the store write's future."""
    live: bool = True
    """False for a conversation an earlier tap stored, until a request continues it (then it is open again)."""


@dataclass
class Exchange:
    """One chat request of a conversation, from arrival to its record."""

    recorded: Any
    """An asyncio future: done when this exchange is recorded (its result the store write's future)."""
    followup: list[Any]
    """The messages the agent added since the conversation's previous request (tool answers, a nudge)."""
    n_before: int
    """How many messages this request carried."""
    scoring: Any = None
    """The task that reads and records the reply after its last byte is out (it settles `recorded`)."""


def _bearer(headers: list[tuple[str, str]]) -> str | None:
    for k, v in headers:
        if k == "authorization" and v.lower().startswith("bearer "):
            return v[7:].strip() or None
    return None


class Tap:
    """The proxy: `await tap.start(host, port)` listens; `await tap.close()` stops and ends the open
    conversations (their last writes are queued; `TapStore.close()` waits for them)."""

    def __init__(self, upstream: str, store: TapStore, rules: list[Rule], idle_s: float = 120.0, otel: Any = None):
        up = upstream.rstrip("/")
        self.upstream = up[:-3] if up.endswith("/v1") else up  # the agent's path carries /v1 itself
        self.store = store
        self.rules = rules
        self.idle_s = idle_s
        self.metrics = Metrics()
        self.otel = otel
        """An `otel.OtelExport`, or None."""
        self.stitcher: Stitcher[Conv] = Stitcher()
        self.convs: list[Conv] = []
        self.busy: set[int] = set()
        """ids of conversations with a request in flight."""
        self.http = Upstream(self.upstream)
        self.server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._idler: asyncio.Task | None = None
        self._scoring: set[asyncio.Future] = set()
        """Replies being read and recorded (`_score`); `close` waits for them."""
        self.resume(store.resumable)

    # -- serving ------------------------------------------------------------------------------------

    def resume(self, stored: list[tuple[AttemptRecord, list[str]]]) -> None:
        """Conversations an earlier tap left on this run directory (`TapStore.resumable`): a request that
        continues one joins it (and revises its verdict), as if the tap had never stopped. Its failures stored
        so far are not counted again in this tap's metrics."""
        for rec, failures in stored:
            messages = rec.dispatches[0].messages
            first = messages[: rec.turns[0].messages_before] if rec.turns else messages
            tools = rec.turns[-1].result.request.get("tools") if rec.turns else None
            conv = Conv(rec=rec, hashes=prefix_hashes(messages), n_messages=len(messages),
                        tools=tools if isinstance(tools, list) else [], opening=classify.opening_text(first),
                        counted=dict(Counter(failures)), live=False)
            self.stitcher.advance(conv, conv.hashes)

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (port 0 picks a free one)."""
        self.server = await asyncio.start_server(self._connection, host, port)
        self._idler = asyncio.create_task(self._close_idle())
        return self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening, drop idle connections, end every open conversation (`shutdown`)."""
        if self.server is not None:
            self.server.close()
        if self._idler is not None:
            self._idler.cancel()
        for w in list(self._writers):  # idle keep-alive connections end; their handlers return
            w.transport.abort()
        await asyncio.sleep(0.05)
        await asyncio.gather(*self._scoring, return_exceptions=True)
        for conv in list(self.convs):
            self._end(conv, "shutdown")
        await self.http.aclose()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        self._writers.add(writer)
        try:
            while True:
                req = await self._next(conn, reader)
                if not isinstance(req, h11.Request):
                    return
                body = bytearray()
                while isinstance(ev := await self._next(conn, reader), h11.Data):
                    body += ev.data
                    if len(body) > MAX_BODY:
                        await self._simple(conn, writer, 413, {"error": {"message": "request body too large"}})
                        return
                if not isinstance(ev, h11.EndOfMessage):
                    return
                if not await self._handle(conn, writer, req, bytes(body)):
                    return
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (h11.RemoteProtocolError, ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    @staticmethod
    async def _next(conn: h11.Connection, reader: asyncio.StreamReader) -> Any:
        while True:
            ev = conn.next_event()
            if ev is not h11.NEED_DATA:
                return ev
            data = await reader.read(65536)
            conn.receive_data(data)
            if not data and conn.their_state is h11.IDLE:
                return None  # the agent closed an idle keep-alive connection

    async def _simple(self, conn: h11.Connection, writer: asyncio.StreamWriter, status: int, obj: Any,
                      ctype: str = "application/json") -> None:
        data = (obj if isinstance(obj, str) else json.dumps(obj)).encode()
        writer.write(conn.send(h11.Response(status_code=status, headers=[
            ("content-type", ctype), ("content-length", str(len(data)))])))
        writer.write(conn.send(h11.Data(data=data)) + conn.send(h11.EndOfMessage()))
        await writer.drain()

    # -- one request --------------------------------------------------------------------------------

    async def _handle(self, conn: h11.Connection, writer: asyncio.StreamWriter, req: h11.Request,
                      body: bytes) -> bool:
        """Relay one request; False when the agent's connection must close."""
        t_in = time.perf_counter()
        target = req.target.decode("latin-1")
        method = req.method.decode("latin-1")
        if method == "GET" and target.split("?")[0] == "/metrics":
            await self._simple(conn, writer, 200, self.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")
            return True
        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in req.headers]
        fwd = [(k, v) for k, v in headers if k not in HOP_BY_HOP]
        sending = asyncio.ensure_future(self.http.send(method, target, fwd, body))
        await asyncio.sleep(0)  # let the request go out before the tap does its own work
        api = request_api(target) if method == "POST" else None
        parsed = loads_body(body) if api else None
        conv, before, ex = None, None, None
        if parsed is not None and isinstance(parsed.get("messages"), list):
            conv, followup = self._conversation(parsed, api or "openai")
            ex = Exchange(asyncio.get_running_loop().create_future(), followup, len(parsed["messages"]))
            before, conv.stored = conv.stored, ex.recorded
        else:
            parsed = None
        try:
            try:
                resp = await sending
            except UpstreamError as e:
                detail = f"cannot reach the upstream {self.upstream}: {e}"
                await self._simple(conn, writer, 502, {"error": {"message": f"brainbench tap: {detail}"}})
                if conv is not None and ex is not None:  # a chat request: both are set together
                    await self._settle(before)
                    self._record(conv, parsed, api, Outcome(events=[infra_event("connect_error", detail)]), t_in,
                                 ex)
                self._count_request(api, parsed, 502, t_in, None)
                return True
            if conv is not None:
                await self._settle(before)
            return await self._relay(conn, writer, resp, conv, parsed, api, headers, t_in, ex)
        finally:
            if ex is not None and ex.scoring is None and not ex.recorded.done():
                ex.recorded.set_result(None)  # never leave the conversation's next exchange waiting

    @staticmethod
    async def _settle(before: Any) -> None:
        """The conversation's previous turn is on disk before a byte of the next reply reaches the agent (so a
        tap killed mid-stream has stored every turn before it); the upstream is computing meanwhile."""
        if before is not None:
            write = await before
            if write is not None and not write.done():
                await asyncio.wrap_future(write)

    async def _relay(self, conn: h11.Connection, writer: asyncio.StreamWriter, resp: Response,
                     conv: Conv | None, parsed: dict | None, api: str | None, headers: list[tuple[str, str]],
                     t_in: float, ex: Exchange | None) -> bool:
        chunks = resp.chunked and conn.their_http_version == b"1.1"  # passed on framing and all
        out_headers = [(k, v) for k, v in resp.headers
                       if k.lower() not in HOP_BY_HOP or (k.lower() == "content-length" and not chunks)]
        writer.write(conn.send(h11.Response(status_code=resp.status, headers=out_headers,
                                            reason=resp.reason.encode("latin-1", "replace"))))
        reader = ReplyReader(api or "openai", is_stream(resp.header("content-type")), t_in,
                             resp.header("content-encoding")) if conv is not None and resp.status < 400 else None
        err_body = bytearray()

        def keep(body: bytes) -> None:
            if reader is not None:
                reader.feed(body)
            elif conv is not None and len(err_body) < 65536:
                err_body.extend(body)

        relay = self._pass_chunks if chunks else self._pass_pieces
        first, cut, cut_kind, alive = await relay(conn, writer, resp, keep)
        self._count_request(api, parsed, resp.status, t_in, first)
        if conv is not None:
            assert ex is not None
            if reader is not None:
                read = asyncio.wrap_future(self.store.run(reader.finish, cut, cut_kind, time.perf_counter()))
            else:
                read = asyncio.get_running_loop().create_future()
                read.set_result(Outcome(events=[infra_event(cut_kind, cut)]) if cut else error_outcome(
                    resp.status, bytes(err_body), _bearer(headers), resp.header("content-encoding")))
            ex.scoring = asyncio.ensure_future(self._score(read, conv, parsed, api, t_in, ex))
            self._scoring.add(ex.scoring)
            ex.scoring.add_done_callback(self._scoring.discard)
        return alive

    async def _score(self, read: Any, conv: Conv, parsed: dict | None, api: str | None, t_in: float,
                     ex: Exchange) -> None:
        """After the reply: its bytes are read in the store's thread (the agent's next request is served
        meanwhile), then the exchange is recorded here, in the loop, where the conversation lives."""
        try:
            self._record(conv, parsed, api, await read, t_in, ex)
        finally:
            if not ex.recorded.done():
                ex.recorded.set_result(None)

    @staticmethod
    async def _pass_chunks(conn: h11.Connection, writer: asyncio.StreamWriter, resp: Response,
                           keep: Any) -> tuple[float | None, str | None, str, bool]:
        """The fast path (every stream): each arrival goes out as the server framed it, from the upstream
        socket's callback; `keep` gets the body bytes, read after the reply. (first byte out, how it was cut
        short or None, whose doing, the agent's connection still usable)."""
        transport = writer.transport
        first: float | None = None

        def on_piece(raw: bytes, body: bytes) -> int:
            nonlocal first
            if transport.is_closing():
                return STOP
            transport.write(raw)
            if first is None:
                first = time.perf_counter()
            if body:
                keep(body)
            return PAUSE if transport.get_write_buffer_size() > HIGH_WATER else GO_ON

        try:
            if not await resp.relay(on_piece, writer.drain):
                return first, "the agent closed the connection mid-reply", "client_closed", False
        except UpstreamError as e:
            transport.abort()  # the agent sees the reset it would have seen directly
            return first, f"the upstream connection broke mid-reply: {e}", "stream_reset", False
        except ConnectionError:
            return first, "the agent closed the connection mid-reply", "client_closed", False
        conn.send(h11.EndOfMessage())  # the server's last chunk is already out: h11 only learns the reply ended
        return first, None, "", True

    @staticmethod
    async def _pass_pieces(conn: h11.Connection, writer: asyncio.StreamWriter, resp: Response,
                           keep: Any) -> tuple[float | None, str | None, str, bool]:
        """Any other reply (a length, or the server's close, ends it): body pieces through h11 on both sides."""
        first: float | None = None
        try:
            async with contextlib.aclosing(resp.pieces()) as pieces:
                async for piece in pieces:
                    writer.write(conn.send(h11.Data(data=piece)))
                    first = first or time.perf_counter()
                    keep(piece)
                    await writer.drain()
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
        except UpstreamError as e:
            writer.transport.abort()  # the agent sees the reset it would have seen directly
            return first, f"the upstream connection broke mid-reply: {e}", "stream_reset", False
        except ConnectionError:  # the agent went away (its own timeout): stop, as a direct connection would
            return first, "the agent closed the connection mid-reply", "client_closed", False
        return first, None, "", True

    def _count_request(self, api: str | None, parsed: dict | None, status: int, t_in: float,
                       first: float | None) -> None:
        chat = parsed is not None
        stream = "true" if parsed is not None and parsed.get("stream", api == "ollama") else "false"
        self.metrics.inc("brainbench_tap_requests_total", route="chat" if chat else "other", stream=stream,
                         code=str(status))
        if chat:
            self.metrics.observe("brainbench_tap_request_duration_seconds", time.perf_counter() - t_in, stream=stream)
            if first is not None:
                self.metrics.observe("brainbench_tap_time_to_first_byte_seconds", first - t_in, stream=stream)

    # -- conversations ------------------------------------------------------------------------------

    def _conversation(self, body: dict[str, Any], api: str) -> tuple[Conv, list[Any]]:
        """The conversation this request continues (or a new one), and the messages added since its previous
        request (absorbed into the previous turn when this exchange is recorded: that turn may still be open)."""
        messages = body["messages"]
        hashes = prefix_hashes(messages)
        conv = self.stitcher.find(hashes, self.busy)
        followup: list[Any] = []
        if conv is None:
            conv = self._open(body, messages, hashes)
        else:
            followup = messages[conv.n_messages:]
            if not conv.live:  # stored by an earlier tap: open again
                conv.live = True
                conv.rec.final_state.pop("ended", None)
                self.convs.append(conv)
        tools = body.get("tools")
        conv.tools = tools if isinstance(tools, list) else conv.tools
        conv.hashes, conv.n_messages = hashes, len(messages)
        conv.rec.dispatches[0].messages = messages
        conv.busy += 1
        self.busy.add(id(conv))
        conv.last_seen = time.monotonic()
        self.stitcher.advance(conv, hashes)
        return conv, followup

    def _open(self, body: dict[str, Any], messages: list[Any], hashes: list[str]) -> Conv:
        opening = hashes[-1] if hashes else "empty"
        model = str(body.get("model") or "unknown")
        key, trial = self.store.new_key(opening, model)
        now = time.time()
        rec = AttemptRecord(key=key, scenario_id=scenario_id(messages, opening), pack=PACK, scenario_hash=opening,
                            model=model, config_hash=self.store.config_hash, trial=trial, status="completed",
                            dispatches=[Dispatch(index=0, end_reason="stop")], started=now, ended=now)
        conv = Conv(rec=rec, opening=classify.opening_text(messages))
        self.convs.append(conv)
        self.metrics.inc("brainbench_tap_conversations_total")
        return conv

    def _rules_for(self, conv: Conv) -> list[Rule]:
        return classify.rules_for(self.rules, conv.tools, conv.opening)

    def _record(self, conv: Conv, body: dict | None, api: str | None, outcome: Outcome, t_in: float,
                ex: Exchange) -> None:
        """One exchange ended: the previous turn learns its tool answers, then add the turn (or the
        infrastructure events), judge, store, count."""
        assert body is not None
        if conv.rec.turns and ex.followup:
            answered = classify.absorb_followup(conv.rec.turns[-1], ex.followup)
            if answered:
                conv.rec.final_state.setdefault("answered", []).extend(answered)
        conv.busy -= 1
        if not conv.busy:
            self.busy.discard(id(conv))
        conv.last_seen = time.monotonic()
        rec = conv.rec
        rec.ended = time.time()
        rules = self._rules_for(conv)
        rec.infra_events += outcome.events  # counted with the attempt (report, export), never in its verdict
        for ev in outcome.events:
            self.store.event(ev, rec.key)
            self.metrics.inc("brainbench_tap_infra_events_total", kind=ev.kind)
        result = outcome.result
        if outcome.rejected:
            result = classify.rejected_result(outcome.rejected, t_in)
        if outcome.context_full:
            rec.dispatches[0].end_reason, rec.dispatches[0].detail = "context_exhausted", outcome.context_full
        if result is not None:
            result.request = {k: v for k, v in body.items() if k != "messages" or not rec.turns}
            result.events, conv.pending = conv.pending + outcome.events, []
            turn = Turn(index=len(rec.turns), dispatch=0, messages_before=ex.n_before, result=result)
            turn.tool_results = classify.read_calls(result, conv.tools, rules)
            rec.turns.append(turn)
            if self.otel is not None:
                self.otel.exchange(rec, api or "openai", body, turn, outcome.events, t_in)
            rec.final_state.pop("ended_by_infra", None)
            self._count_calls(result)
        elif outcome.events:
            rec.final_state["ended_by_infra"] = outcome.events[-1].kind
            if self.otel is not None:
                self.otel.exchange(rec, api or "openai", body, None, outcome.events, t_in)
            conv.pending += outcome.events
        self._store(conv, rules, None, ex.recorded)

    def _count_calls(self, result: Any) -> None:
        for c in result.tool_calls:
            self.metrics.inc("brainbench_tap_tool_calls_total", channel="text" if c.in_text else "structured")

    def _store(self, conv: Conv, rules: list[Rule], ended: str | None, mine: Any = None) -> None:
        """Queue the conversation as it stands; judging and serializing happen in the store's thread, off the
        relay's path. A snapshot: only the last turn's tool results and nudge can still change, so only they are copied."""
        rec = conv.rec
        rec.status = "completed" if rec.turns else "infra_error"  # no reply at all: left out of rates
        if ended:
            rec.final_state["ended"] = ended
        last = [t.model_copy(update={"tool_results": [r.model_copy() for r in t.tool_results]}) for t in rec.turns[-1:]]
        snap = rec.model_copy(update={
            "turns": rec.turns[:-1] + last,
            "dispatches": [d.model_copy() for d in rec.dispatches], "final_state": dict(rec.final_state),
            "infra_events": list(rec.infra_events)})
        names = list(classify.tool_specs(conv.tools))
        write = self.store.put(snap, lambda r: self._judge(conv, r, rules, names, ended))
        if mine is not None and not mine.done():
            mine.set_result(write)

    def _judge(self, conv: Conv, rec: AttemptRecord, rules: list[Rule], names: list[str], ended: str | None) -> Any:
        """(In the store's thread.) The verdict, and the failures it adds to the metrics."""
        verdict = classify.judge(rec, rules, names, ended)
        rec.final_state["rules"] = verdict.details["rules"]
        seen: dict[str, int] = {}
        for f in verdict.failures:
            seen[f] = seen.get(f, 0) + 1
        for f, n in seen.items():
            if (ended or f not in PROVISIONAL) and n > conv.counted.get(f, 0):
                self.metrics.inc("brainbench_tap_failures_total", n - conv.counted.get(f, 0), kind=f)
                conv.counted[f] = n
        return verdict

    def _end(self, conv: Conv, why: str) -> None:
        """The conversation is over (idle or shutdown): its final verdict, stored."""
        self.convs.remove(conv)
        self.stitcher.forget(conv)
        self._store(conv, self._rules_for(conv), why)

    async def _close_idle(self) -> None:
        while True:
            await asyncio.sleep(min(5.0, max(0.05, self.idle_s / 4)))
            now = time.monotonic()
            for conv in [c for c in self.convs if not c.busy and now - c.last_seen >= self.idle_s]:
                self._end(conv, "idle")
