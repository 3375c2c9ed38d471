"""BFCL's AST and relevance verdicts, re-implemented over our stored attempts (the `bfcl` check type).

Semantics follow the checker of `bfcl-eval` 2026.3.23 (`eval_checker/ast_eval/ast_checker.py` and the
relevance runner) for function-calling (FC) models that speak the OpenAI wire format:

* only the first reply's structured tool calls count (calls written as text are an FC model's plain text);
* a call whose arguments are not a JSON object is a decode failure (AST: fail; irrelevance: no call);
* function names with dots are offered and compared with dots replaced by underscores;
* parameter values: type checked against the BFCL type (int is promoted for float; a value of the
  possible answers' type is accepted as a variable), strings compared after BFCL's standardisation
  (spaces and `,./-_*^` removed, lower-cased, ' -> "), lists in order, dicts key by key, "" in the possible
  answers marks an optional parameter.

The one intended difference: parallel calls are paired with a perfect bipartite matching, where BFCL pairs
them greedily (first fit). When one model call could match two expected calls, greedy pairing can fail a
correct answer; tests/test_bfcl_agreement.py shows the case and documents it.
"""

from __future__ import annotations

import re
from typing import Any

from .checks import AttemptView
from .matching import bipartite

PY_TYPES: dict[str, type] = {"string": str, "integer": int, "float": float, "boolean": bool, "array": list,
                             "tuple": list, "dict": dict, "any": str}
NESTED = ("array", "tuple")
RELEVANCE = ("irrelevance", "live_irrelevance", "live_relevance")


