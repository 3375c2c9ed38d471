"""Report outputs registered by name over the typed report model (html, md, terminal, json)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from brainbench.cli import app
from brainbench.core.errors import BrainbenchError
from brainbench.report.data import build_report
from brainbench.report.model import Report
from brainbench.report.outputs import OUTPUTS, get_output, output, render
from report_fixtures import SloppyBrain, good_brain, make_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    return {"good": make_run(root / "good", "brain-medium", good_brain, trials=1),
            "sloppy": make_run(root / "sloppy", "brain-small", SloppyBrain(), trials=1)}


def test_the_four_outputs_are_registered():
    for name in ("html", "md", "terminal", "json"):
        assert get_output(name).name == name
    with pytest.raises(BrainbenchError, match="unknown report output 'pdf'; known: html, json, md, terminal"):
        get_output("pdf")


def test_outputs_read_the_typed_model(runs):
    rep = build_report([runs["sloppy"]])
    assert isinstance(rep, Report) and rep.entries[0].label == "brain-small"
    data = json.loads(render(rep, "json"))
    assert data["title"] == rep.title and "rows" not in data["entries"][0]
    text = render(rep, "terminal", width=160)  # no baseline: the summary table
    assert "brain-small" in text and "smoke" in text and "within noise" not in text
    assert render(build_report([runs["sloppy"]], runs["good"]), "terminal", width=160).count("vs  brain-medium") == 1


def test_a_new_output_is_one_registration(runs, monkeypatch):
    monkeypatch.setitem(OUTPUTS, "count", OUTPUTS["json"])  # keep the registry clean afterwards
    output("count", ".txt", "number of brains")(lambda rep: str(len(rep.entries)))
    assert render(build_report([runs["good"], runs["sloppy"]]), "count") == "2"


def test_report_command_writes_any_output(runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where the default report.html would land
    r = CliRunner().invoke(app, ["report", str(runs["good"]), "--output", f"json={tmp_path / 'r.json'}",
                                 "--output", f"terminal={tmp_path / 'r.txt'}"])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "r.json").read_text())["entries"][0]["model"] == "brain-medium"
    assert "brain-medium" in (tmp_path / "r.txt").read_text() and not (tmp_path / "report.html").exists()  # only what was asked
    r = CliRunner().invoke(app, ["report", str(runs["good"]), "--output", f"pdf={tmp_path / 'r.pdf'}"])
    assert r.exit_code != 0 and "unknown report output 'pdf'" in str(r.exception)
