"""An interrupted run is marked in every output (terminal, Markdown, HTML, JSON); pass^k at one trial is named
for what it is. Runs are real (runner, store, scorer on the fake server)."""

from __future__ import annotations

import json

import pytest

from brainbench.report.data import build_report
from brainbench.report.outputs import get_output
from test_compare_like_with_like import run_packs

BANNER = "brain-small: incomplete run: 3 of 4 planned attempts stored (1 missing)"


@pytest.fixture(scope="module")
def cut(tmp_path_factory):
    return run_packs(tmp_path_factory.mktemp("cut") / "run", ["smoke"], trials=2, only=3)  # 2 scenarios x 2 trials


def test_an_interrupted_run_is_marked_in_every_output(cut):
    rep = build_report([cut])
    inc = rep.entries[0].incomplete
    assert inc and (inc["planned"], inc["stored"], inc["missing"]) == (4, 3, 1)
    assert rep.incomplete == [f"{BANNER}; rates are over what is stored; finish it with brainbench run --resume {cut}"]
    term = get_output("terminal").render(rep, width=300)
    assert term.splitlines()[0].startswith(BANNER)
    assert f"> **{BANNER}" in get_output("md").render(rep)
    assert f'<p class="banner" role="alert">{BANNER}' in get_output("html").render(rep)
    data = json.loads(get_output("json").render(rep))
    assert data["incomplete"] == rep.incomplete and data["entries"][0]["incomplete"]["missing"] == 1


def test_the_banner_goes_once_the_run_is_finished(tmp_path):
    run = run_packs(tmp_path / "run", ["smoke"], trials=2, only=1)
    assert build_report([run]).entries[0].incomplete["stored"] == 1
    run_packs(run, ["smoke"], trials=2)  # what --resume does: the plan's attempts not yet stored
    rep = build_report([run])
    assert rep.entries[0].incomplete is None and rep.incomplete == []
    assert "incomplete" not in get_output("md").render(rep) and "class=\"banner\"" not in get_output("html").render(rep)


def test_pass_hat_k_at_one_trial_says_it_is_pass(tmp_path):
    one = build_report([run_packs(tmp_path / "one", ["smoke"], trials=1)])
    term = get_output("terminal").render(one, width=300)
    assert "= pass (1 trial)" in term and "k=1" not in term
    md = get_output("md").render(one)
    assert "= pass (1 trial)" in md and "(k=1)" not in md
    assert "with one trial it is the pass rate itself" in md


def test_an_incomplete_baseline_is_named_as_the_baseline(cut):
    lines = build_report([cut], cut).incomplete
    assert [ln.split(":")[0] for ln in lines] == ["brain-small", "baseline brain-small"]
