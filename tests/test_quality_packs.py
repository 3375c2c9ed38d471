"""The quality packs load, are big enough, use only registered graders, and known-good answers pass."""

from __future__ import annotations

import pytest
from quality_helpers import record, result

from brainbench.packs import discover
from brainbench.scoring.checks import CHECKS
from brainbench.scoring.score import score_attempt

QUALITY = ["toolcall", "instruct", "structured", "extract", "math", "bugfind", "cli", "context", "stress"]


@pytest.fixture(scope="module")
def packs():
    return discover()


def test_sizes(packs):
    for name in QUALITY:
        assert len(packs[name].scenarios) >= 15, name
    ctx = packs["context"].scenarios
    assert sum("multiturn" in s.tags for s in ctx) >= 10
    assert len({s.meta["depth"] for s in ctx if "needle" in s.tags}) >= 3
    assert len({s.meta["context_tokens"] // 1000 for s in ctx if "needle" in s.tags}) >= 5


def test_every_check_is_registered_and_runs(packs):
    junk = result('LINE: 1\nBUG: x\nFIX: y\n```bash\nls\n```\nANSWER: 1\n{"a": 1}', calls=[("f", {"x": 1})])
    for name in QUALITY:
        for sc in packs[name].scenarios:
            for c in sc.checks:
                assert c.type in CHECKS, f"{name}/{sc.id}: unknown check {c.type}"
            v = score_attempt(sc, record(junk))
            assert v.passed in (True, False)


def test_known_good_math_and_cli_answers_pass(packs):
    for sc in packs["math"].scenarios:
        spec = sc.checks[0].model_dump()
        line = (f"ANSWER: {spec['value']}" if "value" in spec
                else "ANSWER: " + ", ".join(f"{k}={v}" for k, v in spec["values"].items()))
        v = score_attempt(sc, record(result(f"Working...\n{line}")))
        assert v.passed, (sc.id, v.details)
    for sc in packs["cli"].scenarios:
        for cmd in sc.checks[0].model_dump()["expected"]:
            v = score_attempt(sc, record(result(f"```bash\n{cmd}\n```")))
            assert v.passed, (sc.id, cmd, v.details)


def test_known_good_needles_pass(packs):
    for sc in packs["context"].scenarios:
        if "needle" in sc.tags:
            v = score_attempt(sc, record(result(sc.meta["needle"].title())))
            assert v.passed, sc.id
            decoy = sc.messages[0]["content"].split("west gate is ")[1].split(".")[0]
            assert not score_attempt(sc, record(result(decoy))).passed, sc.id


def _concrete(x):
    """A concrete value satisfying an expected-argument spec, or raise LookupError when there is none to make."""
    if isinstance(x, dict) and x and all(k.startswith("$") for k in x):
        if "$any" in x:
            return _concrete(x["$any"][0])
        if "$set" in x:
            return [_concrete(i) for i in x["$set"]]
        if "$approx" in x:
            return x["$approx"]
        raise LookupError(x)
    if isinstance(x, dict):
        return {k: _concrete(v) for k, v in x.items()
                if not (isinstance(v, dict) and ("$optional" in v or "$absent" in v))}
    if isinstance(x, list):
        return [_concrete(i) for i in x]
    return x


def test_known_good_tool_calls_pass(packs):
    checked = 0
    for sc in packs["toolcall"].scenarios:
        specs = [c.model_dump() for c in sc.checks]
        match = next((s for s in specs if s["type"] == "tool_calls_match"), None)
        if match is None or not match["calls"] or len(specs) > 1 + ("call_sequence" in [s["type"] for s in specs]):
            continue
        try:
            calls = [(c["name"], _concrete(c.get("args") or {})) for c in match["calls"]]
        except LookupError:
            continue
        v = score_attempt(sc, record(result("", calls=calls), result("Done.")))
        assert v.passed, (sc.id, v.details)
        checked += 1
    assert checked >= 8
