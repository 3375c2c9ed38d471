"""Prompts of a chosen token length, cache-busted (a unique nonce first) or cache-warm (a shared prefix).

We never tokenize on the client: one untimed calibration request measures the server's own token count
for a known number of filler words, and lengths are scaled from that. Every figure then reports the
prompt tokens the server said it received (`usage.prompt_tokens`).
"""

from __future__ import annotations

import random
import uuid
from typing import Any

_WORDS = (
    "time year people way day man thing woman life child world school state family student group country "
    "problem hand part place case week company system program question work government number night point "
    "home water room mother area money story fact month lot right study book eye job word business issue "
    "side kind head house service friend father power hour game line end member law car city community name "
    "president team minute idea kid body information back parent face others level office door health person "
    "art war history party result change morning reason research girl guy moment air teacher force education "
    "river garden window table paper letter music market energy light stone field road island forest summer "
    "winter bridge engine signal record report basket candle harbor ladder meadow orbit pencil rocket valley"
).split()

INSTRUCTION = "Continue the following notes as one long, plain-text story. Do not stop early."


def nonce() -> str:
    """A fresh unique tag; placed first in the prompt so no prefix cache can match past it."""
    return uuid.uuid4().hex[:12]


def filler(n_words: int, seed: int = 0) -> str:
    """Deterministic filler text of `n_words` common English words (about one token each)."""
    rng = random.Random(seed)
    return " ".join(rng.choice(_WORDS) for _ in range(max(0, n_words)))


def messages(n_words: int, tag: str, *, seed: int = 0, instruction: str = INSTRUCTION) -> list[dict[str, Any]]:
    """A chat whose first characters are `tag` (unique tag = cache-busted; shared tag = cache-warm)."""
    return [
        {"role": "system", "content": f"[run {tag}] You are a writing assistant."},
        {"role": "user", "content": f"{instruction}\n\n{filler(n_words, seed)}"},
    ]


class Calibration:
    """prompt_tokens ≈ overhead + per_word × words, measured on the server (defaults until measured)."""

    def __init__(self, overhead: float = 40.0, per_word: float = 1.0, measured: bool = False):
        self.overhead, self.per_word, self.measured = overhead, per_word, measured

    def words_for(self, tokens: int) -> int:
        return max(1, round((tokens - self.overhead) / self.per_word))

    @classmethod
    def fit(cls, small: tuple[int, int], large: tuple[int, int]) -> Calibration:
        """From two (words, prompt_tokens) points."""
        (w0, t0), (w1, t1) = small, large
        per_word = (t1 - t0) / (w1 - w0) if w1 != w0 else 1.0
        if per_word <= 0:
            per_word = 1.0
        return cls(overhead=t0 - per_word * w0, per_word=per_word, measured=True)

    def to_dict(self) -> dict[str, Any]:
        return {"overhead_tokens": round(self.overhead, 2), "tokens_per_word": round(self.per_word, 4),
                "measured": self.measured}
