"""Pure helpers that turn raw model output into answer, reasoning and tool calls.

Kept apart from the HTTP code so scoring can re-run them over stored raw responses.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from ..core.types import ToolCall
from . import shapes

_THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.DOTALL)


def split_think(content: str) -> tuple[str, str]:
    """Separate `<think>` blocks from the answer: returns (answer, reasoning).

    Handles templates that open `<think>` inside the prompt, so the reply holds only `...</think>answer`.
    """
    if "<think>" not in content and "</think>" in content:
        head, _, tail = content.partition("</think>")
        return tail.strip(), head.strip()
    reasoning = "\n".join(m.strip() for m in _THINK.findall(content))
    return _THINK.sub("", content).strip(), reasoning


MAX_ARGS_CHARS = 65_536
"""Tool-call arguments longer than this are malformed (a model cannot mean them; a tool must not see them)."""
MAX_ARGS_DEPTH = 32
"""Tool-call arguments nested deeper than this are malformed."""


def _depth(value: Any) -> int:
    """Nesting depth of a decoded JSON value, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, d)
            stack.extend((v, d + 1) for v in (node.values() if isinstance(node, dict) else node))
    return deepest


def parse_arguments(raw: str | dict | None) -> tuple[dict[str, Any] | None, str | None]:
    """Parse tool-call arguments: (dict, None) or (None, why not). Over-long or over-deep arguments are
    malformed (the model's failure, shown to it), never a crash."""
    if isinstance(raw, dict):
        value: Any = shapes.scrub(raw)
    elif raw is None or raw.strip() == "":
        return {}, None
    elif len(raw) > MAX_ARGS_CHARS:
        return None, f"arguments are {len(raw)} characters, over the {MAX_ARGS_CHARS} allowed"
    else:
        try:
            value = shapes.loads(raw)
        except json.JSONDecodeError as e:
            return None, f"arguments are not valid JSON: {e.msg} at char {e.pos}"
        except ValueError as e:
            return None, f"arguments are not valid JSON: {e}"
    if not isinstance(value, dict):
        return None, f"arguments must be a JSON object, got {type(value).__name__}"
    if _depth(value) > MAX_ARGS_DEPTH:
        return None, f"arguments are nested deeper than {MAX_ARGS_DEPTH} levels"
    return value, None


def make_call(name: str, raw: str | dict | None, call_id: str = "", **extra: Any) -> ToolCall:
    """Build a ToolCall, parsing its arguments and keeping the raw form."""
    args, err = parse_arguments(raw)
    raw_text = shapes.clean_text(raw) if isinstance(raw, str) else json.dumps(raw or {})
    return ToolCall(
        id=call_id or f"call_{uuid.uuid4().hex[:12]}",
        name=shapes.clean_text(name),
        arguments_raw=raw_text,
        arguments=args,
        parse_error=err,
        **extra,
    )


_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_FENCED = re.compile(r"```(?:json|tool_call|tool|javascript|js)?\s*\n?(.*?)```", re.DOTALL)


def _calls_from_obj(obj: Any) -> list[tuple[str, Any]]:
    """Accept the shapes models write: {"name","arguments"}, {"function":{...}}, {"tool_calls":[...]}, lists."""
    if isinstance(obj, list):
        return [c for item in obj for c in _calls_from_obj(item)]
    if not isinstance(obj, dict):
        return []
    if "tool_calls" in obj and isinstance(obj["tool_calls"], list):
        return _calls_from_obj(obj["tool_calls"])
    if isinstance(obj.get("function"), dict):
        return _calls_from_obj(obj["function"])
    name = obj.get("name") or obj.get("tool") or obj.get("tool_name")
    if not isinstance(name, str) or not name:
        return []
    args = obj.get("arguments", obj.get("parameters", obj.get("args", {})))
    return [(name, args)]


def recover_text_calls(content: str) -> list[ToolCall]:
    """Find tool calls written as text: `<tool_call>` tags, fenced JSON, or a bare JSON object.

    Each recovered call keeps the exact text span, so a report can tell a chat-template or server-parser
    mismatch (the call is well formed, just in the wrong channel) from a model defect.
    """
    spans = _TAGGED.findall(content) or _FENCED.findall(content)
    if not spans:
        stripped = content.strip()
        spans = [stripped] if stripped.startswith(("{", "[")) else []
    calls: list[ToolCall] = []
    for span in spans:
        try:
            obj = shapes.loads(span)
        except ValueError:
            continue
        for name, args in _calls_from_obj(obj):
            raw = args if isinstance(args, str) else json.dumps(args)
            calls.append(make_call(name, raw, in_text=True, raw_text=span))
    return calls
