#!/usr/bin/env bash
# On the GPU machine, after build.sh: where TTFT goes outside llama-server's own prompt clock. A small RANDOM-WEIGHT
# model (qwen2, 2 layers of Qwen2.5-7B's shape, brain-small's tokenizer: bench/gpu/random_gguf.py --layers 2) on one
# slot; the speed prefill leg (its cross-check splits TTFT outside the server at the response head) and
# bench/ttft_split.py (chat vs /completion text vs token ids). Carry: .gpu/llama.cpp.tar.xz .gpu/whl .gpu/vocab.json.xz.
set -uo pipefail
W=/tmp/bbgpu
PY=${PY:-python3}
M="$W/random-2l.gguf"
PORT=8091
export PYTHONPATH="$W/site:$PWD/src" PYTHONUNBUFFERED=1 COLUMNS=200
if [ ! -f "$M" ]; then
  [ -d "$W/llama.cpp/gguf-py" ] || tar -xJf .gpu/llama.cpp.tar.xz -C "$W" llama.cpp/gguf-py
  PYTHONPATH="$W/llama.cpp/gguf-py" $PY bench/gpu/random_gguf.py .gpu/vocab.json.xz "$M" --layers 2 || exit 1
fi
{ nvidia-smi --query-gpu=name,driver_version --format=csv; lscpu | grep -E "Model name|^CPU\(s\)|MHz"; } | tee "$OUT/device.txt"
"$W/bin/llama-server" -m "$M" --host 127.0.0.1 --port $PORT -ngl 99 --parallel 1 -c 8192 --jinja --no-webui \
  --alias random-2l > "$OUT/server.log" 2>&1 &
SRV=$!
for _ in $(seq 240); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.5; done
timeout 240 $PY -m brainbench speed --endpoint "http://127.0.0.1:$PORT/v1" --model random-2l --legs prefill \
  --prefill-lengths 128,512,2048 -o "$OUT/run-prefill" > "$OUT/prefill.txt" 2>&1; echo "speed exit $?"
grep -A8 "prefill (cache" "$OUT/prefill.txt"
timeout 180 $PY bench/ttft_split.py --base "http://127.0.0.1:$PORT" --lengths 100,500,1800 > "$OUT/split.txt" \
  2> "$OUT/split.json"; echo "split exit $?"
cat "$OUT/split.txt"
kill $SRV; wait $SRV 2>/dev/null
