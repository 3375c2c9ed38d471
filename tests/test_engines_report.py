"""The report's 'same weights, two engines' section, on fixture runs made through the real runner, store and
scorer: one brain on llama-server and on vLLM (the server record says which), the vLLM side writing its
calls as text the way the real 0.5B does under the hermes parser."""

import json

from report_fixtures import good_brain, make_run, sweep

from brainbench.report.data import build_report
from brainbench.report.outputs import render
from brainbench.store import RunStore
from brainbench.testing import Reply


def _as_text(messages):
    """good_brain's moves, every tool call written into the content as bare JSON (hermes finds no tags)."""
    reply = good_brain(messages)
    if reply.tool_calls:
        call = reply.tool_calls[0]
        return Reply.text(json.dumps({"name": call["name"], "arguments": call["arguments"]}))
    return reply


def _engine_run(path, kind, brain, decode_tps):
    make_run(path, "brain-small", brain, trials=2)
    server = {"kind": kind, "brain": "brain-small", "model": "brain-small"}
    if kind == "vllm":
        server["model_file"] = "brain-small-bf16/model.safetensors"
    with RunStore(path) as store:
        store.set_meta("server", server)
        levels = [lv for lv in sweep(decode_tps) if lv["concurrency"] > 1]
        store.put_result("speed", "speed", "brain-small", {  # the matrix speed leg's shape (matrix/engine.py)
            "decode": {"decode_tps": {"count": 5, "median": decode_tps, "mean": decode_tps, "cv": 0.01},
                       "ttft_ms_median": 120.0, "itl_ms_median": 1000 / decode_tps},
            "decode_tps": {"count": 5, "median": decode_tps, "mean": decode_tps, "cv": 0.01}, "sweep": levels})
    return path


def test_same_brain_on_two_engines_is_one_section(tmp_path):
    llama = _engine_run(tmp_path / "brain-small", "llama-server", good_brain, 30.0)
    vllm = _engine_run(tmp_path / "brain-small-vllm", "vllm", _as_text, 12.0)
    rep = build_report([llama, vllm])
    (g,) = rep.engines
    assert (g["a"]["engine"], g["b"]["engine"]) == ("llama-server", "vllm")
    assert g["b"]["weights"] == "brain-small-bf16/model.safetensors"
    total = next(r for r in g["packs"] if r["pack"] == "ALL")
    a, b = total["a"], total["b"]
    assert a["strict_pass"]["k"] == a["pass"]["k"] and a["recovered_pass"]["k"] == 0  # all calls structured
    assert b["recovered_pass"]["k"] > 0 and b["strict_pass"]["k"] < b["pass"]["k"]  # passed through text calls
    assert b["in_text_per_100"]["value"] == 100 and b["in_text_per_100"]["ci95"][0] > 0
    assert total["delta"]["strict_pass"] < 0 and total["verdict"]["verdict"] in ("A better", "B better", "not separable")
    assert [p["concurrency"] for p in g["speed"]] == [1, 2, 4, 8]
    one = g["speed"][0]
    assert one["a"]["decode_tps"] == 30.0 and one["b"]["decode_tps"] == 12.0 and one["b"]["ttft_ms"] == 120.0
    assert g["speed"][2]["b"]["itl_ms"] is not None
    for name in ("md", "html", "terminal"):
        text = render(rep, name, **({"width": 220} if name == "terminal" else {}))
        assert "two engines" in text and "recovered" in text and "vllm" in text, name


def test_no_engine_section_for_two_brains_or_one_engine(tmp_path):
    one = _engine_run(tmp_path / "a", "llama-server", good_brain, 30.0)
    two = _engine_run(tmp_path / "b", "llama-server", _as_text, 20.0)
    assert build_report([one, two]).engines == []  # same engine twice: not an engine comparison
    assert "two engines" not in render(build_report([one]), "md")
