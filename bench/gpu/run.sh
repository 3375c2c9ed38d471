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
$PY bench/gpu/table.py "$OUT/speed.json"
$PY -c 'import json,sys; print("energy:", json.dumps(json.load(open(sys.argv[1])).get("energy"))[:400])' "$OUT/speed.json"
ls -la "$OUT" "$OUT/run"
