"""Make a Hugging Face tokenizer directory from the embedded brain's GGUF (for GuideLLM).

Runs in the benchmark venv (transformers + gguf), never in brainbench's own:
    .venv-bench/bin/python bench/make_tokenizer.py ~/.cache/brainbench/tokenizers/brain-small [brain-small]
"""

import os
import sys
from pathlib import Path

from transformers import AutoTokenizer

out = Path(sys.argv[1]).expanduser()
brain = sys.argv[2] if len(sys.argv) > 2 else "brain-small"
models = Path(os.environ.get("BRAINBENCH_CACHE", Path.home() / ".cache" / "brainbench")) / "models"
tok = AutoTokenizer.from_pretrained(str(models), gguf_file=f"{brain}.gguf")
tok.save_pretrained(str(out))
print(f"{out}: {type(tok).__name__}, {len(tok)} tokens")
