"""Text statistics shared by the checks and the trace classifier: word tokens and the one loop detector.

The detector looks for degenerate (looping) text: a short unit repeated back to back, the same line again and
again, a long text that compresses far better than language does, or too few distinct word 6-grams. Its
callers keep their own thresholds (`LoopRule`): the trace classifier (`TRACE_LOOPS`, every reply of every
attempt, a `loop` failure) and the stress pack's `no_degenerate_repetition` check (`STRESS_LOOPS`).
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from dataclasses import dataclass

from ..core.taxonomy import LOOP_LINE_REPEATS, LOOP_MIN_CHARS, LOOP_ZLIB_RATIO


def words(text: str) -> list[str]:
    return re.findall(r"[A-Za-zÀ-ÖØ-öø-ÿ0-9]+(?:['’-][A-Za-zÀ-ÖØ-öø-ÿ0-9]+)*", text)


@dataclass(frozen=True)
class LoopRule:
    """Thresholds of the loop detector; a signal whose threshold is None is off."""

    unit_repeats: int | None
    """A unit of 1-12 characters followed by at least this many copies of itself."""
    line_min_chars: int
    """Lines shorter than this are ignored ..."""
    line_spaces_count: bool
    """... counting spaces (True) or only the other characters (False)."""
    min_lines: int
    """Lines compared only when at least this many are kept."""
    line_repeats: int
    """The same line at least this many times ..."""
    line_share_of: int | None
    """... and at least 1/line_share_of of the kept lines."""
    zlib_min_size: int
    """Texts at least this long (characters, or bytes with `zlib_bytes`) are compressed ..."""
    zlib_bytes: bool
    """... measured in bytes rather than characters."""
    zlib_level: int
    """zlib compression level."""
    zlib_ratio: float
    """Compressed/raw below this is a loop (prose: ~0.4-0.6)."""
    ngram_min_words: int | None
    """Texts of at least this many words have their 6-grams counted ..."""
    ngram_share: float = 0.0
    """... and are a loop when fewer than this share are distinct."""


TRACE_LOOPS = LoopRule(unit_repeats=None, line_min_chars=8, line_spaces_count=False, min_lines=1,
                       line_repeats=LOOP_LINE_REPEATS, line_share_of=None, zlib_min_size=LOOP_MIN_CHARS,
                       zlib_bytes=False, zlib_level=-1, zlib_ratio=LOOP_ZLIB_RATIO, ngram_min_words=None)
"""The trace classifier's thresholds (core.taxonomy): any reply, so only clear loops count."""

STRESS_LOOPS = LoopRule(unit_repeats=15, line_min_chars=9, line_spaces_count=True, min_lines=8, line_repeats=5,
                        line_share_of=3, zlib_min_size=1501, zlib_bytes=True, zlib_level=9, zlib_ratio=0.12,
                        ngram_min_words=120, ngram_share=0.35)
"""The stress check's thresholds: long answers, where a subtler loop (short units, n-grams) also counts."""


def _repeated_unit(text: str, rule: LoopRule) -> str | None:
    if rule.unit_repeats is None:
        return None
    m = re.search(r"(.{1,12}?)\1{" + str(rule.unit_repeats) + ",}", text, re.S)
    if m and len(m.group(0).strip()) > 0:
        return f"repeats {m.group(1)!r} {len(m.group(0)) // max(1, len(m.group(1)))}x"
    return None


def _repeated_line(text: str, rule: LoopRule) -> str | None:
    def size(line: str) -> int:
        return len(line) if rule.line_spaces_count else len(line.replace(" ", ""))

    lines = Counter(ln.strip() for ln in text.splitlines() if size(ln.strip()) >= rule.line_min_chars)
    n = sum(lines.values())
    if not lines or n < rule.min_lines:
        return None
    top = max(lines.values())
    need = max(rule.line_repeats, n // rule.line_share_of) if rule.line_share_of else rule.line_repeats
    return f"the same line appears {top}x" if top >= need else None


def _compresses(text: str, rule: LoopRule) -> str | None:
    raw = text.encode()
    if (len(raw) if rule.zlib_bytes else len(text)) < rule.zlib_min_size or not raw:
        return None
    ratio = len(zlib.compress(raw, rule.zlib_level)) / len(raw)
    return f"text compresses to {ratio:.0%} (a loop)" if ratio < rule.zlib_ratio else None


def _few_ngrams(text: str, rule: LoopRule) -> str | None:
    ws = words(text.lower())
    if rule.ngram_min_words is None or len(ws) < rule.ngram_min_words:
        return None
    grams = [tuple(ws[i:i + 6]) for i in range(len(ws) - 5)]
    uniq = len(set(grams)) / len(grams)
    return f"only {uniq:.0%} of 6-word sequences are distinct" if uniq < rule.ngram_share else None


def loop_reason(text: str, rule: LoopRule) -> str | None:
    """Why `text` looks degenerate (a loop) under `rule`, or None."""
    for signal in (_repeated_unit, _repeated_line, _compresses, _few_ngrams):
        why = signal(text, rule)
        if why:
            return why
    return None
