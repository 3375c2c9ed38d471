"""Math checks: the final `ANSWER:` line holds the right number(s)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import model_validator

from . import AttemptView, Number, Outcome
from .answer import AnswerCheck, norm_text, numbers_close, parse_number

_ANSWER_LINE = re.compile(r"(?im)^[ \t>*_#-]*(?:\\\[|\$\$?)?[ \t]*\**(?:final[ \t]+)?answer\**[ \t]*\**[ \t]*[:=][ \t]*(.+?)[ \t*_]*$")


def answer_line(text: str) -> str | None:
    """The text after the last `ANSWER:` line."""
    found = _ANSWER_LINE.findall(text)
    if not found:
        return None
    return re.sub(r"\s*(\\\]|\$\$?)\s*$", "", found[-1].strip()).strip("`$* ")  # LaTeX \[ ... \] or $ ... $


def parse_pairs(line: str) -> dict[str, str]:
    """'x=3, y = -2; total=1,200' -> {'x': '3', 'y': '-2', 'total': '1,200'}."""
    parts = re.split(r"[;,]\s*(?=[A-Za-z_][\w ]*?=)", line)
    out = {}
    for p in parts:
        k, sep, v = p.partition("=")
        if sep:
            out[norm_text(k).replace(" ", "_")] = v.strip()
    return out


class NumericAnswer(AnswerCheck):
    """The final `ANSWER:` line holds the number (`value`) or the numbers (`values`, written
    `ANSWER: key=value, ...`) within the tolerances."""

    type: Literal["numeric_answer"] = "numeric_answer"
    value: Number | None = None
    """The expected number."""
    values: dict[str, Number] | None = None
    """Expected numbers by key, instead of `value`."""
    rel_tol: Number = 1e-4
    """Relative tolerance."""
    abs_tol: Number = 1e-6
    """Absolute tolerance."""
    fallback: Literal["last_number"] | None = None
    """`last_number`: without an ANSWER line, take the last number in the answer (single `value` only)."""

    @model_validator(mode="after")
    def _one_target(self) -> NumericAnswer:
        if (self.value is None) == (self.values is None):
            raise ValueError("give exactly one of 'value' and 'values'")
        return self

    def run(self, view: AttemptView) -> Outcome:
        text = self.answer(view)
        line = answer_line(text)
        if line is None:
            if self.fallback == "last_number" and self.value is not None:
                nums = re.findall(r"[-−]?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?", text)
                line = nums[-1] if nums else None
            if line is None:
                return "no final 'ANSWER:' line"
        return self._values(line) if self.values is not None else self._value(line)

    def _values(self, line: str) -> Outcome:
        pairs = parse_pairs(line)
        for key, want in (self.values or {}).items():
            k = norm_text(str(key)).replace(" ", "_")
            if k not in pairs:
                return f"ANSWER line has no {key}= (got {line!r})"
            got = parse_number(pairs[k])
            if got is None or not numbers_close(float(want), got, float(self.rel_tol), float(self.abs_tol)):
                return f"{key}={pairs[k]!r}, expected {want}"
        return None

    def _value(self, line: str) -> Outcome:
        value = line.split("=", 1)[1] if "=" in line and parse_number(line) is None else line
        got = parse_number(value)
        want = float(self.value or 0)
        if got is None:
            return f"ANSWER {line!r} is not a number"
        if not numbers_close(want, got, float(self.rel_tol), float(self.abs_tol)):
            return f"ANSWER {got:g}, expected {want:g}"
        return None
