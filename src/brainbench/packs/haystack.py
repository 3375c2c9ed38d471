"""Long-context cases made on the fly: needles in deterministic haystacks, sized to the server's context.

Haystacks are generated from a seeded vocabulary (never stored), so a case's text, and therefore its
content hash, is the same on every machine and every run. Each needle case records its approximate size
in `meta.context_tokens`; `fit_packs` drops the cases that do not fit the context the server reports
(llama.cpp `/props`, vLLM `/v1/models` `max_model_len`, or $BRAINBENCH_MAX_CONTEXT), so a run never
sends a prompt the server would refuse.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

LENGTHS = [1000, 2000, 4000, 6500, 12000, 24000, 48000, 96000, 120000]
"""Target haystack sizes in tokens (estimated at 4 characters per token)."""
DEPTHS = [0.1, 0.5, 0.9]
"""Where the needle sits, as a fraction of the haystack."""
CHARS_PER_TOKEN = 4.0
SAFETY = 1.1
"""Tokenisers differ: a case needs `context_tokens * SAFETY + max_tokens` to fit."""

_SUBJ = ("the committee", "a junior analyst", "the northern office", "our supplier", "the night shift", "the archive team",
         "a visiting engineer", "the harbour authority", "the finance group", "an old survey", "the field crew",
         "the museum board", "a regional paper", "the lab technicians", "the city council", "the ferry operator")
_VERB = ("reviewed", "postponed", "summarised", "questioned", "approved", "catalogued", "measured", "reported on",
         "re-examined", "discussed", "recorded", "estimated", "audited", "compared", "described", "revisited")
_OBJ = ("the quarterly figures", "the drainage plans", "a set of maps", "the shipping schedule", "the staffing rota",
        "the soil samples", "the grant proposal", "the bridge inspection", "the visitor numbers", "the fuel budget",
        "a box of letters", "the heating system", "the tide tables", "the seed inventory", "the traffic counts",
        "the roof repairs", "the printing costs", "the water meters", "the weather logs", "the tram timetable")
_TAIL = ("before the spring meeting", "without much fuss", "after a long delay", "in some detail", "for the second time",
         "at the request of the mayor", "with mixed results", "over several weeks", "in a short memo",
         "despite the rain", "ahead of the audit", "while the lights were out", "in the old ledger", "by the harbour")
_EXTRA = ("Nobody thought it unusual.", "The notes were filed the same day.", "A copy went to the library.",
          "Most of it was routine.", "Questions were raised and answered.", "The numbers matched last year.",
          "It took longer than planned.", "Someone suggested a follow-up.", "The minutes say little more.")

_COLORS = ("crimson", "amber", "teal", "violet", "ochre", "silver", "indigo", "scarlet", "olive", "cobalt", "saffron")
_ANIMALS = ("otter", "heron", "lynx", "marmot", "falcon", "badger", "gecko", "ibis", "walrus", "bison", "kestrel")


def filler(n_chars: int, seed: int) -> list[str]:
    """Seeded, varied, meaningless sentences totalling about `n_chars` characters."""
    rng = random.Random(seed)
    out, size = [], 0
    while size < n_chars:
        s = f"{rng.choice(_SUBJ).capitalize()} {rng.choice(_VERB)} {rng.choice(_OBJ)} {rng.choice(_TAIL)}."
        if rng.random() < 0.3:
            s += " " + rng.choice(_EXTRA)
        if rng.random() < 0.2:
            s += f" The file number was {rng.randint(100, 999)}-{rng.randint(10, 99)}."
        out.append(s)
        size += len(s) + 1
    return out


def passphrase(seed: int) -> tuple[str, str]:
    """(passphrase text, regex that accepts it with any separator)."""
    rng = random.Random(seed * 7919 + 17)
    c, a, n = rng.choice(_COLORS), rng.choice(_ANIMALS), rng.randint(10, 99)
    return f"{c} {a} {n}", rf"(?i)\b{c}[\s_-]*{a}[\s_-]*{n}\b"


def needle_case(tokens: int, depth: float) -> dict[str, Any]:
    seed = tokens * 10 + int(depth * 10)
    phrase, pattern = passphrase(seed)
    sents = filler(int(tokens * CHARS_PER_TOKEN), seed)
    needle = f"Remember this: the passphrase for the east vault is {phrase}."
    sents.insert(max(1, min(len(sents) - 1, int(len(sents) * depth))), needle)
    # a decoy of the same shape with a different label, so the answer must come from the right sentence
    decoy_phrase, _ = passphrase(seed + 1)
    if decoy_phrase != phrase:
        sents.insert(int(len(sents) * (1 - depth) * 0.8) + 1, f"Note: the passphrase for the west gate is {decoy_phrase}.")
    doc = " ".join(sents)
    question = ("Somewhere in the document above is the passphrase for the east vault. What is it? "
                "Reply with the passphrase only.")
    k = f"{tokens / 1000:g}k"
    return {
        "id": f"needle-{k}-d{int(depth * 100):02d}",
        "description": f"Passphrase planted at {depth:.0%} of a ~{k}-token haystack (with a decoy).",
        "difficulty": "easy" if tokens <= 2000 else "medium" if tokens <= 12000 else "hard",
        "tags": ["context", "needle"],
        "params": {"temperature": 0, "max_tokens": 48},
        "max_turns": 1,
        "messages": [{"role": "user", "content": f"<document>\n{doc}\n</document>\n\n{question}"}],
        "checks": [{"type": "content_regex", "pattern": pattern}],
        "meta": {"context_tokens": int(len(doc) / CHARS_PER_TOKEN) + 60, "depth": depth, "needle": phrase},
    }


def needle_scenarios(folder: Path | None = None) -> list[dict[str, Any]]:
    """Pack generator (see `generator:` in the context pack.yaml): every length x depth."""
    return [needle_case(n, d) for n in LENGTHS for d in DEPTHS]


# -- fitting cases to the server ----------------------------------------------------------------------


def server_context(base_url: str, api: str = "openai", timeout: float = 5.0) -> int | None:
    """The context size (tokens per request) the server reports, or None when it does not say."""
    env = os.environ.get("BRAINBENCH_MAX_CONTEXT")
    if env and env.isdigit():
        return int(env)
    root = base_url.rstrip("/").removesuffix("/v1")
    try:
        if api != "ollama":
            r = httpx.get(root + "/props", timeout=timeout)
            if r.status_code == 200:
                props = r.json()
                props = props if isinstance(props, dict) else {}
                gen = props.get("default_generation_settings")
                n = (gen if isinstance(gen, dict) else {}).get("n_ctx") or props.get("n_ctx")
                if n:
                    return int(n)
            r = httpx.get(root + "/v1/models", timeout=timeout)
            if r.status_code == 200:
                body = r.json()
                models = body.get("data") if isinstance(body, dict) else None
                for m in models if isinstance(models, list) else []:
                    if isinstance(m, dict) and m.get("max_model_len"):
                        return int(m["max_model_len"])
    except (httpx.HTTPError, ValueError, TypeError, OverflowError):  # a server's odd answer: context unknown
        return None
    return None


def fits(scenario: Any, n_ctx: int | None) -> bool:
    need = (scenario.meta or {}).get("context_tokens")
    if not need:
        return True
    budget = n_ctx if n_ctx else 8192  # unknown server: assume a common small default
    return need * SAFETY + int(scenario.params.get("max_tokens", 256)) <= budget


def fit_packs(packs: list[Any], base_url: str, api: str = "openai",
              say: Callable[[str], None] = lambda s: None) -> list[Any]:
    """The packs with every long-context case that does not fit the server's context left out."""
    if not any((s.meta or {}).get("context_tokens") for p in packs for s in p.scenarios):
        return packs
    n_ctx = server_context(base_url, api)
    out = []
    for p in packs:
        keep = [s for s in p.scenarios if fits(s, n_ctx)]
        if len(keep) < len(p.scenarios):
            biggest = max((s.meta.get("context_tokens", 0) for s in keep), default=0)
            say(f"{p.name}: {len(p.scenarios) - len(keep)} long-context case(s) skipped: the server's context is "
                f"{n_ctx or 'unknown (assumed 8192; set BRAINBENCH_MAX_CONTEXT)'} tokens; longest kept ~{biggest}")
        out.append(p.model_copy(update={"scenarios": keep}))
    return out
