"""Berkeley Function Calling Leaderboard (BFCL) categories as brainbench packs.

Reads the questions and possible answers that the `bfcl-eval` package ships (pinned: BFCL_VERSION) from
its installed data folder, without importing it (its own dependencies are heavy and not needed here), or
from `--data-dir`. Each BFCL entry becomes one scenario:

* env `schema_tools`, with the entry's functions offered as OpenAI tools exactly as BFCL presents them to
  function-calling models (language hint appended, dots in names replaced by underscores, BFCL types cast
  to JSON Schema types);
* the entry's conversation as the messages (no extra system prompt, as BFCL sends FC models none);
* one `bfcl` check (brainbench.scoring.bfcl_ast) holding the category, the original function docs and the
  possible answers, so BFCL's AST/relevance verdict is re-computed from the stored reply at any time.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import random
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import BrainbenchError

BFCL_PACKAGE = "bfcl-eval"
BFCL_VERSION = "2026.3.23"
PREFIX = "BFCL_v4"

CATEGORIES: dict[str, str] = {
    "simple": "simple_python",
    "multiple": "multiple",
    "parallel": "parallel",
    "parallel_multiple": "parallel_multiple",
    "irrelevance": "irrelevance",
    "live_simple": "live_simple",
    "live_multiple": "live_multiple",
    "live_parallel": "live_parallel",
    "live_parallel_multiple": "live_parallel_multiple",
    "live_irrelevance": "live_irrelevance",
    "live_relevance": "live_relevance",
}
"""Our category name -> BFCL v4 file stem. Java/JavaScript, multi-turn, memory, web-search and format
sensitivity categories are not imported (they need BFCL's executable back-ends or non-Python type rules)."""

NO_ANSWERS = {"irrelevance", "live_irrelevance", "live_relevance"}

# BFCL's GORILLA_TO_OPENAPI (the subset Python-syntax categories use)
_OPENAPI = {"integer": "integer", "number": "number", "float": "number", "string": "string", "boolean": "boolean",
            "bool": "boolean", "array": "array", "list": "array", "dict": "object", "object": "object",
            "tuple": "array", "any": "string"}
_PY_HINT = " Note that the provided function is in Python 3 syntax."


class ImportError_(BrainbenchError):
    """The BFCL data cannot be found or read."""


def data_dir(explicit: Path | None = None) -> Path:
    """The folder holding BFCL_v4_*.json and possible_answer/ (explicit, else the installed package's)."""
    if explicit:
        d = Path(explicit)
    else:
        spec = importlib.util.find_spec("bfcl_eval")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError_(f"{BFCL_PACKAGE} is not installed: pip install --no-deps {BFCL_PACKAGE}=={BFCL_VERSION} "
                               f"(or pass --data-dir to a folder with its data)")
        d = Path(list(spec.submodule_search_locations)[0]) / "data"
    if not (d / f"{PREFIX}_simple_python.json").is_file():
        raise ImportError_(f"{d}: no {PREFIX}_simple_python.json here; is this the bfcl_eval/data folder?")
    return d


def installed_version() -> str | None:
    try:
        from importlib.metadata import version

        return version(BFCL_PACKAGE)
    except Exception:
        return None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as e:
        raise ImportError_(f"{path}: cannot read: {e}") from None


def load_category(category: str, data: Path) -> list[dict[str, Any]]:
    """BFCL entries of one category, each with `ground_truth` joined in (absent for relevance categories)."""
    if category not in CATEGORIES:
        raise ImportError_(f"unknown BFCL category {category!r}; known: {', '.join(CATEGORIES)}")
    stem = f"{PREFIX}_{CATEGORIES[category]}.json"
    entries = _read_jsonl(data / stem)
    if category not in NO_ANSWERS:
        answers = {a["id"]: a["ground_truth"] for a in _read_jsonl(data / "possible_answer" / stem)}
        for e in entries:
            e["ground_truth"] = answers[e["id"]]
    return entries


def _cast(properties: dict[str, Any]) -> dict[str, Any]:
    """BFCL's _cast_to_openai_type for GORILLA_TO_OPENAPI, ported."""
    for value in properties.values():
        if "type" not in value:
            value["type"] = "string"
        else:
            t = value["type"]
            if t == "float":
                value["format"] = "float"
                value["description"] = value.get("description", "") + " This is a float type value."
            value["type"] = _OPENAPI.get(t, "string")
        if value["type"] in ("array", "object"):
            if "properties" in value:
                value["properties"] = _cast(value["properties"])
            elif "items" in value:
                value["items"]["type"] = _OPENAPI[value["items"]["type"]]
                if value["items"]["type"] == "array" and "items" in value["items"]:
                    value["items"]["items"]["type"] = _OPENAPI[value["items"]["items"]["type"]]
                elif value["items"]["type"] == "object" and "properties" in value["items"]:
                    value["items"]["properties"] = _cast(value["items"]["properties"])
    return properties


def with_hint(functions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The function docs as BFCL shows them (Python language hint appended to each description)."""
    out = copy.deepcopy(functions)
    for f in out:
        f["description"] = f.get("description", "") + _PY_HINT
    return out


def to_openai_tools(functions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """BFCL convert_to_tool(..., GORILLA_TO_OPENAPI, OPENAI_COMPLETIONS), ported."""
    tools = []
    for f in copy.deepcopy(functions):
        f["name"] = re.sub(r"\.", "_", f["name"])
        f["parameters"]["type"] = "object"
        f["parameters"]["properties"] = _cast(f["parameters"].get("properties", {}))
        tools.append({"type": "function", "function": f})
    return tools


def scenario(entry: dict[str, Any], category: str) -> dict[str, Any]:
    docs = with_hint(entry["function"])
    check: dict[str, Any] = {"type": "bfcl", "category": CATEGORIES[category] if category == "simple" else category}
    if category not in NO_ANSWERS:
        check.update(functions=entry["function"], ground_truth=entry["ground_truth"])
    return {
        "id": re.sub(r"[^A-Za-z0-9_.\-]", "_", entry["id"]),
        "description": f"BFCL {category} {entry['id']}",
        "env": "schema_tools",
        "state": {"tools": to_openai_tools(docs), "validate": False, "default_result": {"status": "ok"}},
        "messages": entry["question"][0],
        "max_turns": 2,
        # OpenAI's default, which BFCL relies on; llama.cpp's is false (extra calls dropped) so say it
        "params": {"temperature": 0, "max_tokens": 512, "parallel_tool_calls": True},
        "checks": [check],
        "tags": ["bfcl", category],
        "meta": {"bfcl_id": entry["id"], "bfcl_category": category, "bfcl_version": BFCL_VERSION},
    }


def build_pack(category: str, data: Path, limit: int | None = None, seed: int = 0) -> dict[str, Any]:
    entries = load_category(category, data)
    if limit and limit < len(entries):
        entries = sorted(random.Random(seed).sample(entries, limit), key=lambda e: entries.index(e))
    return {
        "name": f"bfcl_{category}",
        "description": f"BFCL v4 {category} ({len(entries)} cases) from {BFCL_PACKAGE} {BFCL_VERSION}; "
                       f"graded with BFCL's AST/relevance rules (brainbench.scoring.bfcl_ast).",
        "scenarios": [scenario(e, category) for e in entries],
    }


def import_categories(categories: Iterable[str], out_dir: Path, data: Path | None = None, limit: int | None = None,
                      seed: int = 0) -> list[tuple[str, Path, int]]:
    """Write one pack folder per category under `out_dir`; returns (pack name, folder, cases)."""
    d = data_dir(data)
    done = []
    for cat in categories:
        pack = build_pack(cat, d, limit, seed)
        folder = Path(out_dir) / pack["name"]
        folder.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(pack, sort_keys=False, allow_unicode=True, width=4096)
        (folder / "pack.yaml").write_text(text, encoding="utf-8")
        done.append((pack["name"], folder, len(pack["scenarios"])))
    return done


def stored_outputs(run_dir: Path) -> list[dict[str, Any]]:
    """The first replies of a run's BFCL attempts, as the agreement test's fixture rows:
    {model, category, bfcl_id, calls: [{name, arguments}] (structured calls, raw argument text), content}."""
    from ..scoring import stored_scenarios
    from ..store.db import RunStore

    rows = []
    with RunStore(Path(run_dir)) as store:
        scenarios = stored_scenarios(store)
        for rec in store.attempts(status="completed"):
            sc = scenarios.get(rec.scenario_hash)
            if sc is None or "bfcl_id" not in (sc.meta or {}) or not rec.turns:
                continue
            first = rec.turns[0].result
            rows.append({"model": rec.model, "category": sc.meta["bfcl_category"], "bfcl_id": sc.meta["bfcl_id"],
                         "calls": [{"name": c.name, "arguments": c.arguments_raw} for c in first.tool_calls if not c.in_text],
                         "content": first.content})
    return rows
