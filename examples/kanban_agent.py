"""A small scripted kanban worker, written with the openai SDK, to run through `brainbench tap`.

It plays hermes-agent's worker loop on an in-memory board: each card is one conversation (system prompt, "you
own card t_N"), the model works with the tools until it answers in plain text; a plain answer while the card is
still in progress gets one nudge, as hermes's turn-end guard does, and then the worker gives up on the card.
Nothing here knows about the tap: point --base-url at the tap instead of the server and that is all.

    python examples/kanban_agent.py --base-url http://127.0.0.1:8788/v1 --model brain-small
    python examples/kanban_agent.py --base-url http://127.0.0.1:8788/v1 --model brain-small --stream --cards t_1
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from openai import OpenAI

SYSTEM = """You are a worker agent on a kanban board. You own the card you are given.
Read it with kanban_show, do the work with the workspace tools (list_files, read_file, write_file), then end with
exactly one terminal call: kanban_complete with a short summary when the work is done, or kanban_block with a
reason when the card cannot be done. A plain-text reply is NOT a terminal state."""

NUDGE = ("A plain-text reply is NOT a terminal state: the card is still in progress. Call kanban_complete (with a "
         "summary) or kanban_block (with a reason) now.")

CARDS = {
    "t_1": "Write hello.txt containing exactly the word hello.",
    "t_2": "Read notes.md and write a one-line summary of it to summary.md.",
    "t_3": "Deploy the service to production.",  # no tool can: the card must be blocked
}
FILES = {"notes.md": "The Q3 migration moved 14 services to the new cluster; two remain, blocked on DNS."}


def _fn(name: str, doc: str, **props: str) -> dict[str, Any]:
    required = [k for k in props if not k.endswith("_")]
    return {"type": "function", "function": {"name": name, "description": doc, "parameters": {
        "type": "object", "properties": {k.rstrip("_"): {"type": v} for k, v in props.items()},
        "required": required}}}


TOOLS = [
    _fn("kanban_show", "Show the card: title, body, status.", task_id="string"),
    _fn("list_files", "List the workspace files."),
    _fn("read_file", "Read a workspace file.", path="string"),
    _fn("write_file", "Write a workspace file.", path="string", content="string"),
    _fn("kanban_complete", "Mark the card done.", task_id="string", summary="string"),
    _fn("kanban_block", "Mark the card blocked.", task_id="string", reason="string"),
]


class Board:
    """One card and the workspace: what the tools change."""

    def __init__(self, card: str):
        self.card, self.status, self.files = card, "in_progress", dict(FILES)

    def call(self, name: str, args: dict[str, Any]) -> str:
        if name == "kanban_show":
            return json.dumps({"id": self.card, "body": CARDS[self.card], "status": self.status})
        if name == "list_files":
            return json.dumps(sorted(self.files))
        if name == "read_file":
            path = str(args.get("path", ""))
            return self.files[path] if path in self.files else json.dumps({"error": f"no such file: {path}"})
        if name == "write_file":
            self.files[str(args.get("path", ""))] = str(args.get("content", ""))
            return json.dumps({"ok": True})
        if name == "kanban_complete":
            if not args.get("summary"):
                return json.dumps({"error": "provide at least one of: summary (preferred), result"})
            self.status = "done"
            return json.dumps({"ok": True, "status": "done"})
        if name == "kanban_block":
            if not args.get("reason"):
                return json.dumps({"error": "a reason is required"})
            self.status = "blocked"
            return json.dumps({"ok": True, "status": "blocked"})
        return json.dumps({"error": f"unknown tool {name}"})


def _reply(client: OpenAI, model: str, messages: list[dict[str, Any]], stream: bool) -> dict[str, Any]:
    """One model reply as an assistant message (streamed replies are put back together)."""
    if not stream:
        msg = client.chat.completions.create(model=model, messages=messages, tools=TOOLS, max_tokens=512).choices[0].message
        calls = [{"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
                 for c in msg.tool_calls or []]
        return {"role": "assistant", "content": msg.content or "", **({"tool_calls": calls} if calls else {})}
    text, calls = [], {}
    for chunk in client.chat.completions.create(model=model, messages=messages, tools=TOOLS, max_tokens=512, stream=True):
        for ch in chunk.choices:
            text.append(ch.delta.content or "")
            for tc in ch.delta.tool_calls or []:
                slot = calls.setdefault(tc.index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
                slot["id"] = tc.id or slot["id"]
                if tc.function:
                    slot["function"]["name"] += tc.function.name or ""
                    slot["function"]["arguments"] += tc.function.arguments or ""
    msg: dict[str, Any] = {"role": "assistant", "content": "".join(text)}
    if calls:
        msg["tool_calls"] = [calls[i] for i in sorted(calls)]
    return msg


def work(client: OpenAI, model: str, card: str, stream: bool, max_turns: int = 8) -> str:
    """Work one card; returns its final status."""
    board = Board(card)
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM},
                                      {"role": "user", "content": f"You own card {card}. Work on it now."}]
    nudged = False
    for _ in range(max_turns):
        msg = _reply(client, model, messages, stream)
        messages.append(msg)
        for c in msg.get("tool_calls", []):
            try:
                args = json.loads(c["function"]["arguments"] or "{}")
            except json.JSONDecodeError:
                args = None
            out = board.call(c["function"]["name"], args) if isinstance(args, dict) else \
                json.dumps({"error": "arguments are not a JSON object"})
            messages.append({"role": "tool", "tool_call_id": c["id"], "content": out})
        if msg.get("tool_calls"):
            if board.status != "in_progress":
                break  # closed: the worker's loop ends after the terminal call
            continue
        if board.status != "in_progress" or nudged:
            break
        messages.append({"role": "user", "content": NUDGE})
        nudged = True
    return board.status


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base-url", required=True, help="The tap (or the server): http://HOST:PORT/v1")
    ap.add_argument("--model", required=True)
    ap.add_argument("--api-key", default="none")
    ap.add_argument("--stream", action="store_true", help="Stream the replies.")
    ap.add_argument("--cards", nargs="*", default=list(CARDS), choices=list(CARDS))
    args = ap.parse_args(argv)
    client = OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=1)
    for card in args.cards:
        print(f"{card}: {work(client, args.model, card, args.stream)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
