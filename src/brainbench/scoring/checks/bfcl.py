"""The `bfcl` check type: BFCL's AST and relevance verdicts for imported cases (`brainbench import bfcl`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from ..bfcl_ast import RELEVANCE, ast_verdict, decode_first_reply, relevance_verdict
from . import AttemptView, Check, Outcome


class Bfcl(Check):
    """BFCL verdict for an imported case (only the first reply's structured calls count, as BFCL's FC rules)."""

    type: Literal["bfcl"] = "bfcl"
    category: str
    """BFCL category (simple_python, parallel, irrelevance, ...)."""
    functions: list[dict[str, Any]] = Field(default_factory=list)
    """The original BFCL function docs (AST categories)."""
    ground_truth: list[dict[str, Any]] = Field(default_factory=list)
    """BFCL's possible answers: [{function: {param: [accepted values]}}] (AST categories)."""
    text_calls: bool = False
    """Also accept calls written as text: a diagnostic that separates a template/parser mismatch from a wrong call."""
    greedy: bool = False
    """Pair parallel calls greedily, as BFCL does, instead of with a perfect matching (for the agreement test)."""

    @model_validator(mode="after")
    def _answers_for_ast(self) -> Bfcl:
        if self.category not in RELEVANCE and not (self.functions and self.ground_truth):
            raise ValueError(f"category {self.category!r} needs 'functions' and 'ground_truth'")
        return self

    def run(self, view: AttemptView) -> Outcome:
        decoded = decode_first_reply(view, self.text_calls)
        if self.category in RELEVANCE:
            ok, why = relevance_verdict(self.category, decoded)
            return None if ok else (why, "unneeded_call" if "irrelevance" in self.category else "wrong_result")
        if decoded is None:
            return "no decodable function call in the first reply", "wrong_result"
        ok, why = ast_verdict(self.category, self.functions, decoded, self.ground_truth, self.greedy)
        return None if ok else why
