"""Structured-output checks: the answer is JSON, valid against a schema, with the right field values."""

from __future__ import annotations

from typing import Any, Literal

import jsonschema
from pydantic import Field

from . import AttemptView, Number, Outcome, get_path
from .answer import AnswerCheck, extract_json, fenced_blocks, norm_text, numbers_close, parse_number
from .tools import _is_op, match_arg


class JsonOnly(AnswerCheck):
    """The whole answer is one JSON value (no prose, no code fence unless `allow_fence`)."""

    type: Literal["json_only"] = "json_only"
    allow_fence: bool = False
    """Accept the JSON inside one ``` fenced block that is the whole answer."""

    def run(self, view: AttemptView) -> Outcome:
        text = self.answer(view).strip()
        if self.allow_fence:
            blocks = fenced_blocks(text)
            if len(blocks) == 1 and text.startswith("```") and text.rstrip().endswith("```"):
                text = blocks[0][1]
        _, err = extract_json(text, strict=True)
        return err


class JsonSchema(AnswerCheck):
    """The answer's JSON validates against `schema` (a real JSON Schema validator, Draft 2020-12) and has the
    values in `fields`."""

    type: Literal["json_schema"] = "json_schema"
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    """The JSON Schema (Draft 2020-12) the answer must validate against."""
    fields: dict[str, Any] = Field(default_factory=dict)
    """Dotted path -> expected value (compared as tool arguments are, `$` operators allowed)."""
    strict: bool = False
    """The answer must be pure JSON (no prose around it)."""

    def run(self, view: AttemptView) -> Outcome:
        value, err = extract_json(self.answer(view), strict=self.strict)
        if err:
            return err
        validator = jsonschema.Draft202012Validator(self.schema_, format_checker=jsonschema.FormatChecker())
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        if errors:
            e = jsonschema.exceptions.best_match(errors) or errors[0]
            where = "/".join(str(p) for p in e.absolute_path) or "(root)"
            return f"schema violation at {where}: {e.message[:200]}"
        for path, want in self.fields.items():
            try:
                got = get_path(value, path)
            except (KeyError, IndexError):
                return f"field {path} missing"
            if not match_arg(want, got):
                return f"field {path} = {got!r}, expected {want!r}"
        return None


def flatten_fields(data: Any, prefix: str = "") -> dict[str, Any]:
    """Atomic fields by dotted path (lists by index)."""
    if isinstance(data, dict) and not _is_op(data):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(flatten_fields(v, f"{prefix}{k}."))
        return out
    if isinstance(data, list) and data and not _is_op(data):
        out = {}
        for i, v in enumerate(data):
            out.update(flatten_fields(v, f"{prefix}{i}."))
        return out
    return {prefix[:-1]: data}


def field_equal(expected: Any, actual: Any) -> bool:
    """Extraction equality: operators as in match_arg; numbers also from numeric strings ('$1,200' == 1200);
    strings case/space/trailing-punctuation-insensitive; None matches null, '' and 'n/a'."""
    if _is_op(expected):
        return match_arg(expected, actual)
    if expected is None:
        return actual is None or (isinstance(actual, str) and norm_text(actual) in ("", "n/a", "none", "null", "unknown"))
    if isinstance(expected, bool):
        if isinstance(actual, str):
            return norm_text(actual) in (("true", "yes") if expected else ("false", "no"))
        return actual is expected
    if isinstance(expected, (int, float)):
        got = parse_number(actual)
        return got is not None and numbers_close(float(expected), got, rel_tol=1e-6, abs_tol=1e-6)
    if isinstance(expected, str):
        if isinstance(actual, (int, float)) and not isinstance(actual, bool):
            n = parse_number(expected)
            return n is not None and numbers_close(n, float(actual))
        return isinstance(actual, str) and norm_text(expected) == norm_text(actual)
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(field_equal(e, a) for e, a in zip(expected, actual))
    return expected == actual


class ExtractFields(AnswerCheck):
    """The fraction of atomic fields correct is at least `threshold`. Extra fields in the answer are ignored;
    a missing field counts as wrong."""

    type: Literal["extract_fields"] = "extract_fields"
    expected: Any
    """The expected object; each leaf is one field (numbers also match numeric strings, None matches n/a)."""
    threshold: Number = Field(default=1.0, ge=0, le=1)
    """The fraction of fields that must be correct."""
    strict: bool = False
    """The answer must be pure JSON (no prose around it)."""

    def run(self, view: AttemptView) -> Outcome:
        value, err = extract_json(self.answer(view), strict=self.strict)
        if err:
            return err
        expected = flatten_fields(self.expected)
        wrong = []
        for path, want in expected.items():
            try:
                got = get_path(value, path)
            except (KeyError, IndexError, TypeError):
                wrong.append(f"{path} (missing)")
                continue
            if not field_equal(want, got):
                wrong.append(f"{path}={got!r}")
        frac = 1 - len(wrong) / max(1, len(expected))
        if frac + 1e-9 < self.threshold:
            return (f"{len(expected) - len(wrong)}/{len(expected)} fields correct ({frac:.0%} < {self.threshold:.0%}); "
                    f"wrong: {', '.join(wrong[:6])}")
        return None
