#!/usr/bin/env bash
# On nvidia-h200-x2, in one call: build llama-server (CUDA, sm_90, all cores) while generating the RANDOM-WEIGHT
# Qwen2.5-7B-shaped GGUF (bench/gpu/random_gguf.py), then serve it three ways with 16 slots: on one GPU, split by
# layer over two, split by row over two; each gets brainbench speed (single-stream decode, sweep 1 and 16) with NVML
# energy metered on the GPUs it uses (--gpus). FlashAttention kernels are left out of the build (FA=ON to keep
# them): half the compile time, and the same for all three servers. Carry: .gpu/llama.cpp.tar.xz .gpu/whl .gpu/vocab.json.xz.
# Each result is written to $OUT as soon as it exists (the call may run short of device time).
set -uo pipefail
W=/tmp/bbgpu
PY=${PY:-python3}
M="$W/random-7b.gguf"
PORT=8092
export PYTHONPATH="$W/site:$PWD/src" PYTHONUNBUFFERED=1 COLUMNS=200
{ nvidia-smi --query-gpu=index,name,driver_version,memory.total,power.limit --format=csv; nvidia-smi topo -m; nproc; } \
  > "$OUT/device.txt" 2>&1
mkdir -p "$W"
[ -d "$W/llama.cpp" ] || tar -xJf .gpu/llama.cpp.tar.xz -C "$W"
if [ ! -f "$M" ]; then
  (PYTHONPATH="$W/llama.cpp/gguf-py" $PY bench/gpu/random_gguf.py .gpu/vocab.json.xz "$M" > "$OUT/gen.txt" 2>&1) &
  GEN=$!
fi
JOBS=$(nproc) TARGETS=llama-server FA=${FA:-OFF} bash bench/gpu/build.sh > "$OUT/build.txt" 2>&1 || { tail -30 "$OUT/build.txt"; exit 1; }
[ -n "${GEN:-}" ] && wait "$GEN"; cat "$OUT/gen.txt" 2>/dev/null
run() {  # run NAME GPUS [llama-server flags...]
  local name=$1 gpus=$2; shift 2
  CUDA_VISIBLE_DEVICES=$gpus "$W/bin/llama-server" -m "$M" --host 127.0.0.1 --port $PORT -ngl 99 --parallel 16 \
    -c $((16 * 1024)) --jinja --no-webui --alias random-7b "$@" > "$OUT/server-$name.log" 2>&1 &
  local srv=$!
  for _ in $(seq 240); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.5; done
  timeout 150 $PY -m brainbench speed --endpoint "http://127.0.0.1:$PORT/v1" --model random-7b --energy nvml \
    --gpus "$gpus" --power-hz 20 -c "${LEVELS:-1,16}" --gen-tokens 128 --prompt-tokens 128 --runs 3 --legs decode,sweep \
    -o "$OUT/run-$name" --json > "$OUT/$name.json" 2>> "$OUT/speed.log"
  echo "$name exit $?"; kill $srv; wait $srv 2>/dev/null
  $PY bench/gpu/table.py "$OUT/$name.json" 2>&1 | tee "$OUT/$name.txt"
}
run layer 0,1 -sm layer
run one-gpu 0
run row 0,1 -sm row
ls -la "$OUT"
