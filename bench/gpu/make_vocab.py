"""Extract brain-small's tokenizer (Qwen2.5's BPE vocabulary, merges, special ids, chat template) into a small file,
so a random-weight GGUF of a real architecture can be generated on the GPU machine without carrying a model there.

    PYTHONPATH=<llama.cpp>/gguf-py python3 bench/gpu/make_vocab.py ~/.cache/brainbench/models/brain-small.gguf .gpu/vocab.json.xz
"""

from __future__ import annotations

import json
import lzma
import sys

import gguf


def main(src: str, dst: str) -> None:
    reader = gguf.GGUFReader(src)
    vocab = {k: f.contents() for k, f in reader.fields.items() if k.startswith("tokenizer.")}
    with lzma.open(dst, "wt", encoding="utf-8") as out:
        json.dump(vocab, out)
    print(f"{dst}: {len(vocab['tokenizer.ggml.tokens'])} tokens, {len(vocab['tokenizer.ggml.merges'])} merges")


if __name__ == "__main__":
    main(*sys.argv[1:3])
