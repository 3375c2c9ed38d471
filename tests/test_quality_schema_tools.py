"""The schema-only tool environment: tools from data, canned results, argument validation."""

from __future__ import annotations

import asyncio
import json

from brainbench.envs import get_env

TOOLS = [
    {"name": "get_price", "description": "Price of a stock.",
     "parameters": {"type": "object", "required": ["ticker"], "properties": {"ticker": {"type": "string"}}}},
    {"type": "function", "function": {"name": "buy", "parameters": {
        "type": "object", "required": ["ticker", "qty"],
        "properties": {"ticker": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}}}}},
]


def make(tmp_path, **state):
    return get_env("schema_tools")({"tools": TOOLS, **state}, tmp_path)


def test_specs_and_offered(tmp_path):
    env = make(tmp_path)
    assert [t["function"]["name"] for t in env.tool_specs()] == ["get_price", "buy"]
    assert [t["function"]["name"] for t in env.tool_specs(["buy"])] == ["buy"]
    assert env.tool_specs([]) == []


def test_canned_results_in_sequence(tmp_path):
    env = make(tmp_path, results={"get_price": [{"price": 10}, {"price": 11}]})
    outs = [asyncio.run(env.call("get_price", {"ticker": "ACME"})) for _ in range(3)]
    assert [json.loads(o.output)["price"] for o in outs] == [10, 11, 11]
    assert json.loads(asyncio.run(env.call("buy", {"ticker": "ACME", "qty": 2})).output) == {"status": "ok"}
    assert [c["name"] for c in env.final_state()["calls"]] == ["get_price"] * 3 + ["buy"]


def test_validation_and_errors(tmp_path):
    env = make(tmp_path)
    bad = asyncio.run(env.call("buy", {"ticker": "ACME", "qty": "2"}))
    assert not bad.ok and bad.error_kind == "malformed_args" and "qty" in bad.output
    assert asyncio.run(env.call("sell", {})).error_kind == "unknown_tool"
    assert asyncio.run(env.call("buy", None, parse_error="bad json")).error_kind == "malformed_args"
    assert asyncio.run(env.call("buy", {"ticker": "A", "qty": 1}, offered=["get_price"])).error_kind == "unknown_tool"
    loose = make(tmp_path, validate=False)
    assert asyncio.run(loose.call("buy", {"ticker": "ACME", "qty": "2"})).ok
