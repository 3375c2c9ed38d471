#!/usr/bin/env bash
# On the GPU machine: unpack the carried llama.cpp (the same tree the embedded backend builds), build llama-server
# and llama-bench with CUDA for sm_90, install the carried wheels brainbench needs, and stash the first model part.
# Usage (from the repo root, carrying .gpu/llama.cpp.tar.xz .gpu/whl): bash bench/gpu/build.sh
set -euo pipefail
W=/tmp/bbgpu
mkdir -p "$W/model" "$W/site"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$W/site" .gpu/whl/*.whl
if [ ! -x "$W/bin/llama-server" ]; then
  tar -xJf .gpu/llama.cpp.tar.xz -C "$W"
  cmake -S "$W/llama.cpp" -B "$W/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
    -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF > "$W/cmake.log" 2>&1
  time cmake --build "$W/build" -j 16 --target llama-server llama-bench > "$W/build.log" 2>&1 || { tail -30 "$W/build.log"; exit 1; }
  mkdir -p "$W/bin" && cp "$W/build/bin/llama-server" "$W/build/bin/llama-bench" "$W/bin/"
fi
for p in .gpu/m/part*; do [ -f "$p" ] && cp "$p" "$W/model/"; done
ls -la "$W/bin" "$W/model"
nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit --format=csv
