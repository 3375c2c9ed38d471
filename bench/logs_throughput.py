#!/usr/bin/env python3
"""Throughput of `brainbench logs vllm` on a generated vLLM log, next to `grep -c` on the same file.

    python bench/logs_throughput.py                 # 1 GiB 'agent' log (request logging on), then a 256 MiB dense one
    python bench/logs_throughput.py --size-mb 64    # quick run
    python bench/logs_throughput.py --mode dense --size-mb 1024

Two generated shapes (both from brainbench.logs.synth, i.e. vLLM's own line formats):

* agent:  what a multi-GB vLLM log is made of in practice: vLLM with request logging on writes one
          `Received request ... prompt: '...'` line per request (here 1-7 KB of text; real agent prompts are
          30-60k tokens, so real lines are longer and the benchmark is pessimistic), plus the uvicorn access
          line, the 10-second stats line and the speculative-decoding line.
* dense:  the worst case for the miner: no request logging, so nearly every line is a stats or an
          access line (about 350 bytes of log per stats window) and parsing, not scanning, dominates.

The page cache is warmed first; `grep -c` and the miner run one after the other `--repeat` times and the
medians are printed, with the miner's time as a multiple of grep's (the number that a busy machine changes
least). grep counts the lines that contain the stats literal; the miner's windows + cut lines must equal it.

Measured 2026-12-06 06:10 UTC on the 2-vCPU development machine, load average 2.5 -> 2.7 (a vLLM worker of
another session on one CPU), Python 3.11.7, `python bench/logs_throughput.py --dir /tmp/bbl/bench --reuse`:

    agent  1026.8 MB  grep -c 0.52 s   brainbench logs vllm  8.4 s = 122 MB/s  16x grep's time  (115 MB per CPU-s)
    dense   256.8 MB  grep -c 0.14 s   brainbench logs vllm 11.5 s =  22 MB/s  82x grep's time  ( 22 MB per CPU-s)

The code before the dense fast path (2be2f38), same files, right after (load 2.7 -> 3.1): agent 10.5 s =
98 MB/s (20x), dense 18.3 s = 14 MB/s (132x). docs/results/logs.md has the tables and what they mean.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from brainbench.logs import vllm  # noqa: E402
from brainbench.logs.synth import SynthSpec, generate  # noqa: E402

SHAPES = {
    "agent": dict(request_log_bytes=4000, spec_decode=True, noise=True),
    "dense": dict(request_log_bytes=0, spec_decode=False, noise=True),
}


def make_log(path: Path, shape: str, size_mb: float) -> float:
    """Generate about size_mb MB; returns seconds spent."""
    t0 = time.perf_counter()
    probe = path.with_suffix(".probe")
    generate(probe, SynthSpec(windows=2000, seed=1, collect_truth=False, **SHAPES[shape]))
    per_window = probe.stat().st_size / 2000
    probe.unlink()
    windows = max(10, int(size_mb * 1e6 / per_window))
    generate(path, SynthSpec(windows=windows, seed=1, collect_truth=False, idle_every=500, **SHAPES[shape]))
    return time.perf_counter() - t0


def warm(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read(16 << 20):
            pass


def cpu_s() -> float:
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def bench(path: Path, workers: int, repeat: int) -> dict:
    """Median (and best) of `repeat` runs of `grep -c` and of the miner, one after the other."""
    size = path.stat().st_size
    grep = shutil.which("grep")
    g_times: list[float] = []
    g_count = None
    b_times: list[tuple[float, float]] = []
    result: dict = {}
    for _ in range(repeat):
        if grep:
            t0 = time.perf_counter()
            out = subprocess.run([grep, "-c", "Avg prompt throughput: ", str(path)], capture_output=True, text=True)
            g_times.append(time.perf_counter() - t0)
            g_count = int(out.stdout.strip() or 0)
        c0 = cpu_s()
        t0 = time.perf_counter()
        result = vllm.analyze([path], vllm.Options(), workers=workers)
        b_times.append((time.perf_counter() - t0, cpu_s() - c0))
    b_med = statistics.median(t for t, _ in b_times)
    b_cpu = statistics.median(c for _, c in b_times)
    g_med = statistics.median(g_times) if g_times else None
    p = result["parse"]
    return {
        "bytes": size,
        "grep_s": round(g_med, 3) if g_med else None,
        "grep_mb_s": round(size / g_med / 1e6) if g_med else None,
        "grep_count": g_count,
        "brainbench_s": round(b_med, 3),
        "brainbench_best_s": round(min(t for t, _ in b_times), 3),
        "brainbench_mb_s": round(size / b_med / 1e6),
        "brainbench_cpu_s": round(b_cpu, 2),
        "brainbench_mb_per_cpu_s": round(size / b_cpu / 1e6) if b_cpu else None,
        "grep_ratio": round(b_med / g_med, 1) if g_med else None,
        "workers": workers,
        "runs": repeat,
        "stats_windows": p["stats_lines"],
        "cut_lines": p["corrupt_lines"],
        "counts_agree": g_count is None or g_count == p["stats_lines"] + p["corrupt_lines"],
        "completions": p["completions"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=float, default=None, help="size of each generated log (default: 1024 for "
                    "'agent', 256 for 'dense')")
    ap.add_argument("--mode", choices=("agent", "dense", "both"), default="both")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool; the median is reported")
    ap.add_argument("--dir", type=Path, default=None, help="where to write the generated log (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the generated log(s)")
    ap.add_argument("--reuse", action="store_true", help="with --dir: mine the logs a kept run left there "
                    "(bb-logs-bench/vllm-SHAPE.log) instead of generating them again")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args()
    modes = ["agent", "dense"] if a.mode == "both" else [a.mode]
    if a.reuse and a.dir is None:
        ap.error("--reuse needs --dir")
    if a.reuse:
        tmp = a.dir / "bb-logs-bench"
        tmp.mkdir(parents=True, exist_ok=True)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="bb-logs-bench-", dir=a.dir))
    results = {"machine": {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
                           "python": platform.python_version(), "platform": platform.platform()}, "runs": []}
    try:
        for mode in modes:
            size_mb = a.size_mb if a.size_mb is not None else (1024 if mode == "agent" else 256)
            path = tmp / f"vllm-{mode}.log"
            gen_s = 0.0 if a.reuse and path.exists() else make_log(path, mode, size_mb)
            warm(path)
            r = bench(path, a.workers, a.repeat)
            r.update({"shape": mode, "generate_s": round(gen_s, 1)})
            results["runs"].append(r)
            if not a.json:
                print(f"{mode:5s} {r['bytes'] / 1e6:8.1f} MB  "
                      f"grep -c: {r['grep_s']} s = {r['grep_mb_s']} MB/s   "
                      f"brainbench logs vllm: {r['brainbench_s']} s = {r['brainbench_mb_s']} MB/s "
                      f"(median of {r['runs']}, best {r['brainbench_best_s']} s; {r['workers']} workers, "
                      f"{r['brainbench_mb_per_cpu_s']} MB per CPU-second)   {r['grep_ratio']}x grep's time   "
                      f"windows {r['stats_windows']:,} (+{r['cut_lines']} cut) "
                      f"{'= grep count' if r['counts_agree'] else '!= grep count ' + str(r['grep_count'])}",
                      flush=True)
        results["machine"]["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
        if a.json:
            print(json.dumps(results, indent=2))
        else:
            m = results["machine"]
            print(f"machine: {m['cpus']} CPUs, load average {m['load_avg_1m']} -> {m['load_avg_1m_after']}, "
                  f"Python {m['python']}")
    finally:
        if a.keep or a.reuse:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if all(r["counts_agree"] for r in results["runs"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
