"""A timed leg on a loaded machine says so: the load average is sampled before, during and after each leg; above
the core count, one warning line is logged, stored with the run and shown in its report."""

from __future__ import annotations

import asyncio
import json

import pytest

from brainbench.backend import BackendSpec
from brainbench.perf import load
from brainbench.perf.legs import SpeedOptions
from brainbench.perf.load import LoadWatch
from brainbench.perf.run import SpeedSettings, run_speed
from brainbench.report.data import build_report
from brainbench.report.outputs import get_output
from brainbench.store import RunStore
from brainbench.testing import Reply, ScriptedBrain

EIGHT = "one two three four five six seven eight"


def watch(values, cores=2):
    it = iter(values)

    async def go():
        async with LoadWatch("sweep", read=lambda: next(it, values[-1]), cores=cores, interval=0.01) as w:
            await asyncio.sleep(0.05)
        return w

    return asyncio.run(go())


def test_a_peak_during_the_leg_is_caught():
    w = watch([1.0, 1.5, 3.5, 1.2])  # before and after are fine; the load rose while the leg ran
    assert len(w.samples) >= 4 and w.result()["max"] == 3.5
    assert w.warning == ("load average 3.5 on 2 cores during the sweep leg: other work shared the CPU, so its "
                         "timings may be slower than the brain alone")
    assert watch([2.0, 1.9]).warning is None  # at the core count, not above it
    assert watch([None]).warning is None and watch([None]).result()["samples"] == []  # no load average (Windows)


def _speed(fake, tmp_path, load_now, monkeypatch):
    monkeypatch.setattr(load, "read_load", lambda: load_now)
    srv = fake(ScriptedBrain([Reply.text(EIGHT, chunk_gap=0.001)]))
    run_dir = tmp_path / "run"
    lines: list[str] = []
    out = run_speed(BackendSpec(endpoint=srv.base_url, model="fake-model"),
                    SpeedOptions(legs=["decode", "sweep"], gen_tokens=8, warmup=0, decode_runs=2, max_runs=2,
                                 concurrency=[1, 2], requests_per_level=2),
                    run_dir, SpeedSettings(energy="off"), log=lines.append)
    return out, run_dir, lines


def test_a_loaded_machine_is_logged_stored_and_reported(fake, tmp_path, monkeypatch):
    import os

    cores = os.cpu_count() or 1
    out, run_dir, lines = _speed(fake, tmp_path, cores + 3.0, monkeypatch)
    want = f"load average {cores + 3.0:.1f} on {cores} cores during the decode leg"
    assert [w[:len(want)] for w in out["load_warnings"]][0] == want and len(out["load_warnings"]) == 2
    assert any(ln.startswith(f"warning: {want}") for ln in lines)
    with RunStore(run_dir) as store:
        stored = store.get_meta("load_warnings")
        decode = next(r for r in store.results("speed") if r["name"] == "decode")
    assert [w["warning"] for w in stored] == out["load_warnings"] and stored[0]["model"] == "fake-model"
    assert decode["data"]["load"]["max"] == cores + 3.0
    rep = build_report([run_dir])
    assert rep.warnings == [f"fake-model: {w}" for w in out["load_warnings"]]
    assert f"> warning: fake-model: {want}" in get_output("md").render(rep)
    assert f'<p class="banner warn">warning: fake-model: {want}' in get_output("html").render(rep)
    assert f"warning: fake-model: {want}" in get_output("terminal").render(rep, width=400)
    assert json.loads(get_output("json").render(rep))["warnings"] == rep.warnings


def test_an_idle_machine_says_nothing(fake, tmp_path, monkeypatch):
    out, run_dir, lines = _speed(fake, tmp_path, 0.1, monkeypatch)
    assert out["load_warnings"] == [] and not any("load average" in ln for ln in lines)
    with RunStore(run_dir) as store:
        assert store.get_meta("load_warnings") is None
    assert build_report([run_dir]).warnings == []
