#!/usr/bin/env bash
# On the GPU machine: unpack the carried llama.cpp (the same tree the embedded backend builds), build llama-server
# and llama-bench with CUDA for sm_90, install the carried wheels brainbench needs, and stash the first model part.
# Usage (from the repo root, carrying .gpu/llama.cpp.tar.xz .gpu/whl): bash bench/gpu/build.sh
# Knobs: JOBS (default 16), TARGETS (default "llama-server llama-bench"), FA=OFF leaves out the FlashAttention kernels.
set -euo pipefail
W=/tmp/bbgpu
JOBS=${JOBS:-16}
TARGETS=${TARGETS:-llama-server llama-bench}
mkdir -p "$W/model" "$W/site"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$W/site" .gpu/whl/*.whl
if [ ! -x "$W/bin/llama-server" ]; then
  [ -d "$W/llama.cpp" ] || tar -xJf .gpu/llama.cpp.tar.xz -C "$W"
  cmake -S "$W/llama.cpp" -B "$W/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
    -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF -DGGML_CUDA_FA="${FA:-ON}" > "$W/cmake.log" 2>&1
  SECONDS=0
  # shellcheck disable=SC2086  # TARGETS is a list
  cmake --build "$W/build" -j "$JOBS" --target $TARGETS > "$W/build.log" 2>&1 || { tail -30 "$W/build.log"; exit 1; }
  echo "built $TARGETS in ${SECONDS}s"
  mkdir -p "$W/bin" && for t in $TARGETS; do cp "$W/build/bin/$t" "$W/bin/"; done
fi
for p in .gpu/m/part*; do [ -f "$p" ] && cp "$p" "$W/model/"; done
ls -la "$W/bin" "$W/model"
nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit --format=csv
