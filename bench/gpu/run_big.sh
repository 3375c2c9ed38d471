#!/usr/bin/env bash
# On the GPU machine, after build.sh: the single-stream cross-check on a memory-bound model.
# Generates (once) a RANDOM-WEIGHT GGUF in Qwen2.5-7B's shape (bench/gpu/random_gguf.py, F16, 15.2 GB; labelled so
# in its name and in every result), serves it with llama-server (CUDA): one slot for the single-stream decode and
# prefill, 64 slots for the sweep to 64 with NVML energy; then llama-bench on the same build and file, and compare.py.
# Carry: .gpu/llama.cpp.tar.xz .gpu/whl .gpu/vocab.json.xz (see bench/gpu/README.md). Results go to $OUT.
set -uo pipefail
W=/tmp/bbgpu
PY=${PY:-python3}
M="$W/random-7b.gguf"
PORT=8090
export PYTHONPATH="$W/site:$PWD/src" PYTHONUNBUFFERED=1
if [ ! -f "$M" ]; then
  [ -d "$W/llama.cpp/gguf-py" ] || tar -xJf .gpu/llama.cpp.tar.xz -C "$W" llama.cpp/gguf-py
  PYTHONPATH="$W/llama.cpp/gguf-py" $PY bench/gpu/random_gguf.py .gpu/vocab.json.xz "$M" || exit 1
fi
{ nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm --format=csv; nproc; } | tee "$OUT/device.txt"
serve() {  # serve SLOTS: start llama-server with that many slots and wait until healthy
  "$W/bin/llama-server" -m "$M" --host 127.0.0.1 --port $PORT -ngl 99 --parallel "$1" -c $(($1 * 2560)) --jinja \
    --no-webui --alias random-7b >> "$OUT/server.log" 2>&1 &
  SRV=$!
  for _ in $(seq 240); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.5; done
}
speed() {  # speed NAME LEGS LEVELS: one brainbench speed run against the server
  timeout 360 $PY -m brainbench speed --endpoint "http://127.0.0.1:$PORT/v1" --model random-7b --energy ${ENERGY:-nvml} \
    --power-hz 20 --model-gb "$(stat -c %s "$M" | awk '{print $1/1e9}')" -c "$3" --gen-tokens 128 --prompt-tokens 128 \
    --prefill-lengths 512,2048 --runs 5 --legs "$2" -o "$OUT/run-$1" --json > "$OUT/$1.json" 2>> "$OUT/speed.log"
  echo "$1 exit $?"; kill $SRV; wait $SRV 2>/dev/null
}
# single stream on a one-slot server: the setting llama-bench measures
serve 1; speed speed-parallel1 decode,prefill 1
# the sweep on a 64-slot server (decode and prefill again, to show what 64 slots cost per token)
serve 64; speed speed decode,prefill,sweep "${LEVELS:-1,2,4,8,16,32,64}"
"$W/bin/llama-bench" -m "$M" -ngl 99 -p 512,2048 -n 128 -r 5 -o json > "$OUT/llama-bench.json" 2>/dev/null
{ echo "server with 1 slot:"; $PY bench/gpu/compare.py "$OUT/speed-parallel1.json" "$OUT/llama-bench.json"
  echo "server with 64 slots:"; $PY bench/gpu/compare.py "$OUT/speed.json" "$OUT/llama-bench.json"; } | tee "$OUT/compare.txt"
$PY -m brainbench report "$OUT/run-speed" --html "$OUT/report.html" >/dev/null 2>&1 || echo "report failed"
$PY bench/gpu/table.py "$OUT/speed.json"
rm -rf "$OUT"/run-*; ls -la "$OUT"
