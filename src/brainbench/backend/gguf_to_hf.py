"""GGUF -> bf16 safetensors, for an engine that does not read GGUF (vLLM on CPU). Runs INSIDE the vLLM venv.

    python gguf_to_hf.py MODEL.gguf OUT_DIR

A standalone script (stdlib + transformers, gguf, accelerate, torch of that venv), never imported by brainbench:
brainbench's own environment stays free of torch. transformers dequantizes the GGUF on load; the GGUF
quantization marker it leaves in the config would make vLLM look for GGUF weights, so it is cleared before
`save_pretrained`. Writes into OUT_DIR.partial and renames it at the end: a half-written model is never used.
"""

import os
import shutil
import sys
from pathlib import Path


def convert(gguf: Path, out: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local: never ask the hub
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16)
    for holder in (model.config, getattr(model, "generation_config", None)):  # the GGUF quantization marker
        if holder is not None and hasattr(holder, "quantization_config"):
            delattr(holder, "quantization_config")
    model.hf_quantizer = None
    model.is_quantized = False
    model.save_pretrained(str(tmp), safe_serialization=True)
    tok.save_pretrained(str(tmp))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: gguf_to_hf.py MODEL.gguf OUT_DIR")
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