class Fail(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def standardize(s: str) -> str:
    return re.sub(r"[ \,\.\/\-\_\*\^]", "", s).lower().replace("'", '"')


def _possible_type(possible: list) -> type | None:
    for a in possible:
        if a != "":
            return type(a)
    return None


def _type_ok(value: Any, possible: list, expected: type[Any], nested: type[Any] | None) -> tuple[bool, bool]:
    """(valid, is_variable), as BFCL's type_checker."""
    ptype = _possible_type(possible)
    is_variable = ptype is not None and ptype != expected
    if type(value) == expected:  # noqa: E721 - exact type, as BFCL (a bool is not an int)
        if nested is None:
            return True, is_variable
        for item in possible:
            flag = True
            if type(item) == list:  # noqa: E721
                flag = all(_type_ok(v, item, nested, None)[0] for v in value)
            if flag:
                return True, is_variable
        return False, is_variable  # a failed nested check is final in BFCL, variable or not
    if ptype is not None and type(value) == ptype:  # noqa: E721
        return True, True
    return False, is_variable


def _dict_ok(value: dict, possibles: list) -> bool:
    for possible in possibles:
        if possible == "":
            continue
        ok = True
        for k, v in value.items():
            if k not in possible:
                ok = False
                break
            sv = standardize(v) if type(v) == str else v  # noqa: E721
            std = [standardize(x) if type(x) == str else x for x in possible[k]]  # noqa: E721
            if sv not in std:
                ok = False
                break
        if ok:
            for k, v in possible.items():
                if k not in value and "" not in v:
                    ok = False
                    break
        if ok:
            return True
    return False


def _list_dict_ok(value: list, possibles: list) -> bool:
    for possible in possibles:
        if len(value) != len(possible):
            continue
        if all(_dict_ok(v, [p]) for v, p in zip(value, possible)):
            return True
    return False


def _list_ok(value: list, possibles: list) -> bool:
    std = [standardize(v) if type(v) == str else v for v in value]  # noqa: E721
    cands = [[standardize(x) if type(x) == str else x for x in p] for p in possibles]
    return std in cands


def check_one(doc: dict, name: str, args: dict, expected: dict) -> None:
    """One call against one expected call ({func: {param: [possible values]}}); raises Fail."""
    func, possible = next(iter(expected.items()))
    want = func.replace(".", "_") if "." in func else func
    if name != want:
        raise Fail("wrong_func_name", f"called {name}, expected {want}")
    props = doc["parameters"]["properties"]
    for p in doc["parameters"].get("required", []):
        if p not in args:
            raise Fail("missing_required", f"missing required parameter {p!r}")
    for p, v in args.items():
        if p not in props or p not in possible:
            raise Fail("unexpected_param", f"unexpected parameter {p!r}")
        etype = props[p]["type"]
        expected_t = PY_TYPES[etype]
        nested = PY_TYPES[props[p]["items"]["type"]] if etype in NESTED else None
        if etype == "float" and type(v) == int:  # noqa: E721
            v = float(v)
        ok, is_var = _type_ok(v, possible[p], expected_t, nested)
        if not ok:
            raise Fail("type_error", f"{p}={v!r}: expected type {etype}")
        if not is_var:
            if expected_t == dict:
                if not _dict_ok(v, possible[p]):
                    raise Fail("value_error", f"{p}={v!r} not among {possible[p]!r}")
                continue
            if expected_t == list and nested == dict:
                if not _list_dict_ok(v, possible[p]):
                    raise Fail("value_error", f"{p}={v!r} not among {possible[p]!r}")
                continue
            if expected_t == str:
                std = [standardize(x) for x in possible[p] if type(x) == str]  # noqa: E721
                if standardize(v) not in std:
                    raise Fail("value_error", f"{p}={v!r} not among {possible[p]!r}")
                continue
            if expected_t == list:
                if not _list_ok(v, possible[p]):
                    raise Fail("value_error", f"{p}={v!r} not among {possible[p]!r}")
                continue
        if v not in possible[p]:
            raise Fail("value_error", f"{p}={v!r} not among {possible[p]!r}")
    for p in possible:
        if p not in args and "" not in possible[p]:
            raise Fail("missing_optional", f"parameter {p!r} not given and not optional")


def _doc(functions: list[dict], name: str) -> dict:
    for f in functions:
        if f["name"] == name:
            return f
    raise Fail("no_doc", f"no function description for {name}")


def ast_verdict(category: str, functions: list[dict], calls: list[tuple[str, dict]], ground_truth: list[dict],
                greedy: bool = False) -> tuple[bool, str]:
    """(valid, reason) for decoded calls [(name, args)] of an AST category."""
    try:
        if "parallel" in category:
            if len(calls) != len(ground_truth):
                raise Fail("wrong_count", f"{len(calls)} call(s), expected {len(ground_truth)}")

            def fits(exp: dict, call: tuple[str, dict]) -> bool:
                try:
                    check_one(_doc(functions, next(iter(exp))), call[0], call[1], exp)
                    return True
                except Fail:
                    return False

            if greedy:  # BFCL's own pairing, kept for the agreement test
                used: set[int] = set()
                for exp in ground_truth:
                    hit = next((i for i, c in enumerate(calls) if i not in used and fits(exp, c)), None)
                    if hit is None:
                        raise Fail("cannot_find_match", f"no call matches {next(iter(exp))}")
                    used.add(hit)
                return True, ""
            if bipartite([[fits(exp, c) for c in calls] for exp in ground_truth]) is None:
                raise Fail("cannot_find_match", "the calls cannot be paired one-to-one with the expected calls")
            return True, ""
        if len(calls) != len(ground_truth) or ("multiple" not in category and len(calls) != 1):
            raise Fail("wrong_count", f"{len(calls)} call(s), expected {len(ground_truth)}")
        exp = ground_truth[0]
        check_one(_doc(functions, next(iter(exp))), calls[0][0], calls[0][1], exp)
        return True, ""
    except Fail as f:
        return False, f"{f.kind}: {f}"


def decode_first_reply(view: AttemptView, text_calls: bool = False) -> list[tuple[str, dict]] | None:
    """The first reply's structured calls as [(name, args)]; None when BFCL's FC decoder would fail
    (no structured calls with non-empty text, or arguments that are not a JSON object). With `text_calls`,
    calls the model wrote as text (recovered by the runner) count too: not BFCL, a diagnostic."""
    turns = view.record.turns
    if not turns:
        return None
    r = turns[0].result
    calls = [c for c in r.tool_calls if text_calls or not c.in_text]
    if not calls:
        return [] if r.content == "" else None
    out = []
    for c in calls:
        if not isinstance(c.arguments, dict):
            return None
        out.append((c.name, c.arguments))
    return out


def relevance_verdict(category: str, decoded: list[tuple[str, dict]] | None) -> tuple[bool, str]:
    has_call = bool(decoded)
    if "irrelevance" in category:
        return (not has_call), ("" if not has_call else "called a function where none fits")
    return has_call, ("" if has_call else "no function call where one fits")
