"""Print brainbench's single-stream decode/prefill next to llama-bench (tg/pp) and llama-server's own timings.

    python bench/gpu/compare.py SPEED.json LLAMA_BENCH.json

SPEED.json is `brainbench speed --json` output; LLAMA_BENCH.json is `llama-bench -o json` output from the same
llama.cpp build and model. Agreement targets: within 5% of the server's timings, within 10% of llama-bench.
"""

from __future__ import annotations

import json
import sys


def gap(ours: float | None, ref: float | None) -> str:
    if not ours or not ref:
        return "n/a"
    g = (ours - ref) / ref
    return f"{100 * g:+.1f}%"


def main(speed_path: str, bench_path: str) -> int:
    speed = json.load(open(speed_path))
    bench = json.load(open(bench_path))
    tg = {b["n_gen"]: b["avg_ts"] for b in bench if b.get("n_gen") and not b.get("n_prompt")}
    pp = {b["n_prompt"]: b["avg_ts"] for b in bench if b.get("n_prompt") and not b.get("n_gen")}
    rows = []
    dec = speed.get("decode") or {}
    ours = (dec.get("decode_tps") or {}).get("median")
    n = dec.get("gen_tokens_requested")
    cc = dec.get("cross_check") or {}
    rows.append((f"decode, {n} tokens (llama-bench tg{n})", ours, cc.get("server_tps_median"), tg.get(n)))
    for row in (speed.get("prefill") or {}).get("lengths", []):
        target = row["target_tokens"]
        cold = row["cold"]
        ours_p = (cold.get("prefill_tps") or {}).get("median")
        server = (cold.get("cross_check") or {}).get("server_tps_median")
        ref = pp.get(target) or pp.get(row.get("prompt_tokens"))
        rows.append((f"prefill cold, {row.get('prompt_tokens')} tokens (llama-bench pp{target})", ours_p, server, ref))
    print(f"{'figure':<48} {'brainbench':>11} {'server':>9} {'gap':>7} {'llama-bench':>12} {'gap':>7}")
    ok = True
    for name, o, s, b in rows:
        print(f"{name:<48} {o or 0:>11.1f} {s or 0:>9.1f} {gap(o, s):>7} {b or 0:>12.1f} {gap(o, b):>7}")
        if name.startswith("decode"):
            ok &= o is not None and s is not None and abs(o - s) / s <= 0.05
            ok &= o is not None and b is not None and abs(o - b) / b <= 0.10
    print("single-stream decode within 5% of the server and 10% of llama-bench:", "yes" if ok else "NO")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
