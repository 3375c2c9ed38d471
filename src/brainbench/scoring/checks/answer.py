"""Answer-text helpers shared by the quality check families, and the argument bases they share.

`AnswerCheck` grades the answer text (`turn: first` grades the first reply instead); `Range` adds
`exact`/`min`/`max` bounds on a count.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Literal

from pydantic import Field

from ..text import words
from . import AttemptView, Check

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+.-]*)[^\n]*\n(.*?)(?:```|$)", re.DOTALL)


def answer_text(view: AttemptView, turn: str = "last") -> str:
    """The graded answer: the last non-empty content (or, with `turn="first"`, the first turn's)."""
    if turn == "first":
        turns = view.record.turns
        return turns[0].result.content if turns else ""
    return view.final_content


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """Every ``` fenced block as (language tag, body)."""
    return [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]


def extract_json(text: str, strict: bool = False) -> tuple[Any, str | None]:
    """Parse the JSON value in an answer: (value, None) or (None, why not).

    strict: the whole answer must be one JSON value (surrounding whitespace allowed, nothing else).
    Otherwise: the whole answer, else the first ```json fenced block, else the first balanced {...}/[...].
    """
    stripped = text.strip()
    try:
        return json.loads(stripped), None
    except json.JSONDecodeError as e:
        if strict:
            return None, f"answer is not pure JSON ({e.msg} at char {e.pos})"
    for _lang, body in fenced_blocks(text):
        try:
            return json.loads(body.strip()), None
        except json.JSONDecodeError:
            continue
    dec = json.JSONDecoder()
    for i, ch in enumerate(text):
        if ch in "{[":
            try:
                value, _ = dec.raw_decode(text, i)
                return value, None
            except json.JSONDecodeError:
                continue
    return None, "no JSON value found in the answer"


_NUM_TOKEN = re.compile(r"[-+−]?(?:\d[\d,_ ]*\d|\d)?(?:\.\d+)?(?:[eE][-+]?\d+)?")


def parse_number(value: Any) -> float | None:
    """A number from a value or from text: '1,234.5', '$12', '-3/4', '45%', '2.5e3', '3 cm' (first number)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        return None
    s = value.strip().replace("−", "-").replace("\u2009", "").replace("\u00a0", "")
    s = re.sub(r"^[\s$€£¥~≈]+", "", s).replace("$", "").replace("€", "").replace("£", "")
    m = re.match(r"^([-+]?\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)\b", s)
    if m and float(m.group(2)) != 0:
        return float(m.group(1)) / float(m.group(2))
    m = re.match(r"^[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?", s)
    if not m or not re.search(r"\d", m.group(0)):
        return None
    try:
        return float(m.group(0).replace(",", ""))
    except ValueError:
        return None


def numbers_close(expected: float, actual: float, rel_tol: float = 1e-6, abs_tol: float = 1e-9) -> bool:
    return math.isclose(expected, actual, rel_tol=rel_tol, abs_tol=abs_tol)


def norm_text(s: str) -> str:
    """Case-folded, whitespace-collapsed, trailing punctuation dropped."""
    return " ".join(s.casefold().split()).strip(" .;:,!")

__all__ = ["AnswerCheck", "Range", "answer_text", "extract_json", "fenced_blocks", "norm_text",
           "numbers_close", "parse_number", "words"]


class AnswerCheck(Check):
    """Arguments of every check over the answer text."""

    turn: Literal["last", "first"] = "last"
    """Which reply is graded: the last non-empty answer (default) or the first reply."""

    def answer(self, view: AttemptView) -> str:
        return answer_text(view, self.turn)


class Range(Check):
    """Bounds on a count; each is optional."""

    exact: int | None = Field(default=None, ge=0)
    """The count must be exactly this."""
    min: int | None = Field(default=None, ge=0)
    """The count must be at least this."""
    max: int | None = Field(default=None, ge=0)
    """The count must be at most this."""

    def out_of_range(self, n: int, what: str) -> str | None:
        """Why `n` breaks the bounds, or None."""
        if self.exact is not None and n != self.exact:
            return f"{n} {what}, expected exactly {self.exact}"
        if self.min is not None and n < self.min:
            return f"{n} {what}, expected at least {self.min}"
        if self.max is not None and n > self.max:
            return f"{n} {what}, expected at most {self.max}"
        return None
