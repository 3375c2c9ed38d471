"""Boundary (stress) checks: every reply says something, nothing loops, nothing is cut off by the budget."""

from __future__ import annotations

from typing import Literal

from ..text import STRESS_LOOPS, loop_reason
from . import AttemptView, Check, Outcome


def degeneracy(text: str) -> str | None:
    """Why a text looks degenerate (a loop) by the stress thresholds, or None."""
    return loop_reason(text, STRESS_LOOPS)


class NonemptyAnswer(Check):
    """Every reply carried an answer or a tool call (a silent-empty reply, even with reasoning, fails)."""

    type: Literal["nonempty_answer"] = "nonempty_answer"

    def run(self, view: AttemptView) -> Outcome:
        for t in view.record.turns:
            r = t.result
            if not r.content.strip() and not r.tool_calls:
                why = " (reasoning only: thinking ate the answer)" if r.reasoning.strip() else ""
                return f"turn {t.index + 1} was empty (finish_reason={r.finish_reason}){why}"
        if not view.record.turns:
            return "no reply"
        return None


class NoDegenerateRepetition(Check):
    """No reply loops: a short unit repeated, the same line again and again, text that compresses like a loop."""

    type: Literal["no_degenerate_repetition"] = "no_degenerate_repetition"
    include_reasoning: bool = False
    """Grade the reasoning text too."""

    def run(self, view: AttemptView) -> Outcome:
        for t in view.record.turns:
            why = degeneracy(t.result.content)
            if why:
                return f"degenerate output in turn {t.index + 1}: {why}"
            if self.include_reasoning:
                why = degeneracy(t.result.reasoning)
                if why:
                    return f"degenerate reasoning in turn {t.index + 1}: {why}"
        return None


class FinishNotLength(Check):
    """No reply was cut off by the token budget (finish_reason 'length')."""

    type: Literal["finish_not_length"] = "finish_not_length"

    def run(self, view: AttemptView) -> Outcome:
        for t in view.record.turns:
            if t.result.finish_reason == "length":
                r = t.result
                think = r.usage.reasoning_tokens or (len(r.reasoning.split()) and f"~{len(r.reasoning.split())} words")
                extra = f"; reasoning {think}" if think else ""
                return f"turn {t.index + 1} hit the token budget (finish_reason=length{extra})"
        return None
