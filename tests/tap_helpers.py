"""Helpers for the tap tests: the tap running in a background event loop, and an openai-SDK agent."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

from brainbench.tap.proxy import Tap
from brainbench.tap.rescore import dump_rules
from brainbench.tap.rules import load_all
from brainbench.tap.storage import TapStore

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def fn_tool(name: str, **props: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": name, "parameters": {
        "type": "object", "properties": {k: {"type": v} for k, v in props.items()}, "required": list(props)}}}


KANBAN_TOOLS = [fn_tool("kanban_show", task_id="string"), fn_tool("kanban_complete", task_id="string", summary="string"),
                fn_tool("kanban_block", task_id="string", reason="string"), fn_tool("write_file", path="string", content="string")]


@contextlib.contextmanager
def running_tap(upstream: str, run_dir: Path, rules: list[str] | None = None, idle: float = 60.0) -> Iterator[tuple[Tap, str]]:
    """The tap on 127.0.0.1 (a free port) in a background loop; yields (tap, agent base URL ending in /v1)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    loaded = load_all(rules or [])
    store = TapStore(run_dir, {"upstream": upstream, "rules": dump_rules(loaded)})  # as the CLI records them
    tap = Tap(upstream, store, loaded, idle_s=idle)
    port = asyncio.run_coroutine_threadsafe(tap.start("127.0.0.1", 0), loop).result(10)
    try:
        yield tap, f"http://127.0.0.1:{port}/v1"
    finally:
        asyncio.run_coroutine_threadsafe(tap.close(), loop).result(10)
        store.close()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


@contextlib.contextmanager
def raw_upstream(serve: Callable[[socket.socket], None]) -> Iterator[str]:
    """A hand-written upstream on a listening socket, for replies exact to the byte; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    threading.Thread(target=serve, args=(sock,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def sync(tap: Tap) -> None:
    """Wait until every exchange in flight is recorded and every queued store write is done."""
    import time

    deadline = time.monotonic() + 10
    while any(c.busy for c in list(tap.convs)) and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.02)
    if tap.store.last is not None:
        tap.store.last.result(10)


def ask(client: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, stream: bool,
        model: str = "fake-model") -> dict[str, Any]:
    """One chat completion through the openai SDK; returns the assistant message as a dict (both modes)."""
    kw: dict[str, Any] = {"model": model, "messages": messages}
    if tools:
        kw["tools"] = tools
    if not stream:
        msg = client.chat.completions.create(**kw).choices[0].message
        out: dict[str, Any] = {"role": "assistant", "content": msg.content or ""}
        if msg.tool_calls:
            out["tool_calls"] = [{"id": c.id, "type": "function", "function": {"name": c.function.name,
                                                                              "arguments": c.function.arguments}}
                                 for c in msg.tool_calls]
        return out
    content, calls = [], {}
    for chunk in client.chat.completions.create(stream=True, **kw):
        for ch in chunk.choices:
            content.append(ch.delta.content or "")
            for tc in ch.delta.tool_calls or []:
                slot = calls.setdefault(tc.index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
                slot["id"] = tc.id or slot["id"]
                if tc.function:
                    slot["function"]["name"] += tc.function.name or ""
                    slot["function"]["arguments"] += tc.function.arguments or ""
    out = {"role": "assistant", "content": "".join(content)}
    if calls:
        out["tool_calls"] = [calls[i] for i in sorted(calls)]
    return out


def agent_loop(client: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, stream: bool,
               tool_answer: Any = lambda name, args: '{"ok": true}', max_turns: int = 6) -> list[dict[str, Any]]:
    """A minimal agent: call the model, run its tool calls with `tool_answer`, stop at a plain reply."""
    messages = list(messages)
    for _ in range(max_turns):
        msg = ask(client, messages, tools, stream)
        messages.append(msg)
        if not msg.get("tool_calls"):
            break
        for c in msg["tool_calls"]:
            messages.append({"role": "tool", "tool_call_id": c["id"],
                             "content": tool_answer(c["function"]["name"], c["function"]["arguments"])})
    return messages
