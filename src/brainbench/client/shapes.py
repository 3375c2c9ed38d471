"""Read a server's reply defensively: every shape is checked before it is used.

A server may send anything: a chunk that is a list, `choices` holding strings, a tool-call name that is a
number, `tool_calls` as an object, a lone surrogate that cannot be stored. A wrong shape raises `BadReply`
(the client turns it into a `bad_reply` infrastructure event for that attempt, with the offending bytes kept,
truncated); a shape that is wrong but unambiguous (arguments sent as a JSON object, as Ollama-style servers
do) is accepted as what it is and the repair is noted, so a server's deviation stays visible.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_REPLY_BYTES = 8_000_000
"""A reply larger than this (content, reasoning and arguments together) is cut off as `bad_reply`: an endless
stream must not grow memory until the deadline."""

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class BadReply(Exception):
    """The reply's shape is not one the protocol allows; `detail` names where and shows the bytes."""

    def __init__(self, where: str, value: Any):
        self.detail = f"{where} is {type(value).__name__}: {_sample(value)}"
        super().__init__(self.detail)


def _sample(value: Any, limit: int = 160) -> str:
    try:
        text = json.dumps(value, ensure_ascii=True, default=str)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text[:limit] + ("..." if len(text) > limit else "")


def loads(text: str) -> Any:
    """json.loads that cannot crash the run: nesting too deep is a ValueError, lone surrogates are replaced."""
    try:
        value = json.loads(text)
    except RecursionError as e:
        raise ValueError("JSON nested too deep") from e
    return scrub(value) if _SURROGATE_ESCAPE.search(text) else value


def clean_text(s: str) -> str:
    """Replace lone surrogates (which no UTF-8 store can hold) with U+FFFD."""
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return _LONE_SURROGATE.sub("\ufffd", s)


def scrub(value: Any) -> Any:
    """Every string in a decoded JSON value made storable (iterative: deep values cannot recurse us out)."""
    if isinstance(value, str):
        return clean_text(value)
    root = [value]
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, item in list(items):
            if isinstance(item, str):
                node[key] = clean_text(item)
            elif isinstance(item, (dict, list)):
                stack.append(item)
        if isinstance(node, dict) and any(isinstance(k, str) and clean_text(k) != k for k in node):
            for k in [k for k in node if clean_text(k) != k]:
                node[clean_text(k)] = node.pop(k)
    return root[0]


def obj(value: Any, where: str) -> dict[str, Any]:
    """A JSON object, or BadReply."""
    if not isinstance(value, dict):
        raise BadReply(where, value)
    return value


def opt_obj(value: Any, where: str) -> dict[str, Any]:
    """A JSON object or null (null reads as empty)."""
    return {} if value is None else obj(value, where)


def opt_list(value: Any, where: str) -> list[Any]:
    """A JSON array or null (null reads as empty)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadReply(where, value)
    return value


def opt_text(value: Any, where: str) -> str:
    """A string or null (null reads as ""); numbers, objects and lists are BadReply."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadReply(where, value)
    return value


def opt_int(value: Any, where: str) -> int | None:
    """An integer or null; anything else (a bool, a string, a float) is BadReply."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise BadReply(where, value)


def arguments(value: Any, where: str, notes: list[str]) -> str:
    """Tool-call arguments as the JSON text the protocol specifies; an object is accepted and noted."""
    if value is None or isinstance(value, str):
        return value or ""
    if isinstance(value, dict):
        note = f"{where} sent as a JSON object, not a string"
        if note not in notes:
            notes.append(note)
        return json.dumps(value)
    raise BadReply(where, value)
