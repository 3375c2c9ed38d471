"""Stitch conversations from their growing message lists: no client cooperation needed.

A chat API is stateless: every request carries the whole conversation so far. A request whose messages extend
(or repeat) an earlier request's messages continues that conversation; anything else opens a new one. Each
message is hashed in canonical form (sorted keys, so a client that re-serializes in another key order still
matches) and chained, so finding the longest known prefix costs one pass over the new request.

Two cases need care. A request identical to one still in flight is a second conversation that happens to open
the same way (two workers given the same card), not a retry. A request that extends a prefix the conversation
has already moved past is a fork: it opens a new conversation.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def _canon(message: Any) -> bytes:
    if isinstance(message, dict):
        message = {k: v for k, v in message.items() if v not in (None, "", [])}  # null and absent read alike
    return json.dumps(message, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass")


def prefix_hashes(messages: list[Any]) -> list[str]:
    """hashes[k] identifies messages[:k+1] (a chain: each hash covers every message before it)."""
    out, h = [], b""
    for m in messages:
        h = hashlib.sha256(h + _canon(m)).digest()
        out.append(h.hex()[:32])
    return out


@dataclass
class Stitcher(Generic[T]):
    """Maps each open conversation's latest request (its message-prefix hash) to the conversation. `T` is
    whatever the caller keeps per conversation. Only the latest request of each is kept: a request extending
    an older one (a fork) finds nothing and opens a new conversation."""

    heads: dict[str, T] = field(default_factory=dict)
    _head_of: dict[int, str] = field(default_factory=dict)

    def find(self, hashes: list[str], busy: set[int]) -> T | None:
        """The conversation this request continues (None: a new one). `busy`: ids of conversations with a
        request in flight (an identical request to one of those is another conversation)."""
        for k in range(len(hashes), 0, -1):
            conv = self.heads.get(hashes[k - 1])
            if conv is None:
                continue
            if k == len(hashes) and id(conv) in busy:
                return None  # the same opening while the first is still in flight: another conversation
            return conv
        return None

    def advance(self, conv: T, hashes: list[str]) -> None:
        """The conversation's latest request now has these messages."""
        self.forget(conv)
        if hashes:
            self.heads[hashes[-1]] = conv
            self._head_of[id(conv)] = hashes[-1]

    def forget(self, conv: T) -> None:
        """Drop a conversation's head (closed, or moved on)."""
        h = self._head_of.pop(id(conv), None)
        if h is not None and self.heads.get(h) is conv:
            del self.heads[h]
