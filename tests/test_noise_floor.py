"""The noise floor: the MDD, the flip rate and the compare verdict, with known numbers, and where they show."""

from __future__ import annotations

import pytest
from report_fixtures import SloppyBrain, good_brain, make_run
from typer.testing import CliRunner

from brainbench.cli import app
from brainbench.report.data import build_report
from brainbench.report.outputs import render
from brainbench.scoring.metrics import CONVENTION, attempts_needed, flip_rate, mdd, noise_floor, separable, verdict_text


def test_mdd_known_numbers():
    # (1.959964 + 0.841621) * sqrt(2 * 0.25 / 100) = 0.19810
    assert mdd(0.5, 100) == pytest.approx(0.19810, abs=1e-4)
    assert mdd(0.9, 400) == pytest.approx(2.801585 * (2 * 0.09 / 400) ** 0.5, rel=1e-6)
    assert mdd(None, 10) is None and mdd(0.5, 0) is None


def test_mdd_at_a_perfect_rate_is_not_zero():
    # 10/10 is not certainty: p is kept half an attempt off 1 (0.95), so the floor stays wide
    assert mdd(1.0, 10) == pytest.approx(2.801585 * (2 * 0.95 * 0.05 / 10) ** 0.5, rel=1e-6)


def test_attempts_needed_is_the_mdd_solved_for_n():
    need = attempts_needed(0.5, 0.6, 20)  # pooled 0.55: 2.801585^2 * 2 * 0.2475 / 0.01
    assert need == pytest.approx(388.5, abs=0.5)
    assert mdd(0.55, round(need)) == pytest.approx(0.1, abs=1e-3)
    assert attempts_needed(0.4, 0.4, 20) is None


def test_flip_rate_counts_scenarios_whose_verdict_changed():
    r = flip_rate({"a": [True, False], "b": [True, True], "c": [False, False], "d": [True, True, False], "e": [True]})
    assert (r["k"], r["n"]) == (2, 4)  # a and d flipped; e has one trial and is not counted
    assert flip_rate({"a": [True]})["n"] == 0


def test_verdict_separable_or_how_many_more_trials():
    # 10 scenarios x 2 trials: 20 attempts a side
    clear = separable({"rate": 0.1, "n": 20}, {"rate": 0.9, "n": 20}, 10)
    assert clear["verdict"] == "B better" and verdict_text(clear) == "B better"
    assert separable({"rate": 0.9, "n": 20}, {"rate": 0.1, "n": 20}, 10)["verdict"] == "A better"
    close = separable({"rate": 0.5, "n": 20}, {"rate": 0.6, "n": 20}, 10)
    # 388.5 attempts needed a side = 38.85 trials per scenario; 2 run already: about 37 more
    assert close["verdict"] == "not separable" and close["more_trials"] == 37
    assert verdict_text(close) == "not separable: about 37 more trials per scenario needed"
    same = separable({"rate": 0.5, "n": 20}, {"rate": 0.5, "n": 20}, 10)
    assert verdict_text(same) == "not separable: no difference observed"


def test_noise_floor_of_rows():
    rows = [{"pack": "p", "scenario": s, "passed": ok, "clean": ok} for s, ok in
            [("a", True), ("a", False), ("b", True), ("b", True)]]
    n = noise_floor(rows)
    assert (n["attempts"], n["scenarios"], n["trials"], n["clean"]) == (4, 2, 2, 0.75)
    assert n["mdd"] == pytest.approx(mdd(0.75, 4)) and n["flip"]["rate"] == 0.5
    assert noise_floor(rows[:1])["flip"] is None  # one trial: no flip rate


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("noise")
    return {"good": make_run(root / "good", "brain-medium", good_brain, trials=2),
            "sloppy": make_run(root / "sloppy", "brain-small", SloppyBrain(), trials=2)}


def test_every_report_states_the_noise_floor(runs):
    rep = build_report([runs["sloppy"]])
    n = rep.entries[0].noise["ALL"]
    assert n["trials"] == 2 and n["mdd"] == pytest.approx(mdd(n["clean"], n["attempts"]))
    for name in ("md", "html", "terminal"):
        text = render(rep, name, **({"width": 200} if name == "terminal" else {}))
        assert CONVENTION in text and f"±{100 * n['mdd']:.0f} pp" in text, name


def test_compare_prints_a_verdict_per_pack(runs):
    r = CliRunner().invoke(app, ["compare", str(runs["good"]), str(runs["sloppy"])], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    rep = build_report([runs["sloppy"]], runs["good"])
    sep = rep.entries[0].delta["packs"]["ALL"]["separable"]
    assert sep["verdict"] in ("A better", "B better", "not separable")
    assert verdict_text(sep) in r.output and "verdict" in r.output and "noise floor" in r.output
