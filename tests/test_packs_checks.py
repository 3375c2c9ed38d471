"""Typed checks: validated when a pack loads (one line naming file, scenario, check and field, before any model
call), described by the shipped JSON Schema, registered in one place; the shared loop detector and matcher."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from test_cli import bb, one_line_error

from brainbench.packs import BUILTIN_DIR, SCHEMA_FILE, PackError, discover, file_schema, load_pack
from brainbench.scoring.checks import CHECKS, AnyCheck, Check, load_check
from brainbench.scoring.matching import bipartite
from brainbench.scoring.text import STRESS_LOOPS, TRACE_LOOPS, loop_reason

MSG = [{"role": "user", "content": "hi"}]


def write_pack(tmp_path: Path, checks: list) -> Path:
    folder = tmp_path / "x"
    (folder / "scenarios").mkdir(parents=True)
    (folder / "pack.yaml").write_text("name: x\n")
    (folder / "scenarios" / "a.yaml").write_text(yaml.safe_dump([{"id": "foo", "messages": MSG, "checks": checks}]))
    return folder


BROKEN = [
    ([{"type": "content_regex", "patern": "hi"}],
     "scenario 'foo': checks[0] (content_regex): unknown field 'patern'; did you mean 'pattern'?"),
    ([{"type": "no_tool_calls"}, {"type": "contnt_regex", "pattern": "hi"}],
     "scenario 'foo': checks[1]: unknown check type 'contnt_regex'; did you mean 'content_regex'?"),
    ([{"type": "tool_called"}], "scenario 'foo': checks[0] (tool_called): missing required field 'name'"),
]


@pytest.mark.parametrize("checks,needle", BROKEN)
def test_broken_check_is_one_line_naming_file_scenario_and_field(tmp_path, checks, needle):
    folder = write_pack(tmp_path, checks)
    with pytest.raises(PackError) as e:
        load_pack(folder)
    msg = str(e.value)
    assert msg == f"{folder / 'scenarios' / 'a.yaml'}: {needle}"


@pytest.mark.parametrize("checks,needle", BROKEN)
def test_broken_check_fails_packs_and_run_before_any_model_call(tmp_path, checks, needle):
    folder = write_pack(tmp_path, checks)
    one_line_error(bb("packs", "--pack-dir", str(folder)), needle)
    proc = bb("run", "--endpoint", "http://127.0.0.1:9/v1", "--model", "m", "--pack", "x", "--pack-dir", str(folder),
              "-o", str(tmp_path / "run"))
    one_line_error(proc, needle)
    assert "not reachable" not in proc.stderr and not (tmp_path / "run").exists()


@pytest.mark.parametrize("checks,needle", [
    ([{"type": "card", "card": "t1", "work": [{"type": "file", "pth": "a"}]}],
     "checks[0] (card): work[0] (file): unknown field 'pth'; did you mean 'path'?"),
    ([{"type": "content_regex", "pattern": "(unclosed"}],
     "checks[0] (content_regex): field 'pattern': not a valid regular expression"),
    ([{"type": "state", "path": "a", "failure": "wrong_reslt"}], "field 'failure': unknown failure id 'wrong_reslt'"),
    ([{"pattern": "x"}], "checks[0]: a check needs a 'type'"),
    ([{"type": "numeric_answer"}], "checks[0] (numeric_answer): give exactly one of 'value' and 'values'"),
    ([{"type": "json_schema", "shema": {}}], "unknown field 'shema'; did you mean 'schema'?"),
])
def test_nested_and_value_errors_name_the_check(tmp_path, checks, needle):
    with pytest.raises(PackError) as e:
        load_pack(write_pack(tmp_path, checks))
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_unknown_pack_yaml_key_is_one_line(tmp_path):
    (tmp_path / "pack.yaml").write_text("name: p\ndefautls: {}\nx-anchors: {a: 1}\n")
    with pytest.raises(PackError, match=r"pack.yaml: unknown field 'defautls'; did you mean 'defaults'\?"):
        load_pack(tmp_path)


def test_every_shipped_pack_loads_with_typed_checks():
    packs = discover()
    assert len(packs) >= 14
    checks = [c for p in packs.values() for s in p.scenarios for c in s.checks]
    assert checks and all(isinstance(c, Check) and type(c) is CHECKS[c.type] for c in checks)


def test_shipped_schema_file_is_current():
    """Regenerate with: brainbench packs --schema > src/brainbench/packs/scenario.schema.json"""
    assert json.loads(SCHEMA_FILE.read_text(encoding="utf-8")) == file_schema()


def test_schema_describes_every_check_argument_and_validates_the_shipped_yaml():
    schema = file_schema()
    defs = schema["$defs"]
    for name, cls in CHECKS.items():
        d = defs[cls.__name__]
        assert d["description"] and d["properties"]["type"]["const"] == name and "type" in d["required"]
        assert all(p.get("description") for k, p in d["properties"].items() if k != "type"), name
    validator = jsonschema.Draft202012Validator(schema)
    files = sorted(BUILTIN_DIR.glob("*/pack.yaml")) + sorted(BUILTIN_DIR.glob("*/scenarios/*.yaml"))
    for f in files:
        text = f.read_text(encoding="utf-8")
        rel = "../scenario.schema.json" if f.name == "pack.yaml" else "../../scenario.schema.json"
        assert text.startswith(f"# yaml-language-server: $schema={rel}\n"), f
        assert not list(validator.iter_errors(yaml.safe_load(text))), f
    assert list(validator.iter_errors({"id": "a", "messages": MSG, "checks": [{"type": "content_regex"}]}))
    assert list(validator.iter_errors({"id": "a", "messages": MSG, "checks": [{"type": "no_tool_calls", "x": 1}]}))


def test_checks_dump_as_written_so_content_hashes_do_not_move():
    raw = {"type": "extract_fields", "expected": {"a": 1}, "threshold": 1}
    assert load_check(raw).model_dump(mode="json") == raw
    assert load_check({"type": "json_schema", "schema": {"type": "object"}}).model_dump() == \
        {"type": "json_schema", "schema": {"type": "object"}}


def test_a_new_check_type_registers_itself_and_a_name_clash_is_refused():
    from typing import Literal

    assert AnyCheck is not None and "content_regex" in CHECKS
    with pytest.raises(ValueError, match="already registered"):
        class Clash(Check):
            type: Literal["content_regex"] = "content_regex"


def test_one_loop_detector_two_threshold_sets():
    unit = "ab" * 20  # short: only the stress thresholds look for a repeated unit
    assert loop_reason(unit, STRESS_LOOPS) and loop_reason(unit, TRACE_LOOPS) is None
    lines = "\n".join(["Calling the tool now, please wait."] * 5)  # 5 lines: the trace flags it, stress needs 8
    assert loop_reason(lines, TRACE_LOOPS) and loop_reason(lines, STRESS_LOOPS) is None
    prose = "A normal answer about the weather in Paris, which is mild and rainy today."
    assert loop_reason(prose, TRACE_LOOPS) is None and loop_reason(prose, STRESS_LOOPS) is None


def test_one_bipartite_matcher():
    assert bipartite([[True, True], [True, False]]) == [1, 0]  # greedy first-fit would fail this one
    assert bipartite([[True, False], [True, False]]) is None
    assert bipartite([]) == []


def test_a_stored_scenario_that_no_longer_validates_is_one_line():
    from brainbench.packs import stored_scenario

    data = {"id": "a", "pack": "p", "messages": MSG, "checks": [{"type": "content_regex", "pattern": "x", "flgs": "i"}]}
    with pytest.raises(PackError, match=r"^stored scenario p/a: checks\[0\] \(content_regex\): unknown field 'flgs'; "
                                        r"did you mean 'flags'\?$"):
        stored_scenario(data)
    assert stored_scenario({**data, "checks": [{"type": "content_regex", "pattern": "x"}]}).checks[0].pattern == "x"
