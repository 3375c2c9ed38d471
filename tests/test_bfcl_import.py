"""`brainbench import bfcl`: BFCL entries become scenarios the way BFCL presents them to FC models."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from brainbench.cli import app
from brainbench.importers import bfcl as imp
from brainbench.packs import Scenario, load_pack

ENTRY = {
    "id": "simple_python_7",
    "question": [[{"role": "user", "content": "Area of a circle of radius 3.5 in cm?"}]],
    "function": [{"name": "geometry.circle_area", "description": "Area of a circle.",
                  "parameters": {"type": "dict", "required": ["radius"], "properties": {
                      "radius": {"type": "float", "description": "Radius."},
                      "units": {"type": "string", "description": "Unit."},
                      "tags": {"type": "array", "items": {"type": "float"}, "description": "t"},
                      "opts": {"type": "dict", "description": "o", "properties": {"exact": {"type": "boolean", "description": "e"}}}}}}],
}
ANSWER = {"id": "simple_python_7", "ground_truth": [{"geometry.circle_area": {"radius": [3.5], "units": ["cm", ""]}}]}


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "data"
    (d / "possible_answer").mkdir(parents=True)
    (d / "BFCL_v4_simple_python.json").write_text(json.dumps(ENTRY) + "\n")
    (d / "possible_answer" / "BFCL_v4_simple_python.json").write_text(json.dumps(ANSWER) + "\n")
    irr = {**ENTRY, "id": "irrelevance_0"}
    (d / "BFCL_v4_irrelevance.json").write_text(json.dumps(irr) + "\n")
    return d


def test_tools_as_bfcl_shows_them():
    tools = imp.to_openai_tools(imp.with_hint(ENTRY["function"]))
    fn = tools[0]["function"]
    assert tools[0]["type"] == "function" and fn["name"] == "geometry_circle_area"
    assert fn["description"].endswith("Note that the provided function is in Python 3 syntax.")
    props = fn["parameters"]["properties"]
    assert fn["parameters"]["type"] == "object"
    assert props["radius"] == {"type": "number", "description": "Radius. This is a float type value.", "format": "float"}
    assert props["tags"]["items"]["type"] == "number"
    assert props["opts"]["type"] == "object" and props["opts"]["properties"]["exact"]["type"] == "boolean"
    assert ENTRY["function"][0]["parameters"]["type"] == "dict"  # the source is not modified


def test_scenario_shape(data_dir):
    entry = imp.load_category("simple", data_dir)[0]
    sc = Scenario.model_validate({**imp.scenario(entry, "simple"), "pack": "bfcl_simple"})
    assert sc.env == "schema_tools" and sc.system is None and sc.messages == ENTRY["question"][0]
    check = sc.checks[0].model_dump()
    assert check["type"] == "bfcl" and check["category"] == "simple_python"
    assert check["ground_truth"] == ANSWER["ground_truth"] and check["functions"][0]["name"] == "geometry.circle_area"
    assert sc.meta["bfcl_version"] == imp.BFCL_VERSION


def test_relevance_categories_have_no_answers(data_dir):
    entry = imp.load_category("irrelevance", data_dir)[0]
    check = imp.scenario(entry, "irrelevance")["checks"][0]
    assert check == {"type": "bfcl", "category": "irrelevance"}


def test_unknown_category_and_missing_data(tmp_path, data_dir):
    with pytest.raises(imp.ImportError_):
        imp.load_category("java", data_dir)
    with pytest.raises(imp.ImportError_):
        imp.data_dir(tmp_path)


def test_cli_import_writes_loadable_packs(tmp_path, data_dir):
    out = tmp_path / "packs"
    res = CliRunner().invoke(app, ["import", "bfcl", "-c", "simple", "-c", "irrelevance", "--data-dir", str(data_dir),
                                   "-o", str(out)])
    assert res.exit_code == 0, res.output
    pack = load_pack(out / "bfcl_simple")
    assert pack.name == "bfcl_simple" and [s.id for s in pack.scenarios] == ["simple_python_7"]
    assert yaml.safe_load((out / "bfcl_irrelevance" / "pack.yaml").read_text())["scenarios"][0]["id"] == "irrelevance_0"


def test_limit_is_a_stable_sample(tmp_path):
    d = tmp_path / "d"
    (d / "possible_answer").mkdir(parents=True)
    lines = [json.dumps({**ENTRY, "id": f"simple_python_{i}"}) for i in range(30)]
    answers = [json.dumps({**ANSWER, "id": f"simple_python_{i}"}) for i in range(30)]
    (d / "BFCL_v4_simple_python.json").write_text("\n".join(lines))
    (d / "possible_answer" / "BFCL_v4_simple_python.json").write_text("\n".join(answers))
    a = [s["id"] for s in imp.build_pack("simple", d, limit=5)["scenarios"]]
    b = [s["id"] for s in imp.build_pack("simple", d, limit=5)["scenarios"]]
    assert a == b and len(a) == 5 and a == sorted(a, key=lambda x: int(x.rsplit("_", 1)[1]))
