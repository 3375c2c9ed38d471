"""Print the concurrency sweep of a `brainbench speed --json` result as a plain table (energy per token included).

    python bench/gpu/table.py SPEED.json
"""

from __future__ import annotations

import json
import sys


def main(path: str) -> None:
    d = json.load(open(path))
    print(f"model: {d.get('model')}")
    dec = d.get("decode") or {}
    if dec.get("decode_tps"):
        e = dec.get("energy") or {}
        print(f"single-stream decode: {dec['decode_tps'].get('median')} tok/s (CV {dec['decode_tps'].get('cv')}), "
              f"J/token {e.get('joules_per_token')}")
    print(f"{'conc':>5} {'reqs':>5} {'err':>4} {'ttft_med':>9} {'ttft_p99':>9} {'itl_med':>8} {'itl_p99':>8} "
          f"{'agg tok/s':>10} {'per-req':>8} {'compl/min':>9} {'avg W':>6} {'J/tok':>7}")
    for r in d.get("sweep") or []:
        e = r.get("energy") or {}
        jpt, watts = e.get("joules_per_token"), e.get("avg_watts")
        print(f"{r['concurrency']:>5} {r['requests']:>5} {r['errors']:>4} {r['ttft_ms_median']:>9.1f} {r['ttft_ms_p99']:>9.1f} "
              f"{r['itl_ms_median']:>8.2f} {r['itl_ms_p99']:>8.2f} {r['gen_tps_aggregate']:>10.1f} {r['gen_tps_per_request']:>8.1f} "
              f"{r['completions_per_min']:>9.1f} {watts if watts is None else round(watts)!s:>6} {jpt if jpt is None else round(jpt, 4)!s:>7}")
        for g in e.get("devices") or []:
            print(f"{'':>5} GPU{g['index']}: {g.get('avg_watts')} W avg, {g.get('peak_watts')} W peak, {g.get('joules')} J")
    print("knee:", d.get("knee"), "| roofline:", json.dumps(d.get("roofline"))[:300])


if __name__ == "__main__":
    main(sys.argv[1])
