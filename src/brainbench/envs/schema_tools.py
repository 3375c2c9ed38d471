"""An environment whose tools are data: JSON schemas in the scenario's state, canned results back.

For function-calling cases (our `toolcall` pack, imported BFCL categories) where what is graded is the call
itself, not what a tool does. State:

    tools:    [{name, description, parameters}] or OpenAI-style [{type: function, function: {...}}]
    results:  {tool_name: result}  (a list is served one item per call, the last one repeating)
    default_result: what any other call returns (default {"status": "ok"})
    validate: check arguments against the tool's schema and answer a `malformed_args` error (default true)

Every call is logged in the final state under `calls` ({name, arguments}).
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from .base import Environment, ToolOutcome


def _function(spec: dict[str, Any]) -> dict[str, Any]:
    fn = spec.get("function", spec) if spec.get("type") == "function" else spec
    return {"name": fn["name"], "description": fn.get("description", ""),
            "parameters": fn.get("parameters") or {"type": "object", "properties": {}}}


class SchemaToolsEnv(Environment):
    """Tools declared as JSON schemas; each call returns a canned result."""

    name = "schema_tools"

    def setup(self, state: dict[str, Any]) -> None:
        self.functions = {f["name"]: f for f in (_function(t) for t in state.get("tools") or [])}
        self.results = dict(state.get("results") or {})
        self.default_result = state.get("default_result", {"status": "ok"})
        self.validate = bool(state.get("validate", True))
        self.served: dict[str, int] = {}
        self.state = {"calls": []}

    def final_state(self) -> dict[str, Any]:
        return self.state

    def tool_specs(self, offered: list[str] | None = None) -> list[dict[str, Any]]:
        names = list(self.functions) if offered is None else [n for n in offered if n in self.functions]
        return [{"type": "function", "function": self.functions[n]} for n in names]

    def _result(self, name: str) -> Any:
        value = self.results.get(name, self.default_result)
        if isinstance(value, list) and value:
            i = self.served.get(name, 0)
            self.served[name] = i + 1
            value = value[min(i, len(value) - 1)]
        return value

    async def call(self, name: str, arguments: dict[str, Any] | None, offered: list[str] | None = None,
                   parse_error: str | None = None) -> ToolOutcome:
        self.state["calls"].append({"name": name, "arguments": arguments})
        allowed = list(self.functions) if offered is None else [n for n in offered if n in self.functions]
        if name not in allowed:
            return ToolOutcome(False, json.dumps({"error": f"unknown tool {name!r}; available: {', '.join(allowed)}"}),
                               "unknown_tool")
        if arguments is None:
            return ToolOutcome(False, json.dumps({"error": parse_error or "arguments are not a JSON object"}),
                               "malformed_args")
        if self.validate:
            try:
                errors = list(jsonschema.Draft202012Validator(self.functions[name]["parameters"]).iter_errors(arguments))
            except jsonschema.exceptions.SchemaError:
                errors = []  # a schema the validator cannot read is not the model's fault
            if errors:
                e = jsonschema.exceptions.best_match(errors) or errors[0]
                where = "/".join(str(p) for p in e.absolute_path) or "arguments"
                return ToolOutcome(False, json.dumps({"error": f"invalid arguments: {where}: {e.message[:200]}"}),
                                   "malformed_args")
        value = self._result(name)
        return ToolOutcome(True, value if isinstance(value, str) else json.dumps(value))
