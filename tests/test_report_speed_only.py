"""Reports of run directories that hold only `brainbench speed` legs (no attempts, no discipline run).

The speed-only run is stored the way `perf/run.py::run_speed` stores it (one result of kind 'speed' per leg:
summary, decode, prefill, sweep, agent), with figures trimmed from a real `brainbench speed --json` run of
brain-small on an NVIDIA H100 (llama-server CUDA, -ngl 99, NVML energy).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from brainbench.cli import app
from brainbench.report.data import ReportError, build_report
from brainbench.report.outputs.html import render_html
from brainbench.report.outputs.md import render_markdown
from brainbench.report.render import write_report
from brainbench.store import RunStore
from report_fixtures import good_brain, make_run

MODEL = "brain-small"
GPU = {"index": 0, "name": "NVIDIA H100 80GB HBM3", "power_limit_w": 700.0, "bandwidth_gbs": 3352.3}
SERVER = {"brain": MODEL, "model_sha256": "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
          "server": "llama-server", "args": ["--jinja", "--parallel", "64", "--alias", MODEL, "-ngl", "99", "-c", "212992"]}


def _cc(requests: int, client: float, server: float, gap: float, gap_max: float, flagged: bool = False) -> dict:
    return {"server": "llama-server", "requests": requests, "client_tps_median": client, "server_tps_median": server,
            "gap_median": gap, "gap_max_abs": gap_max, "tolerance": 0.05, "flagged": flagged, "token_count_mismatches": 0}


def _energy(seconds: float, joules: float, watts: float, jpt: float) -> dict:
    return {"measured": True, "seconds": seconds, "joules": joules, "avg_watts": watts, "joules_per_token": jpt,
            "tokens_per_s_per_kw": round(1000 / jpt, 2), "devices": [{"index": 0, "name": GPU["name"]}],
            "curve": [[0.0, watts], [seconds, watts]]}


LEVELS = [  # three of the seven real sweep levels (1, 8, 64)
    {"concurrency": 1, "requests": 128, "errors": 0, "error_rate": 0.0, "ttft_ms_median": 43.9349, "ttft_ms_p99": 51.611,
     "itl_ms_median": 1.7259, "itl_ms_p99": 2.043, "gen_tps_aggregate": 480.065, "gen_tps_per_request": 583.982,
     "completions_per_min": 225.03, "wall_s": 34.1287, "knee": False, "aggregate_gain": None,
     "energy": _energy(34.1294, 6141.006, 179.93, 0.37482), "cross_check": _cc(128, 583.981, 579.337, 0.0078, 0.0168)},
    {"concurrency": 8, "requests": 128, "errors": 0, "error_rate": 0.0, "ttft_ms_median": 235.1518,
     "ttft_ms_p99": 305.6169, "itl_ms_median": 5.9993, "itl_ms_p99": 11.4919, "gen_tps_aggregate": 939.363,
     "gen_tps_per_request": 168.086, "completions_per_min": 440.326, "wall_s": 17.4416, "knee": True,
     "aggregate_gain": 1.118, "energy": _energy(17.4421, 2728.512, 156.43, 0.16654),
     "cross_check": _cc(128, 168.086, 166.781, 0.0078, 0.008)},
    {"concurrency": 64, "requests": 128, "errors": 0, "error_rate": 0.0, "ttft_ms_median": 721.9417,
     "ttft_ms_p99": 1380.921, "itl_ms_median": 46.5783, "itl_ms_p99": 51.161, "gen_tps_aggregate": 1206.778,
     "gen_tps_per_request": 21.638, "completions_per_min": 565.677, "wall_s": 13.5767, "knee": False,
     "aggregate_gain": 1.094, "energy": _energy(13.577, 1797.562, 132.4, 0.10971),
     "cross_check": _cc(128, 21.638, 21.468, 0.0079, 0.0079)},
]

DECODE = {
    "gen_tokens_requested": 128, "fixed_length": True,
    "completion_tokens": {"count": 5, "mean": 128.0, "median": 128.0, "cv": 0.0},
    "prompt_tokens_median": 128.0,
    "decode_tps": {"count": 5, "mean": 618.8939, "median": 631.6188, "p90": 634.0995, "p99": 634.5229,
                   "min": 572.1472, "max": 634.5699, "cv": 0.0429},
    "wall_tps": {"count": 5, "mean": 560.9832, "median": 571.4011, "min": 515.3485, "max": 576.6186, "cv": 0.0459},
    "ttft_ms_median": 20.2724, "ttft_ms_p99": 24.5477, "itl_ms_median": 1.5957, "itl_ms_p99": 1.7558,
    "e2e_ms_median": 224.0108, "errors": 0,
    "gate": {"cv_max": 0.05, "cv": 0.0429, "passed": True, "runs_total": 7, "window": 5},
    "cross_check": _cc(5, 631.619, 626.594, 0.008, 0.0083),
    "energy": _energy(1.6766, 315.223, 188.01, 0.35181),
}

PREFILL = {"lengths": [{
    "target_tokens": 2048, "prompt_tokens": 2049.0,
    "cold": {"ttft_ms": {"count": 3, "mean": 89.8832, "median": 88.2773, "cv": 0.0369},
             "prefill_tps": {"count": 3, "mean": 22824.2082, "median": 23199.6205, "cv": 0.0366},
             "cached_tokens_median": 0.0, "errors": 0,
             "gate": {"cv_max": 0.05, "cv": 0.0366, "passed": True, "runs_total": 3, "window": 3},
             "cross_check": _cc(3, 23199.621, 43748.399, -0.4915, 0.5002, flagged=True)},
    "warm": {"ttft_ms": {"count": 3, "mean": 33.1129, "median": 32.8595, "cv": 0.0211},
             "prefill_tps": {"count": 3, "mean": 30.2085, "median": 30.4326, "cv": 0.0209},
             "effective_tps_median": 62417.345, "cached_tokens_median": 2050.0, "errors": 0},
    "ttft_speedup_warm": 2.687}]}

AGENT = {"turns": 3, "levels": [
    {"mode": "warm", "concurrency": 16, "conversations": 16, "turns_completed": 48, "errors": 0, "wall_s": 3.2243,
     "wall_per_turn_s": 0.0672, "turn_e2e_ms_median": 803.699, "turns_per_min": 893.209,
     "ttft_content_ms_median": 184.923, "ttft_reasoning_ms_median": None, "ttft_tool_ms_median": None,
     "turns_with_tool_calls": 0, "per_turn": [],
     "energy": {**_energy(3.2256, 498.69, 154.61, 0.25973), "joules_per_turn": 10.3894}}]}

OPTIONS = {"legs": ["decode", "prefill", "sweep", "agent"], "gen_tokens": 128, "prompt_tokens": 128, "warmup": 1,
           "decode_runs": 5, "cv_max": 0.05, "max_runs": 15, "prefill_lengths": [2048], "prefill_runs": 3,
           "concurrency": [1, 8, 64], "requests_per_level": 128, "agent_concurrency": [16], "agent_turns": 3,
           "agent_modes": ["warm"], "knee_fraction": 0.5}

SUMMARY = {
    "schema": "brainbench.speed/1", "model": MODEL,
    "backend": {"brain": MODEL, "api": "openai", "server_args": ["-ngl", "99", "-c", "212992"], "api_key_env": None},
    "server": SERVER, "run_dir": "/root/out/run", "started": 1795439709.9, "seconds": 155.3, "options": OPTIONS,
    "energy": {"measured": True, "gpus": [GPU]},
    "probe": {"fixed_length_fields": ["ignore_eos", "min_tokens"], "fixed_length": True, "usage_reported": True},
    "knee": 8, "knee_rule": "per-request gen tok/s < 0.5 × the lowest level's",
    "roofline": {"computed": True, "model_gb": 0.4914, "active_fraction": 1.0, "kv_gb_per_token": 0.0,
                 "bytes_per_token_gb": 0.4914, "bandwidth_gbs": 23.86,
                 "bandwidth_source": "measured: one-thread memcpy of 256 MiB (reads + writes)",
                 "bound_tps": 48.56, "measured_tps": 631.62, "fraction_of_bound": 13.0076},
}


def make_speed_run(run_dir: Path) -> Path:
    """A run directory as `brainbench speed -o RUN_DIR` leaves it: meta 'speed_server' and one result per leg."""
    with RunStore(run_dir, create=True) as store:
        store.set_meta("speed_server", SERVER)
        store.put_result("speed", "summary", MODEL, SUMMARY)
        store.put_result("speed", "decode", MODEL, {**DECODE, "requests": [{"ok": True}] * 5})
        store.put_result("speed", "prefill", MODEL, {**PREFILL, "requests": []})
        store.put_result("speed", "agent", MODEL, {**AGENT, "requests": []})
        store.put_result("speed", "sweep", MODEL, {"levels": LEVELS, "knee": 8, "knee_rule": SUMMARY["knee_rule"],
                                                   "requests": [{"ok": True}] * 3})
    return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("speed-only")
    speed = make_speed_run(root / "gpurun")
    disc = make_run(root / "disc", "brain-medium", good_brain, trials=1, speed_scale=30.0, watts=200.0)
    return {"speed": speed, "disc": disc}


@pytest.fixture(scope="module")
def alone(runs):
    rep = build_report([runs["speed"]])
    return rep, render_html(rep), render_markdown(rep)


ZERO_PCT = re.compile(r"(?<![\d.+\-±])0%")


def test_speed_only_entry(alone):
    rep, _, _ = alone
    assert rep.speed_only and rep.title == "brainbench speed: brain-small"
    (e,) = rep.entries
    assert e.speed_only and not e.rows and not e.failed
    o = e.summary["overall"]
    assert o["attempts"] == 0 and o["pass"]["rate"] is None and o["clean"]["rate"] is None
    # decode: the mean of the gated runs with its interval, from the decode leg
    assert e.decode["value"] == pytest.approx(618.8939) and e.decode["n"] == 5
    assert e.decode["source"] == "speed 'decode': decode_tps"
    (curve,) = e.curves
    assert [p["concurrency"] for p in curve["points"]] == [1, 8, 64]
    assert curve["points"][1]["gen_tps_aggregate"] == pytest.approx(939.363)
    # energy per token: one row per sweep level, plus the decode leg's own
    jpt = {(en["source"], en["concurrency"]): en["joules_per_token"] for en in e.energy}
    assert jpt[("speed 'sweep'", 64)] == pytest.approx(0.10971) and jpt[("speed 'decode'", 1.0)] == pytest.approx(0.35181)
    assert e.size_bytes and e.size_source == "GGUF file of embedded brain-small"
    assert e.useful["rows"] == [] and e.useful["chosen"] is None
    legs = e.speed_legs
    assert legs["knee"] == 8 and legs["decode"]["tps_median"] == pytest.approx(631.6188)
    assert [c["leg"] for c in legs["cross_check"]] == ["decode", "prefill 2048 cold", "sweep c=1", "sweep c=8",
                                                      "sweep c=64"]
    assert legs["roofline"]["suspect"] and legs["roofline"]["gpu"]["bound_tps"] == pytest.approx(3352.3 / 0.4914)
    assert e.provenance["server"]["server"] == "llama-server" and e.provenance["gpus"][0]["name"] == GPU["name"]


def test_speed_only_html(alone):
    _, html, _ = alone
    sweep = html[html.index('id="sweep-table"'):]
    sweep = sweep[: sweep.index("</table>")]
    for v in ("480.1", "584.0", "939.4", "1,207", "21.6", "565.7", "722", "1,381", "46.58", "0.375", "0.167", "0.110"):
        assert v in sweep, v
    assert sweep.count('class="chosen"') == 1  # the knee row
    assert "J / token" in html and "<strong>0.352</strong>" in html  # the decode leg's energy per token
    assert "speed legs only" in html and "not measured (speed legs only)" in html
    assert not ZERO_PCT.search(html), "a discipline figure shown as 0%"
    assert '<g class="pt">' not in html  # nothing to plot on the speed × discipline scatter
    # the legs: decode, prefill, the server cross-check, the agent leg, the roofline warning
    assert 'id="decode-table"' in html and "631.6" in html and "passed" in html
    assert "23,200" in html and "2.69×" in html
    assert "626.6" in html and "+0.8%" in html and "no (±5.0%)" in html
    assert "893" in html and "10.4" in html
    assert "Not a bound" in html and "6,822" in html
    # provenance from the legs
    assert "NVIDIA H100 80GB HBM3" in html and "power limit 700 W" in html
    assert "-ngl 99 -c 212992" in html and "sha256 1d9614638d18024d" in html
    assert "sweep concurrency 1, 8, 64" in html
    for section in ("scatter", "packs", "discipline", "errors", "iceberg", "failures"):
        part = html[html.index(f'<section id="{section}">'):]
        part = part[: part.index("</section>")]
        assert "Not measured" in part, section


def test_speed_only_markdown(alone):
    _, _, md = alone
    assert "| **brain-small** (speed legs only) | – | not measured | not measured | not measured | 618.9 [595.6–642.2] |" in md
    assert "| brain-small | sweep | 8 | 939.4 | 168.1 | 440.3 | 235 | 306 | 0 | 6.00 | 156 | 0.167 |" in md
    assert "| brain-small | 64 | 132 | 1,207 | 0.110 | 32,813,782 | speed 'sweep' |" in md
    assert "Knee: **brain-small** at concurrency 8" in md
    assert "| brain-small | decode | llama-server | 5 | 631.6 | 626.6 | +0.8% | 0.8% | 0 | yes |" in md
    assert "| brain-small | prefill 2048 cold | llama-server | 3 | 23,200 | 43,748 | -49.1% | 50.0% | 0 | no (±5.0%) |" in md
    assert "Speed × discipline: not measured" in md and "Not measured: no packs were run" in md
    assert "NVIDIA H100 80GB HBM3 (power limit 700 W)" in md and "discipline not measured" in md
    assert not ZERO_PCT.search(md)


def test_speed_only_next_to_a_discipline_run(runs):
    rep = build_report([runs["disc"], runs["speed"]])
    disc, speed = rep.entries
    assert not disc.speed_only and speed.speed_only and not rep.speed_only and rep.any_speed_only
    html, md = render_html(rep), render_markdown(rep)
    # the scatter plots the discipline run and names the speed-only one as not plotted
    assert html.count('<g class="pt">') == 1
    assert "not plotted (discipline not measured: speed legs only): brain-small" in html
    assert f"| **ALL** | {speed.label} | – | not measured | not measured | not measured | – |" in md
    assert "| **brain-small** (speed legs only) | – | not measured |" in md
    row = md[md.index("| **brain-small** (speed legs only)"):].split("\n")[0]
    assert not ZERO_PCT.search(row)
    # both brains' curves and energy are drawn together
    assert "| brain-medium | sweep | 1 |" in md and "| brain-small | sweep | 64 |" in md
    assert "Not plotted (discipline not measured)" in md


def test_speed_only_against_a_baseline_and_compare(runs, tmp_path):
    rep = build_report([runs["speed"]], runs["disc"])
    d = rep.entries[0].delta
    assert d["packs"]["ALL"]["clean"] is None and d["decode"]["verdict"] == "better"
    md = render_markdown(rep)
    assert "decode +1963% (better)" in md
    for base, cur in ((runs["disc"], runs["speed"]), (runs["speed"], runs["disc"])):
        r = CliRunner().invoke(app, ["compare", str(base), str(cur)], env={"COLUMNS": "200"})
        assert r.exit_code == 0, r.output
        assert "discipline not measured in" in r.output and "not measured" in r.output
        assert "0%" not in r.output.split("speed, size")[0].replace("100%", "")
        assert "aggregate tok/s at concurrency 8" in r.output and "1,207" not in r.output  # 16 is not in both
        assert "concurrency levels left out: " in r.output and "2, 4 (only" in r.output and "64 (only" in r.output
    r = CliRunner().invoke(app, ["report", str(runs["speed"]), "--html", str(tmp_path / "r.html"),
                                 "--md", str(tmp_path / "R.md"), "--title", "H100"])
    assert r.exit_code == 0, r.output
    assert "# H100" in (tmp_path / "R.md").read_text()


def test_a_run_with_nothing_in_it_still_fails(tmp_path):
    with RunStore(tmp_path / "empty", create=True):
        pass
    with pytest.raises(ReportError, match="nothing to report"):
        write_report([tmp_path / "empty"], md=tmp_path / "x.md")


def test_energy_by_gpu_shows_each_card_and_the_group(tmp_path):
    """A model split across two GPUs: each card's draw and joules, then the group's total and J/token."""
    split = {"measured": True, "seconds": 10.0, "joules": 5000.0, "avg_watts": 500.0, "joules_per_token": 0.5,
             "devices": [{"index": 0, "name": "NVIDIA H200", "joules": 3000.0, "avg_watts": 300.0, "peak_watts": 410.0},
                         {"index": 1, "name": "NVIDIA H200", "joules": 2000.0, "avg_watts": 200.0, "peak_watts": 260.0}]}
    run = tmp_path / "split"
    with RunStore(run, create=True) as store:
        store.put_result("speed", "summary", MODEL, {**SUMMARY, "energy": {"measured": True, "gpus": [GPU, {**GPU, "index": 1}]}})
        store.put_result("speed", "decode", MODEL, {**DECODE, "energy": split, "requests": []})
        store.put_result("speed", "sweep", MODEL, {"levels": [{**LEVELS[0], "energy": split}], "requests": []})
    report = build_report([run])
    rows = report.entries[0].speed_legs["energy_by_gpu"]
    assert [(r["leg"], r["gpu"], r["watts"], r["total"]) for r in rows[:3]] == [
        ("decode", "GPU0 NVIDIA H200", 300.0, False), ("decode", "GPU1 NVIDIA H200", 200.0, False),
        ("decode", "all 2 GPUs", 500.0, True)]
    assert rows[2]["joules"] == 5000.0 and rows[2]["joules_per_token"] == 0.5 and rows[0]["peak_watts"] == 410.0
    assert [r["leg"] for r in rows[3:]] == ["sweep c=1"] * 3
    md = render_markdown(report)
    assert "| decode | **all 2 GPUs** | 500 |" in md and "| decode | GPU1 NVIDIA H200 | 200 | 260 | 2,000 |" in md
    html = render_html(report)
    assert 'id="gpu-energy-table"' in html and "<b>all 2 GPUs</b>" in html
