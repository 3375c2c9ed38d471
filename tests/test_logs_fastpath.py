"""The dense-log fast path of `logs vllm` (one line-anchored regex per block) against a straightforward
line-by-line reference parse of the same generated log, cut and absurd lines included."""

from __future__ import annotations

import datetime
import math
import re
import statistics
from collections import Counter
from pathlib import Path

import pytest

from brainbench.logs import vllm
from brainbench.logs.synth import SynthSpec, generate

BIG = "9" * 400
ENGINE_RE = re.compile(rb"(?:(\d+) Engines Aggregated|Engine (\d+)): $")


def reference(path: Path) -> dict:
    """Every line on its own: access lines give completions to the next stats line, a stats literal whose
    line does not match the format is a cut line, the window is keyed by its Running count."""
    windows: dict[int, list[dict]] = {}
    cut = completions = pending = 0
    http: Counter = Counter()
    times = []
    for line in path.read_bytes().split(b"\n"):
        for m in vllm.ACCESS_RE.finditer(line):
            if m.group(1).startswith(b"2"):
                completions += 1
                pending += 1
            else:
                http[m.group(1).decode()] += 1
        pos = line.find(vllm.STATS_LIT)
        while pos >= 0:
            m = vllm.STATS_RE.match(line, pos)
            if m is None:
                cut += 1
                pos = line.find(vllm.STATS_LIT, pos + len(vllm.STATS_LIT))
                continue
            prompt, gen, running, waiting, preempt, kv, hit = m.groups()
            e = ENGINE_RE.search(line, 0, pos)
            assert e is None or e.group(1) is None  # generated with one engine
            ts = vllm.TS_RE.search(line, 0, pos)
            times.append(ts.group(0))
            windows.setdefault(int(running), []).append({
                "gen": float(gen), "prompt": float(prompt), "comp": pending, "waiting": int(waiting),
                "preempt": int(preempt or 0), "kv": None if kv is None else float(kv),
                "hit": None if hit is None else float(hit)})
            pending = 0
            pos = line.find(vllm.STATS_LIT, m.end())
    secs = []
    for t in times:  # the log starts on 12-31 and crosses New Year
        d = datetime.datetime.strptime(("2023-" if t.startswith(b"12") else "2024-") + t.decode(), "%Y-%m-%d %H:%M:%S")
        secs.append(d.timestamp())
    gaps = [b - a for a, b in zip(secs, secs[1:])]
    return {"windows": windows, "cut": cut, "completions": completions, "unattributed": pending,
            "http": dict(http), "span": secs[-1] - secs[0], "idle": sum(g - 10 for g in gaps if g > 15)}


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    rank = q * (len(s) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (rank - lo)


def assert_agrees(r: dict, ref: dict) -> None:
    got = {b["running"]: b for b in r["buckets"]}
    assert sorted(got) == sorted(ref["windows"])
    for running, ws in ref["windows"].items():
        b = got[running]
        gens = [w["gen"] for w in ws]
        prompts = [w["prompt"] for w in ws]
        kvs = [w["kv"] for w in ws if w["kv"] is not None]
        hits = [w["hit"] for w in ws if w["hit"] is not None]
        assert b["samples"] == len(ws)
        assert b["completions"] == sum(w["comp"] for w in ws)
        assert b["preemptions"] == sum(w["preempt"] for w in ws)
        assert b["gen_tps_mean"] == pytest.approx(statistics.fmean(gens), abs=0.006)
        assert b["gen_tps_median"] == pytest.approx(statistics.median(gens), abs=0.006)
        assert b["gen_tps_p95"] == pytest.approx(pct(gens, 0.95), abs=0.006)
        assert b["gen_tps_peak"] == max(gens)
        assert b["prefill_tps_sustained"] == pytest.approx(statistics.fmean(prompts), abs=0.006)
        assert b["waiting_mean"] == pytest.approx(statistics.fmean(w["waiting"] for w in ws), abs=0.006)
        assert b["kv_cache_usage_mean"] == (pytest.approx(statistics.fmean(kvs), abs=0.006) if kvs else None)
        assert b["prefix_cache_hit_rate_mean"] == (pytest.approx(statistics.fmean(hits), abs=0.006) if hits else None)
    p = r["parse"]
    assert p["stats_lines"] == sum(map(len, ref["windows"].values()))
    assert p["corrupt_lines"] == ref["cut"]
    assert p["completions"] == ref["completions"]
    assert p["completions_unattributed"] == ref["unattributed"]
    assert p["http_errors"] == ref["http"]
    assert p["windows_without_timestamp"] == 0
    assert p["span_s"] == ref["span"] and p["idle_s"] == ref["idle"] and p["interval_s"] == 10.0


@pytest.fixture()
def dense_log(tmp_path: Path) -> Path:
    """The benchmark's dense shape (no request logging), cut stats lines, and stats lines whose numbers are
    too long to be real (400 digits, 16 digits): those are cut lines too, never an OverflowError."""
    path = tmp_path / "dense.log"
    generate(path, SynthSpec(windows=4000, seed=21, formats=("v0", "v1", "v1-new"), corrupt_every=37,
                             idle_every=400, collect_truth=False))
    text = path.read_text()
    for old, new in (("Running: 3 reqs", f"Running: {BIG} reqs"), ("Waiting: 2 reqs", f"Waiting: {BIG} reqs"),
                     ("Avg prompt throughput: 1", f"Avg prompt throughput: {BIG}"),
                     ("Avg generation throughput: 2", "Avg generation throughput: 2" + "0" * 15)):
        assert old in text
        text = text.replace(old, new, 5)
    path.write_text(text)
    return path


def test_fast_path_agrees_with_a_line_by_line_reference(dense_log, monkeypatch):
    general = []
    real_general = vllm._general_block
    monkeypatch.setattr(vllm, "_general_block", lambda *a: general.append(1) or real_general(*a))
    ref = reference(dense_log)
    assert ref["cut"] > 4000 // 37 + 15  # the cut lines and the absurd numbers
    r = vllm.analyze([dense_log], vllm.Options(), workers=1)
    assert general == []  # every block was mined by the fast path
    assert_agrees(r, ref)
    assert ref["idle"] > 0 and ref["span"] > 4000 * 10


def test_fast_path_small_blocks_and_split_tasks_agree(dense_log, monkeypatch):
    """Blocks of 64 KB (completions carried from block to block) and two worker processes."""
    ref = reference(dense_log)
    monkeypatch.setattr(vllm, "BLOCK_BYTES", 1 << 16)
    assert_agrees(vllm.analyze([dense_log], vllm.Options(), workers=1), ref)
    assert_agrees(vllm.analyze([dense_log], vllm.Options(), workers=2, parallel_min_bytes=0, min_part_bytes=1), ref)


def test_general_path_agrees_on_the_same_log(dense_log, monkeypatch):
    """With the fast path refused every block goes through the general path: same numbers."""
    monkeypatch.setattr(vllm, "_fast_block", lambda *a: False)
    assert_agrees(vllm.analyze([dense_log], vllm.Options(), workers=1), reference(dense_log))


def test_blocks_of_another_layout_fall_back_to_the_general_path(tmp_path):
    """Colour codes around the level and timestamp: the fast regex does not see those lines, the literal
    counts differ, and the block is mined by the general path with the same result as the reference."""
    path = tmp_path / "ansi.log"
    generate(path, SynthSpec(windows=1500, seed=4, formats=("v1",), ansi=True, corrupt_every=50,
                             collect_truth=False))
    data = path.read_bytes()
    assert not vllm._fast_block(b"\n" + data, vllm.Partial(), vllm._ScanState(vllm.Options()))
    assert_agrees(vllm.analyze([path], vllm.Options(), workers=1), reference(path))
