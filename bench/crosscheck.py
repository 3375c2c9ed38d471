"""Cross-check brainbench's decode and prefill on an embedded brain against llama.cpp's own numbers.

    .venv/bin/python bench/crosscheck.py                     # brain-small, 7 pairs per figure, 1 thread
    .venv/bin/python bench/crosscheck.py --brain brain-medium --threads 2 --pairs 9

One llama-server runs the brain. Each pair runs `llama-bench` once (built from the same llama.cpp,
tg128 or pp512, same threads) while the server idles, then one brainbench request against the server:
single-stream decode (128 tokens, short cache-busted prompt) or cache-busted prefill (~512 tokens).
Adjacent pairs keep a busy machine from favouring either side. Printed:

- brainbench vs llama-server's own `timings` for the same requests (predicted_per_second,
  prompt_per_second with prompt_n excluding cached tokens): must agree within 5%;
- brainbench vs llama-bench tg128 / pp512 (median of the per-pair ratios): must agree within 10%.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from brainbench.backend import LlamaServer, binary, ensure_brain
from brainbench.client import ChatClient, Endpoint
from brainbench.perf.crosscheck import summarize_requests
from brainbench.perf.legs import Driver
from brainbench.perf.measure import Sample
from brainbench.perf.prompts import messages, nonce
from brainbench.perf.stats import percentile
from brainbench.perf.stream import RawStreamClient

SERVER_LIMIT = 0.05
BENCH_LIMIT = 0.10


def llama_bench(model: Path, threads: int, prompt: int, gen: int) -> float:
    """One llama-bench repetition of ppN (gen=0) or tgN (prompt=0); returns its tok/s."""
    exe = binary("llama-bench")
    if exe is None:
        raise SystemExit("llama-bench is not built: run `brainbench setup`")
    cmd = [str(exe), "-m", str(model), "-p", str(prompt), "-n", str(gen), "-r", "1", "-t", str(threads), "-o", "json"]
    if prompt:
        cmd.append("--no-warmup")  # the warm-up would process the whole prompt once more
    rows = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    return float(rows[0]["avg_ts"])


def gap(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else (a - b) / b


def fmt_gap(g: float | None, limit: float) -> tuple[str, bool]:
    if g is None:
        return "n/a", False
    return f"{g * 100:+.1f}%", abs(g) <= limit


async def main_async(a: argparse.Namespace) -> int:
    model = ensure_brain(a.brain)
    tmp = Path(tempfile.mkdtemp(prefix="bb-crosscheck-"))
    print(f"cross-check: {a.brain} ({model.name}), threads {a.threads}, {a.pairs} pairs", flush=True)
    bench_pp: list[float] = []
    bench_tg: list[float] = []
    ratio_pp: list[float] = []
    ratio_tg: list[float] = []
    dec_all: list[Sample] = []
    pre_all: list[Sample] = []
    with LlamaServer(model, log_path=tmp / "server.log", parallel=1, ctx_per_slot=4096, threads=a.threads) as srv:
        ep = Endpoint(srv.base_url, a.brain)
        async with ChatClient(ep, retries=3) as setup, RawStreamClient(srv.base_url, a.brain) as timed:
            d = Driver(timed, setup)
            probe = await d.probe()
            words = d.cal.words_for(a.prompt)
            for i in range(a.warmup):
                await d.request(messages(8, nonce()), a.gen)
            for r in range(a.pairs):  # adjacent pairs: a busy machine slows both sides of a pair alike
                t0 = time.monotonic()
                tg = llama_bench(model, a.threads, 0, a.gen)
                dec = await d.request(messages(8, nonce(), seed=r), a.gen)
                pp = llama_bench(model, a.threads, a.prompt, 0)
                pre = await d.request(messages(words, nonce(), seed=100 + r), 1, fixed=False)
                bench_tg.append(tg)
                bench_pp.append(pp)
                dec_all.append(dec)
                pre_all.append(pre)
                if dec.decode_tps:
                    ratio_tg.append(dec.decode_tps / tg)
                if pre.prefill_tps:
                    ratio_pp.append(pre.prefill_tps / pp)
                print(f"  pair {r + 1}: decode brainbench {dec.decode_tps or 0:.2f} vs llama-bench tg{a.gen} {tg:.2f}; "
                      f"prefill brainbench {pre.prefill_tps or 0:.2f} vs pp{a.prompt} {pp:.2f} tok/s "
                      f"({time.monotonic() - t0:.0f}s)", flush=True)
    dec_x = summarize_requests(dec_all, "decode") or {}
    pre_x = summarize_requests(pre_all, "prefill") or {}
    ours_dec = percentile([s.decode_tps for s in dec_all], 50)
    ours_pre = percentile([s.prefill_tps for s in pre_all], 50)
    tg, pp = percentile(bench_tg, 50), percentile(bench_pp, 50)
    gap_tg = None if not ratio_tg else percentile(ratio_tg, 50) - 1  # type: ignore[operator]
    gap_pp = None if not ratio_pp else percentile(ratio_pp, 50) - 1  # type: ignore[operator]
    new_prompt = percentile([s.new_prompt_tokens for s in pre_all], 50)
    rows = [["figure", "brainbench", "llama-server", "gap", "≤5%", "llama-bench", "gap", "≤10%"]]
    ok = True
    for name, ours, xc, lb, g in ((f"decode tok/s ({a.gen} tokens)", ours_dec, dec_x, tg, gap_tg),
                                  (f"prefill tok/s ({new_prompt:.0f} new prompt tokens)", ours_pre, pre_x, pp, gap_pp)):
        g1, ok1 = fmt_gap(xc.get("gap_median"), SERVER_LIMIT)
        g2, ok2 = fmt_gap(g, BENCH_LIMIT)
        ok = ok and ok1 and ok2
        rows.append([name, f"{ours:.2f}", f"{xc.get('server_tps_median', 0):.2f}", g1, "PASS" if ok1 else "FAIL",
                     f"{lb:.2f}", g2, "PASS" if ok2 else "FAIL"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print()
    for r in rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    print(f"\nllama-server gap = median over requests of (brainbench − server) ÷ server for the same request "
          f"(decode: +{(dec_x.get('expected_gap') or 0) * 100:.1f}% expected from the definitions, see the README's speed section); "
          f"token counts matched on {len(dec_all) - dec_x.get('token_count_mismatches', 0)}/{len(dec_all)} decode and "
          f"{len(pre_all) - pre_x.get('token_count_mismatches', 0)}/{len(pre_all)} prefill requests; "
          f"fixed length: {probe['fixed_length']}")
    print(f"llama-bench gap = median over {a.pairs} adjacent pairs of brainbench ÷ llama-bench − 1 "
          f"(medians shown); server log {tmp / 'server.log'}")
    print(f"\ncross-check: {'PASS' if ok else 'FAIL'}")
    if a.json:
        a.json.write_text(json.dumps({"brain": a.brain, "threads": a.threads, "decode": dec_x, "prefill": pre_x,
                                      "brainbench": {"decode_tps": ours_dec, "prefill_tps": ours_pre},
                                      "llama_bench": {"tg": bench_tg, "pp": bench_pp},
                                      "pair_ratios": {"tg": ratio_tg, "pp": ratio_pp}, "pass": ok}, indent=2))
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--brain", default="brain-small")
    ap.add_argument("--threads", type=int, default=1,
                    help="same for llama-server and llama-bench; 1 is steadier than 2 on a busy 2-core machine")
    ap.add_argument("--pairs", type=int, default=7, help="adjacent (llama-bench, brainbench) measurements per figure")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    return asyncio.run(main_async(a))


if __name__ == "__main__":
    sys.exit(main())
