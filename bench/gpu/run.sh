#!/usr/bin/env bash
# On the GPU machine, after build.sh and the model parts have arrived (see bench/gpu/README.md):
# assemble + verify brain-small, run `brainbench speed` (sweep to 64, NVML energy), llama-bench, the cross-checks,
# and the report. Results go to $OUT.
set -uo pipefail
W=/tmp/bbgpu
PY=${PY:-python3}
export PYTHONPATH="$W/site:$PWD/src" PYTHONUNBUFFERED=1
export BRAINBENCH_CACHE="$W/cache" BRAINBENCH_LLAMA_BIN_DIR="$W/bin"
M="$W/cache/models/brain-small.gguf"
mkdir -p "$W/cache/models" "$OUT/run"
if [ ! -f "$M" ]; then cat "$W"/model/part* > "$M"; fi
SUM=$(sha256sum "$M" | cut -d' ' -f1)
[ "$SUM" = 1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32 ] || { echo "model sha256 mismatch: $SUM"; exit 1; }
echo "$SUM" > "$W/cache/models/brain-small.sha256"
{ nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm --format=csv; nproc; } | tee "$OUT/device.txt"
LEVELS=${LEVELS:-1,2,4,8,16,32,64}
timeout 420 $PY -m brainbench speed --brain brain-small --server-arg "-ngl 99" --energy ${ENERGY:-nvml} --power-hz 20 \
  -c "$LEVELS" --gen-tokens 128 --prompt-tokens 128 --prefill-lengths 512,2048 --requests-per-level ${RPL:-128} \
  --legs decode,prefill,sweep,agent --agent-concurrency 1,16 --runs 5 -o "$OUT/run" --json > "$OUT/speed.json" \
  2> "$OUT/speed.log"; echo "speed exit $?"; tail -5 "$OUT/speed.log"
"$W/bin/llama-bench" -m "$M" -ngl 99 -p 512,2048 -n 128 -r 5 -o json > "$OUT/llama-bench.json" 2>/dev/null
$PY bench/gpu/compare.py "$OUT/speed.json" "$OUT/llama-bench.json" | tee "$OUT/compare.txt"
$PY -m brainbench report "$OUT/run" --html "$OUT/report.html" --md "$OUT/REPORT.md" >/dev/null 2>&1 || echo "report failed"
$PY - "$OUT/speed.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"{'conc':>5} {'reqs':>5} {'err':>4} {'ttft_med':>9} {'ttft_p99':>9} {'itl_med':>8} {'itl_p99':>8} {'agg tok/s':>10} {'per-req':>8} {'compl/min':>9} {'J/tok':>7}")
for r in d["sweep"]:
    e = (r.get("energy") or {}).get("joules_per_token")
    print(f"{r['concurrency']:>5} {r['requests']:>5} {r['errors']:>4} {r['ttft_ms_median']:>9.1f} {r['ttft_ms_p99']:>9.1f} "
          f"{r['itl_ms_median']:>8.2f} {r['itl_ms_p99']:>8.2f} {r['gen_tps_aggregate']:>10.1f} {r['gen_tps_per_request']:>8.1f} "
          f"{r['completions_per_min']:>9.1f} {e if e is None else round(e, 4)!s:>7}")
print("knee:", d.get("knee"), "| roofline:", json.dumps(d.get("roofline"))[:300])
print("energy:", json.dumps(d.get("energy"))[:400])
PY
ls -la "$OUT" "$OUT/run"
