#!/usr/bin/env bash
# GuideLLM for the measurement-truth benchmark, in its own venv (never in brainbench's dependencies),
# plus a tokenizer directory made from the embedded brain-small GGUF.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-bench
.venv-bench/bin/pip install -q "guidellm==0.8.1" gguf
.venv-bench/bin/python bench/make_tokenizer.py "${BRAINBENCH_CACHE:-$HOME/.cache/brainbench}/tokenizers/brain-small"
