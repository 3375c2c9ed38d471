"""Mine vLLM server logs: periodic engine stats lines bucketed by `Running: N reqs`.

Line formats handled (format strings from vLLM's source):

* V0 `vllm/engine/metrics.py`:
  `Avg prompt throughput: %.1f tokens/s, Avg generation throughput: %.1f tokens/s, Running: %d reqs,
  Swapped: %d reqs, Pending: %d reqs, GPU KV cache usage: %.1f%%, CPU KV cache usage: %.1f%%.`
* early V1 `vllm/v1/metrics/loggers.py`: `... Running: %d reqs, Waiting: %d reqs ` (trailing space, no KV)
* V1: `Engine %03d: ... Running: %d reqs, Waiting: %d reqs, GPU KV cache usage: %.1f%%,
  Prefix cache hit rate: %.1f%%` and the newer optional parts `Deferred: %d reqs`, `Preemptions: %d`,
  `Corrupted: %d reqs`, `External prefix cache hit rate: %.1f%%`, `MM cache hit rate: %.1f%%`;
  data-parallel servers print `Engine 001: ...` per engine or `N Engines Aggregated: ...`.
* uvicorn access lines `"POST /v1/chat/completions HTTP/1.1" 200`.
* speculative decoding: V0 `Speculative metrics: Draft acceptance rate: %.3f, ...`, V1
  `SpecDecoding metrics: [Draft acceptance rate: %.1f%%, ]Mean acceptance length: %.2f, ...,
  Per-position acceptance rate: %s, ...`.
* capacity at start-up: `GPU KV cache size: %s tokens`, `# GPU blocks: %d, # CPU blocks: %d`,
  `Maximum concurrency for %s tokens per request: %.2fx`.

Speed: the input is read in big regions (an mmap, or decompressed gzip) and mined 1 MB block at a time.
In a block whose stats and access lines all have vLLM's usual layout, one line-anchored regex (FAST_RE)
returns every stats and access line's fields in one `findall`; other blocks are cut at the stats literal
and only those pieces are parsed. Everything after the regex runs over whole columns (map, zip, Counter)
rather than line by line, and big inputs are split across processes.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import re
import time
from collections import Counter, _count_elements  # type: ignore[attr-defined]
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate, chain, compress, islice, repeat
from operator import add, eq, is_not, itemgetter, lt, methodcaller, mul, sub
from pathlib import Path
from typing import Any

from .common import (
    YEAR_S,
    Task,
    TruncatedInput,
    counter_stats,
    is_stream,
    iter_regions,
    md_seconds,
    plan_tasks,
    rnd,
    strip_ansi,
)
from .windows import WindowSet

# -- patterns ------------------------------------------------------------------------------------------

STATS_LIT = b"Avg prompt throughput: "
_NUM = rb"(\d{1,15}(?:\.\d{1,12}|))"
"""Numbers are bounded in length: a 400-digit value is a corrupt line (counted), not an OverflowError.
Optional parts are written `(?:X|)`, not `(?:X)?`: the same match, without sre's slower general repeat."""
_INT = rb"(\d{1,12})"
STATS_RE = re.compile(
    rb"Avg prompt throughput: " + _NUM + rb" tokens/s, Avg generation throughput: " + _NUM + rb" tokens/s, "
    rb"Running: " + _INT + rb" reqs,(?: Swapped: \d+ reqs,|) (?:Waiting|Pending): " + _INT + rb" reqs"
    rb"(?:, Deferred: \d+ reqs|)(?:, Preemptions: " + _INT + rb"|)"
    rb"(?:,? GPU KV cache usage: " + _NUM + rb"%|)(?:, Prefix cache hit rate: " + _NUM + rb"%|)"
)
ACCESS_LIT = b'"POST /v1/'
ACCESS_RE = re.compile(
    rb'"POST /v1/(?:chat/completions|completions|responses|messages)(?:\?[^" ]*)? HTTP/\d(?:\.\d)?" (\d{3})'
)
TS_RE = re.compile(rb"(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)")
SPEC_LIT = b" metrics: "
CAP_LIT = b"concurrency for "
CAP_RE = re.compile(rb"Maximum concurrency for ([\d,]+) tokens per request: (\d+(?:\.\d+)?)x")
KVSIZE_RE = re.compile(rb"(\w+) KV cache size: ([\d,]+) tokens")
BLOCKS_RE = re.compile(rb"# (\w+) blocks: (\d+), # CPU blocks: (\d+)")
_SPEC_FIELDS = {
    "mal": re.compile(rb"Mean acceptance length: (\d+(?:\.\d+)?)"),
    "rate": re.compile(rb"Draft acceptance rate: (\d+(?:\.\d+)?|nan)(%?)"),
    "accepted": re.compile(rb"(?:Accepted|Number of accepted tokens): (\d+)"),
    "drafted": re.compile(rb"(?:Drafted|Number of draft tokens): (\d+)"),
    "pos": re.compile(rb"Per-position acceptance rate: (\d+(?:\.\d+)?(?:, \d+(?:\.\d+)?)*)"),
}

_start = re.Match.start
_group1 = methodcaller("group", 1)

AGG = -1
"""Series id of `N Engines Aggregated:` lines. Per-engine lines use the engine index (0 without a prefix)."""

PREFILL_NOTE = ("vLLM's 'Avg prompt throughput' is prompt tokens per second as the engine logs them: in most "
                "versions it counts every prompt token scheduled, prefix-cache hits included, so it can exceed "
                "real prefill compute; recent versions count computed tokens only.")


# -- accumulators -----------------------------------------------------------------------------------------


@dataclass(slots=True)
class Acc:
    """One bucket (label, series, running): value -> count tables of the logged strings."""

    n: int = 0
    gen: Counter = field(default_factory=Counter)
    prompt: Counter = field(default_factory=Counter)
    completions: int = 0
    waiting: int = 0
    preemptions: int = 0
    kv_sum: float = 0.0
    kv_n: int = 0
    hit_sum: float = 0.0
    hit_n: int = 0

    def merge(self, o: Acc) -> None:
        self.n += o.n
        add_counts(self.gen, o.gen)
        add_counts(self.prompt, o.prompt)
        self.completions += o.completions
        self.waiting += o.waiting
        self.preemptions += o.preemptions
        self.kv_sum += o.kv_sum
        self.kv_n += o.kv_n
        self.hit_sum += o.hit_sum
        self.hit_n += o.hit_n


@dataclass
class SpecAcc:
    n: int = 0
    mal_sum: float = 0.0
    mal_n: int = 0
    accepted: int = 0
    drafted: int = 0
    rate_sum: float = 0.0
    rate_n: int = 0
    pos_sum: list[float] = field(default_factory=list)
    pos_n: list[int] = field(default_factory=list)

    def merge(self, o: SpecAcc) -> None:
        self.n += o.n
        self.mal_sum += o.mal_sum
        self.mal_n += o.mal_n
        self.accepted += o.accepted
        self.drafted += o.drafted
        self.rate_sum += o.rate_sum
        self.rate_n += o.rate_n
        for i, (s, c) in enumerate(zip(o.pos_sum, o.pos_n)):
            if i < len(self.pos_sum):
                self.pos_sum[i] += s
                self.pos_n[i] += c
            else:
                self.pos_sum.append(s)
                self.pos_n.append(c)


@dataclass
class SeriesTime:
    first: float | None = None
    last: float | None = None
    deltas: Counter = field(default_factory=Counter)


@dataclass
class Tally:
    """Counters a task collects and the merge sums: one definition for both sides."""

    stats_lines: int = 0
    corrupt_lines: int = 0
    skipped_engine: int = 0
    unlabelled: int = 0
    no_timestamp: int = 0
    completions: int = 0
    http_status: Counter = field(default_factory=Counter)
    spec: SpecAcc = field(default_factory=SpecAcc)
    capacity: list = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for name in ("stats_lines", "corrupt_lines", "skipped_engine", "unlabelled", "no_timestamp", "completions"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.http_status.update(other.http_status)
        self.spec.merge(other.spec)
        self.capacity.extend(other.capacity)


@dataclass
class Partial(Tally):
    """What one task (a byte range of one file) contributes; merged in task order."""

    index: int = 0
    path: str = ""
    bytes: int = 0
    buckets: dict = field(default_factory=dict)
    first_key: tuple | None = None
    """Bucket of the task's first counted window: completions carried from the previous task land there."""
    tail_pending: int = 0
    """2xx access lines after the task's last counted window (they belong to the next task's first)."""
    head_reset: bool = False
    """The task's first window was dropped (unlabelled): carried completions are dropped with it."""
    series: dict = field(default_factory=dict)
    truncated: str | None = None


@dataclass
class Options:
    windows: WindowSet | None = None
    engine: str = "all"
    """'all', 'agg', or an engine index as text."""
    summary_running: tuple[int, int | None] = (1, None)
    """Running range of the summary table (default: every window with a running request)."""


# -- the scanner -----------------------------------------------------------------------------------------
#
# A region is mined 1 MB block at a time: by FAST_RE (one findall gives every stats and access line's fields)
# where every literal in the block is on a line of the usual layout, else by the general path (the block cut
# at the stats literal). After that the work is whole-column steps (map, zip, compress, Counter), so the
# per-line cost stays in C, and the values are tallied as (Running, value) -> count tables per (label,
# series) that `_fold` turns into one `Acc` per bucket.


def _series_of(buf, lo: int, pos: int) -> int:
    """Engine prefix right before the message: `Engine 001: ` or `2 Engines Aggregated: `. Lines without
    one (V0, early V1) come from a single engine and count as engine 0."""
    if buf[pos - 2:pos] != b": ":
        return 0
    pre = buf[lo:pos]
    nl = pre.rfind(b"\n")
    if nl >= 0:
        pre = pre[nl + 1:]
    if b"\x1b" in pre:
        pre = strip_ansi(pre)
    if pre.endswith(b"Engines Aggregated: "):
        return AGG
    i = pre.rfind(b"Engine ")
    if i < 0:
        return 0
    try:
        return int(pre[i + 7:-2])
    except ValueError:
        return 0


class _Tallies:
    """(Running, logged value) -> count tables of one (label, series) group of a task, filled a block at a
    time in C; `_fold` turns them into one `Acc` per bucket."""

    __slots__ = ("counts", "gen", "prompt", "kv", "hit")

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        """(running, waiting, preemptions, completions) -> windows: n and the sums of the three."""
        self.gen: Counter = Counter()
        self.prompt: Counter = Counter()
        self.kv: Counter = Counter()
        self.hit: Counter = Counter()

    def add(self, running, waiting, preempt, comp, gen, prompt, kv, hit) -> None:
        self.counts.update(zip(running, waiting, preempt, comp))
        self.gen.update(zip(running, gen))
        self.prompt.update(zip(running, prompt))
        if any(kv):
            self.kv.update(zip(running, kv))
        if any(hit):
            self.hit.update(zip(running, hit))


def scan_task(task: Task, opts: Options) -> Partial:
    p = Partial(index=task.index, path=task.path)
    st = _ScanState(opts)
    collect = gc.isenabled()
    gc.disable()  # the scan makes millions of small tuples and no cycles: no collector passes over them
    try:
        for region in iter_regions(task):
            p.bytes += region.end - region.start
            _scan_region(region.buf, region.start, region.end, p, st)
    except TruncatedInput as e:
        p.truncated = str(e)
    finally:
        if collect:
            gc.enable()
    p.tail_pending = st.pending
    for (label, sid), running in st.key_order:
        p.buckets[label, sid, running] = Acc()
    _fold(st.tallies, p.buckets)
    return p


class _ScanState:
    __slots__ = ("opts", "pending", "minute_cache", "year_off", "prev_t", "want", "win", "seen_window",
                 "series_cache", "tallies", "key_order")

    def __init__(self, opts: Options):
        self.opts = opts
        self.pending = 0
        """2xx access lines not yet given to a window (they go to the next counted one)."""
        self.minute_cache: dict[bytes, float | None] = {}
        self.year_off = 0.0
        self.prev_t: float | None = None
        self.win = opts.windows
        self.seen_window = False
        self.series_cache: dict[bytes, int] = {}
        self.tallies: dict[tuple, _Tallies] = {}
        """(label, series) -> its tables."""
        self.key_order: dict[tuple, None] = {}
        """((label, series), running) of a task that had several groups, in the order first seen."""
        e = opts.engine
        self.want = None if e == "all" else (AGG if e == "agg" else int(e))


_BODY = STATS_RE.pattern[len(STATS_LIT):]
_BODY_RE = re.compile(_BODY)
"""A stats line after its literal; no match: a cut or corrupt line."""
_ACCESS_TAIL = ACCESS_RE.pattern[len(ACCESS_LIT):]
FAST_RE = re.compile(
    rb"\n(?:\([^()\n:\-]{1,64}\) |)(?:"
    rb"INFO (\d\d-\d\d \d\d:\d\d:\d\d) \[[^\]\n]{1,80}\] (?:Engine (\d{1,12}): |(\d{1,12}) Engines Aggregated: |)"
    + STATS_LIT + rb"(?:" + _BODY + rb"|)"
    rb"|INFO: +[^ ]{1,64} - " + ACCESS_LIT + rb"(?:" + _ACCESS_TAIL + rb"|))"
)
"""The common layouts in one pass: a stats line that starts `[(tag) ]INFO MM-DD HH:MM:SS [file:line] [engine]`
(groups: timestamp, engine, aggregated, then the 7 value groups, empty when the line is cut) or a uvicorn
access line `INFO:     host:port - "POST /v1/...` (last group: its status, empty when it is not a
completion). The tag cannot hold a timestamp (no ':' or '-'), so the captured one is the line's first, as
the general path reads it. Single-character exclusions (`[^ ]`) keep sre on its fast counting loop."""
BLOCK_BYTES = 1 << 20
"""Blocks are mined with FAST_RE where every stats and access literal in them is one of its lines."""
_groups: Any = re.Match.groups
_group0 = itemgetter(0)
_last = itemgetter(-1)
_last12 = itemgetter(slice(-12, None))
_minute = itemgetter(slice(0, 11))
_second = itemgetter(slice(12, 14))
_SECS = {b"%02d" % i: i for i in range(100)}
_YEAR_BACK = 15552000
"""A step back in time of more than 180 days means the log crossed New Year."""


def _scan_region(buf, start: int, end: int, p: Partial, st: _ScanState) -> None:
    """Mine the region a block at a time; each block starts with the newline before its first line."""
    a = start
    while a < end:
        b = min(end, a + BLOCK_BYTES)
        if b < end:
            nl = buf.find(b"\n", b, end)
            b = end if nl < 0 else nl + 1
        block = buf[a - 1:b] if a > start or (a > 0 and buf[a - 1:a] == b"\n") else b"\n" + buf[a:b]
        if block.find(SPEC_LIT) >= 0 or not _fast_block(block, p, st):
            _general_block(block, p, st)
        a = b
    _capacity(buf, start, end, p)


def _fast_block(block: bytes, p: Partial, st: _ScanState) -> bool:
    """FAST_RE over the block; False (nothing counted) when some literal is on a line of another layout."""
    entries = FAST_RE.findall(block)
    if not entries:
        return block.find(STATS_LIT) < 0 and block.find(ACCESS_LIT) < 0
    ts = list(map(_group0, entries))
    code = list(map(_last, entries))
    stats = list(compress(entries, ts))
    if len(stats) != block.count(STATS_LIT) or len(entries) - len(stats) != block.count(ACCESS_LIT):
        return False
    cum_at, total = _access_counts(code, ts, p)
    if not stats:
        st.pending += total
        return True
    cols: list[Sequence] = list(zip(*stats))
    prompt = cols[3]
    idx = list(range(len(stats)))
    cut = prompt.count(b"")
    if cut:
        p.corrupt_lines += cut
        idx = list(compress(idx, prompt))
        cols = [list(compress(c, prompt)) for c in cols]
        if not idx:
            st.pending += total
            return True
    stamp, eng, agg = cols[0], cols[1], cols[2]
    if agg.count(b"") == len(agg) and eng.count(eng[0]) == len(eng):
        series = [int(eng[0]) if eng[0] else 0] * len(eng)
    else:
        series = [AGG if g else (int(e) if e else 0) for e, g in zip(eng, agg)]
    keep = _wanted(series, p, st)
    if keep is not None:
        if not any(keep):
            st.pending += total
            return True
        idx, series = list(compress(idx, keep)), list(compress(series, keep))
        cols = [list(compress(c, keep)) for c in cols]
        stamp = cols[0]
    _tally(p, st, idx, cum_at, total, series, _stamp_seconds(stamp, st.minute_cache), cols[3:10])
    return True


def _access_counts(code, ts, p: Partial) -> tuple[list[int], int]:
    """From the entries' status column (empty for stats lines): 2xx access lines seen before each stats
    line, and in all; other statuses are counted by code."""
    seen = Counter(code)
    total = 0
    for c, n in seen.items():
        if c.startswith(b"2"):
            total += n
        elif c:
            p.http_status[c.decode()] += n
    p.completions += total
    if not total:
        return [0] * (len(ts) - ts.count(b"")), 0
    cum = accumulate(map(bytes.startswith, code, repeat(b"2")))
    return list(compress(cum, ts)), total


def _wanted(series: list[int], p: Partial, st: _ScanState) -> list[bool] | None:
    """With --engine: which windows are of that engine (None: all are). The others are counted as
    skipped and their completions go to the next wanted window."""
    if st.want is None:
        return None
    keep = list(map(eq, series, repeat(st.want)))
    kept = sum(keep)
    if kept == len(keep):
        return None
    p.skipped_engine += len(keep) - kept
    return keep


def _general_block(data: bytes, p: Partial, st: _ScanState) -> None:
    """Any layout: the block is cut at every stats literal. Piece k ends with the head of stats line k
    (timestamp, engine) and piece k+1 starts with its values, followed by the lines up to the next stats
    line (access lines of the next window, speculative-decoding lines)."""
    pieces = data.split(STATS_LIT)
    done = _access_pieces(pieces, p)
    ms = list(map(_BODY_RE.match, islice(pieces, 1, None)))
    if data.find(SPEC_LIT) >= 0:
        _spec_lines(pieces, ms, p.spec)
    cut = ms.count(None)
    p.corrupt_lines += cut
    total = sum(done)
    if cut == len(ms):
        st.pending += total
        return
    cum_at = list(accumulate(islice(done, len(ms))))
    idx = [k for k, m in enumerate(ms) if m is not None] if cut else list(range(len(ms)))
    heads = list(map(pieces.__getitem__, idx))
    series = _series(data, pieces, idx, heads, st)
    keep = _wanted(series, p, st)
    if keep is not None:
        if not any(keep):
            st.pending += total
            return
        idx, heads, series = list(compress(idx, keep)), list(compress(heads, keep)), list(compress(series, keep))
    times = _times(data, pieces, idx, heads, st)
    cols = list(zip(*map(_groups, map(ms.__getitem__, idx))))
    _tally(p, st, idx, cum_at, total, series, times, cols)


def _access_pieces(pieces: list[bytes], p: Partial) -> list[int]:
    """2xx completion access lines per piece (other statuses are counted by code)."""
    codes = list(map(ACCESS_RE.findall, pieces))
    seen = Counter(chain.from_iterable(codes))
    ok = [c for c in seen if c.startswith(b"2")]
    for c in seen:
        if not c.startswith(b"2"):
            p.http_status[c.decode()] += seen[c]
    if not ok:
        return [0] * len(pieces)
    p.completions += sum(map(seen.__getitem__, ok))
    done = list(map(methodcaller("count", ok[0]), codes))
    for c in ok[1:]:
        done = list(map(add, done, map(methodcaller("count", c), codes)))
    return done


def _spec_lines(pieces: list[bytes], ms: list, acc: SpecAcc) -> None:
    """Speculative-decoding lines follow their stats line (same vLLM log() call): look from each stats
    line to the next stats literal, and before the block's first one."""
    _spec_between(pieces[0], 0, len(pieces[0]), acc)
    for piece, m in zip(islice(pieces, 1, None), ms):
        if m is not None:
            _spec_between(piece, m.end(), len(piece), acc)


def _tally(p: Partial, st: _ScanState, idx: list[int], cum_at: list[int], total: int, series: list[int],
           times: list, cols: Sequence) -> None:
    """Count the windows (stats lines `idx` of the block, in order) into the task's tables. `cum_at[k]`:
    2xx access lines before stats line k; `cols`: prompt, gen, running, waiting, preemptions, kv, hit."""
    p.no_timestamp += times.count(None)
    prompt, gen, running, waiting, preempt, kv, hit = cols
    labels = list(map(st.win.label_at, times)) if st.win is not None else None
    if not st.seen_window:
        st.seen_window = True
        if labels is not None and labels[0] is None:
            p.head_reset = True
        else:
            p.first_key = (labels[0] if labels is not None else None, series[0], running[0])
    at = list(map(cum_at.__getitem__, idx))
    comp = list(map(sub, at, chain((0,), at)))  # 2xx access lines since the previous window
    comp[0] += st.pending
    st.pending = total - at[-1]
    if labels is not None:  # windows outside every labelled range are dropped, with their completions
        ok = list(map(is_not, labels, repeat(None)))
        if not all(ok):
            p.unlabelled += len(ok) - sum(ok)
            labels, series, times, comp, prompt, gen, running, waiting, preempt, kv, hit = (
                list(compress(x, ok)) for x in
                (labels, series, times, comp, prompt, gen, running, waiting, preempt, kv, hit))
    p.stats_lines += len(series)
    cols = (running, waiting, preempt, comp, gen, prompt, kv, hit)
    groups = list(zip(labels, series)) if labels is not None else None
    if groups is None and series.count(series[0]) == len(series):
        _group(st, (None, series[0])).add(*cols)
    else:
        groups = groups or list(zip(repeat(None), series))
        st.key_order.update(dict.fromkeys(zip(groups, running)))  # buckets are made in the order they came
        for g in dict.fromkeys(groups):
            mask = list(map(eq, groups, repeat(g)))
            _group(st, g).add(*(list(compress(c, mask)) for c in cols))
    _track_time(p, st, series, times)


def _literal_pos(pieces: list[bytes], k: int) -> int:
    """Offset of stats literal k in the block (for the rare lines that need the text before their piece)."""
    return sum(map(len, islice(pieces, 0, k + 1))) + k * len(STATS_LIT)


def _series(data: bytes, pieces: list[bytes], idx: list[int], heads: list[bytes], st: _ScanState) -> list[int]:
    """Series id of each window, cached by the 12 bytes before the literal (`Engine 001: `)."""
    k12 = list(map(_last12, heads))
    short = [j for j, h in enumerate(heads) if len(h) < 12 and idx[j]] if min(map(len, heads)) < 12 else []
    for j in short:  # two stats literals close together: the 12 bytes reach back over the previous one
        pos = _literal_pos(pieces, idx[j])
        k12[j] = data[max(0, pos - 12):pos]
    cache = st.series_cache
    out: list = list(map(cache.get, k12))
    if None in out:
        for j in [j for j, s in enumerate(out) if s is None]:
            s = cache.get(k12[j])
            if s is None:
                if len(cache) > 4096:  # lines with no prefix: the 12 bytes reach into the previous line
                    cache.clear()
                pos = _literal_pos(pieces, idx[j])
                s = cache[k12[j]] = _series_of(data, max(0, pos - 64), pos)
            out[j] = s
    return out


def _times(data: bytes, pieces: list[bytes], idx: list[int], heads: list[bytes], st: _ScanState) -> list:
    """Year-less seconds of each window: the first `MM-DD HH:MM:SS` on its line before the message."""
    nls = list(map(bytes.rfind, heads, repeat(b"\n")))
    found: list = list(map(TS_RE.search, heads, map(add, nls, repeat(1))))
    if -1 in nls:  # no newline before the literal in its piece: the line began before the previous literal
        for j in [j for j, nl in enumerate(nls) if nl < 0 and idx[j]]:
            pos = _literal_pos(pieces, idx[j])
            found[j] = TS_RE.search(data, data.rfind(b"\n", 0, pos) + 1, pos)
    if None in found:
        return [_seconds(m[0], st.minute_cache) if m is not None else None for m in found]
    return _stamp_seconds(list(map(_group0, found)), st.minute_cache)


def _stamp_seconds(stamps: Sequence[bytes], cache: dict) -> list:
    """`MM-DD HH:MM:SS` -> year-less seconds (None for a date that does not exist), minutes cached."""
    minutes = list(map(_minute, stamps))
    for k in set(minutes).difference(cache):
        cache[k] = md_seconds(int(k[0:2]), int(k[3:5]), int(k[6:8]), int(k[9:11]), 0)
    bases = list(map(cache.__getitem__, minutes))
    secs = map(_SECS.__getitem__, map(_second, stamps))
    if None in bases:
        return [b + s if b is not None else None for b, s in zip(bases, secs)]
    return list(map(add, bases, secs))


def _seconds(g: bytes, cache: dict) -> int | None:
    base = cache.get(g[:11], -1)
    if base == -1:
        base = cache[g[:11]] = md_seconds(int(g[0:2]), int(g[3:5]), int(g[6:8]), int(g[9:11]), 0)
    return None if base is None else base + _SECS[g[12:14]]


def _track_time(p: Partial, st: _ScanState, series: list[int], times: list) -> None:
    """First and last time and the gaps between consecutive windows, per series (in log order)."""
    if None in times:
        keep = list(map(is_not, times, repeat(None)))
        series, times = list(compress(series, keep)), list(compress(times, keep))
    if not times:
        return
    prev = st.prev_t
    if (prev is not None and times[0] + st.year_off < prev - _YEAR_BACK) or any(
            map(lt, islice(times, 1, None), map(sub, times, repeat(_YEAR_BACK)))):
        adj = []
        for t in times:
            if prev is not None and t + st.year_off < prev - _YEAR_BACK:
                st.year_off += YEAR_S  # the log crossed New Year
            prev = t + st.year_off
            adj.append(prev)
    else:
        adj = list(map(add, times, repeat(st.year_off)))
    st.prev_t = adj[-1]
    ids = set(series)
    for sid in ids:
        ta = adj if len(ids) == 1 else list(compress(adj, map(eq, series, repeat(sid))))
        s = p.series.get(sid)
        if s is None:
            s = p.series[sid] = SeriesTime(first=ta[0])
        elif s.last is not None:
            s.deltas[int(ta[0] - s.last + 0.5)] += 1
        s.deltas.update(map(int, map(add, map(sub, islice(ta, 1, None), ta), repeat(0.5))))
        s.last = ta[-1]


def _group(st: _ScanState, g: tuple) -> _Tallies:
    t = st.tallies.get(g)
    if t is None:
        t = st.tallies[g] = _Tallies()
    return t


def _fold(groups: dict, buckets: dict) -> None:
    """Turn the task's (running, value) tables into one `Acc` per bucket (label, series, running)."""
    for (label, sid), t in groups.items():
        accs: dict = {}
        for (running, waiting, preempt, comp), c in t.counts.items():
            a = accs.get(running)
            if a is None:
                a = accs[running] = buckets.setdefault((label, sid, running), Acc())
            a.n += c
            a.completions += comp * c
            if waiting != b"0":
                a.waiting += int(waiting) * c
            if preempt:  # None or b"": not logged
                a.preemptions += int(preempt) * c
        for (running, v), c in t.gen.items():
            accs[running].gen[v] = c
        for (running, v), c in t.prompt.items():
            accs[running].prompt[v] = c
        for (running, v), c in t.kv.items():
            if v:
                a = accs[running]
                a.kv_sum += float(v) * c
                a.kv_n += c
        for (running, v), c in t.hit.items():
            if v:
                a = accs[running]
                a.hit_sum += float(v) * c
                a.hit_n += c


def _capacity(buf, start: int, end: int, p: Partial) -> None:
    """`Maximum concurrency for ...` lines (start-up only), with the KV size and block lines before them."""
    find = buf.find
    pos = find(CAP_LIT, start, end)
    while pos >= 0:
        ls = buf.rfind(b"\n", start, pos) + 1 or start
        le = find(b"\n", pos, end)
        le = end if le < 0 else le
        m = CAP_RE.search(buf, ls, le)
        if m is not None:
            rec: dict[str, Any] = {
                "max_model_len": int(m.group(1).replace(b",", b"")),
                "max_concurrency": float(m.group(2)),
            }
            ctx = buf[max(start, ls - 4096):le]
            kvs = list(KVSIZE_RE.finditer(ctx))
            if kvs:
                rec["kv_cache_tokens"] = int(kvs[-1].group(2).replace(b",", b""))
                rec["device"] = kvs[-1].group(1).decode(errors="replace")
            blk = list(BLOCKS_RE.finditer(ctx))
            if blk:
                rec["gpu_blocks"] = int(blk[-1].group(2))
            tm = TS_RE.search(buf, ls, pos)
            if tm is not None:
                rec["time"] = tm.group(0).decode()
            p.capacity.append(rec)
        pos = find(CAP_LIT, pos + 16, end)


SPEC_WINDOW = 65536


def _spec_between(buf, lo: int, hi: int, acc: SpecAcc) -> None:
    """SpecDecoding / Speculative metrics lines between a stats line and the next one (vLLM prints them
    right after the stats line; other processes' output may come in between)."""
    hi = min(hi, lo + SPEC_WINDOW)
    q = buf.find(SPEC_LIT, lo, hi)
    while q >= 0:
        head = buf[max(lo, q - 12):q]
        if head.endswith(b"SpecDecoding") or head.endswith(b"Speculative"):
            le = buf.find(b"\n", q, hi)
            _spec_line(buf[q:le if le >= 0 else hi], acc)
        q = buf.find(SPEC_LIT, q + 10, hi)


def _spec_line(line: bytes, acc: SpecAcc) -> None:
    f = _SPEC_FIELDS
    acc.n += 1
    m = f["mal"].search(line)
    if m:
        acc.mal_sum += float(m.group(1))
        acc.mal_n += 1
    m = f["rate"].search(line)
    if m and m.group(1) != b"nan":
        v = float(m.group(1))
        acc.rate_sum += v if m.group(2) else v * 100.0  # V0 logs a fraction, V1 a percentage
        acc.rate_n += 1
    m = f["accepted"].search(line)
    if m:
        acc.accepted += int(m.group(1))
    m = f["drafted"].search(line)
    if m:
        acc.drafted += int(m.group(1))
    m = f["pos"].search(line)
    if m:
        for i, v in enumerate(m.group(1).split(b", ")):
            if i < len(acc.pos_sum):
                acc.pos_sum[i] += float(v)
                acc.pos_n[i] += 1
            else:
                acc.pos_sum.append(float(v))
                acc.pos_n.append(1)


# -- running the tasks -------------------------------------------------------------------------------------


def _worker(args: tuple[Task, Options]) -> Partial:
    return scan_task(*args)


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def scan_files(paths: list[Path], opts: Options, workers: int | None = None, *,
               parallel_min_bytes: int = 64 << 20, min_part_bytes: int = 8 << 20) -> tuple[list[Partial], float]:
    """Scan the inputs (in the given order) and return the per-task partials in order, plus seconds.
    Inputs of `parallel_min_bytes` or more are cut into one range per worker (plain files only)."""
    workers = default_workers() if workers is None else max(1, workers)
    t0 = time.perf_counter()
    streams = any(is_stream(p) for p in paths)
    total = 0 if streams else sum(p.stat().st_size for p in paths)
    parallel = workers > 1 and total >= parallel_min_bytes
    tasks = plan_tasks(paths, workers if parallel else 1, min_part_bytes)
    if parallel and len(tasks) > 1:
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        with mp.get_context(method).Pool(min(workers, len(tasks))) as pool:
            partials = list(pool.imap(_worker, [(t, opts) for t in tasks]))
    else:
        partials = [scan_task(t, opts) for t in tasks]
    return partials, time.perf_counter() - t0


# -- merging and reporting ---------------------------------------------------------------------------------


@dataclass
class Merged(Tally):
    buckets: dict = field(default_factory=dict)
    series: dict = field(default_factory=dict)
    deltas: dict = field(default_factory=dict)
    """series id -> Counter of whole-second gaps between its consecutive stats lines."""
    unattributed: int = 0
    bytes: int = 0
    truncated: list = field(default_factory=list)
    span: float = 0.0


def merge(partials: list[Partial]) -> Merged:
    out = Merged()
    carry = 0
    last_t: dict = {}
    first_t: dict = {}
    year_off = 0.0
    prev_end: float | None = None
    for p in sorted(partials, key=lambda x: x.index):
        out.bytes += p.bytes
        for k, a in p.buckets.items():
            cur = out.buckets.get(k)
            if cur is None:
                out.buckets[k] = a
            else:
                cur.merge(a)
        if p.first_key is not None and not p.head_reset:
            out.buckets[p.first_key].completions += carry
            carry = 0
        elif p.head_reset:
            carry = 0
        carry += p.tail_pending
        # series time: join the task's first window to the previous task's last (same series)
        if p.series:
            firsts = [s.first for s in p.series.values() if s.first is not None]
            if prev_end is not None and firsts and min(firsts) + year_off < prev_end - 180 * 86400:
                year_off += YEAR_S
        for sid, s in p.series.items():
            if s.first is None:
                continue
            f, end = s.first + year_off, s.last + year_off
            d = out.deltas.setdefault(sid, Counter())
            if sid in last_t:
                d[int(round(f - last_t[sid]))] += 1
            else:
                first_t[sid] = f
            last_t[sid] = end
            d.update(s.deltas)
            prev_end = end if prev_end is None else max(prev_end, end)
        out.add(p)
        if p.truncated:
            out.truncated.append(p.truncated)
    out.unattributed = carry
    out.series = {sid: (first_t[sid], last_t[sid]) for sid in last_t}
    if out.series:
        out.span = max(e for _, e in out.series.values()) - min(f for f, _ in out.series.values())
    return out


def detect_interval(deltas: Counter) -> float:
    """vLLM's stats interval (VLLM_LOG_STATS_INTERVAL, 10 s by default): the most common gap between
    consecutive stats lines of one series, counting a whole-second jitter of +-1 s with its neighbour."""
    positive = {d: c for d, c in deltas.items() if d > 0}
    if not positive:
        return 10.0
    best = max(positive, key=lambda d: (positive[d] + positive.get(d - 1, 0) + positive.get(d + 1, 0), positive[d]))
    # weighted centre of the mode and its +-1 neighbours (whole-second timestamps round 10 s to 9..11)
    num = sum(d * positive.get(d, 0) for d in (best - 1, best, best + 1))
    den = sum(positive.get(d, 0) for d in (best - 1, best, best + 1))
    return num / den


def _fmean(c: Counter, skip_zero: bool = False) -> tuple[float | None, int]:
    keys = list(map(float, c.keys()))
    counts = list(c.values())
    if skip_zero:
        nonzero = list(map(bool, keys))
        keys, counts = list(compress(keys, nonzero)), list(compress(counts, nonzero))
    n = sum(counts)
    return (sum(map(mul, keys, counts)) / n if n else None), n


def _floatc(c: Counter) -> Counter:
    """The table keyed by float (the logged strings)."""
    out = Counter(dict(zip(map(float, c.keys()), c.values())))
    if len(out) < len(c):  # two spellings of one number ("1.0", "1.00"): add them up
        out = Counter()
        for k, v in c.items():
            out[float(k)] += v
    return out


def add_counts(dst: Counter, src: Counter) -> None:
    """dst += src for value -> count tables, in C (Counter.update loops in Python over a mapping)."""
    if not dst:
        dst.update(src)
    else:
        _count_elements(dst, chain.from_iterable(map(repeat, src.keys(), src.values())))


def report(m: Merged, opts: Options, seconds: float, files: list[Path]) -> dict[str, Any]:
    """The JSON-able result: `buckets` (by label and Running), `summary` (by label), extras, parse info."""
    series_ids = {k[1] for k in m.buckets}
    chosen = series_ids
    notes: list[str] = [PREFILL_NOTE]
    if opts.engine == "all" and AGG in series_ids and len(series_ids) > 1:
        chosen = {AGG}
        notes.append("the log has both 'N Engines Aggregated' and per-engine lines; the aggregated lines are "
                     "used (pick one engine with --engine N)")
    all_deltas: Counter = Counter()
    for sid in chosen:
        all_deltas.update(m.deltas.get(sid, {}))
    interval = detect_interval(all_deltas)
    # idle: stretches with no INFO stats line (vLLM logs idle windows at DEBUG). Wall time, so the
    # series with the most idle time speaks for the server (data-parallel engines idle together).
    idle_s = 0.0
    idle_windows = 0
    for sid in chosen:
        s_idle = 0.0
        s_win = 0
        for d, c in m.deltas.get(sid, {}).items():
            if d > 1.5 * interval:
                s_idle += (d - interval) * c
                s_win += int(round(d / interval) - 1) * c
        if s_idle > idle_s:
            idle_s, idle_windows = s_idle, s_win
    scale = 60.0 / interval

    merged: dict[tuple, Acc] = {}
    for (label, sid, running), a in m.buckets.items():
        if sid not in chosen:
            continue
        key = (label, int(running))
        if key in merged:
            merged[key].merge(a)
        else:
            b = Acc()
            b.merge(a)
            merged[key] = b

    watts = opts.windows.watts if opts.windows else {}
    label_order = {lab: i for i, lab in enumerate(opts.windows.labels)} if opts.windows else {}
    fgen = {k: _floatc(a.gen) for k, a in merged.items()}
    fprompt = {k: _floatc(a.prompt) for k, a in merged.items()}
    rows = []
    for (label, running), a in sorted(merged.items(), key=lambda kv: (label_order.get(kv[0][0], 0), kv[0][1])):
        g = counter_stats(fgen[label, running])
        sus, _ = _fmean(a.prompt)
        act, act_n = _fmean(a.prompt, skip_zero=True)
        row: dict[str, Any] = {}
        if opts.windows:
            row["label"] = label
        row.update({
            "running": running,
            "samples": a.n,
            "gen_tps_mean": rnd(g["mean"]),
            "gen_tps_median": rnd(g["median"]),
            "gen_tps_p95": rnd(g["p95"]),
            "gen_tps_peak": rnd(g["max"]),
            "per_request_tps": rnd(g["mean"] / running) if running and g["mean"] is not None else None,
            "prefill_tps_sustained": rnd(sus),
            "prefill_tps_active": rnd(act),
            "prefill_active_samples": act_n,
            "completions_per_min": rnd(a.completions / a.n * scale) if a.n else None,
            "completions": a.completions,
            "waiting_mean": rnd(a.waiting / a.n) if a.n else None,
            "kv_cache_usage_mean": rnd(a.kv_sum / a.kv_n) if a.kv_n else None,
            "prefix_cache_hit_rate_mean": rnd(a.hit_sum / a.hit_n) if a.hit_n else None,
            "preemptions": a.preemptions,
        })
        w = watts.get(label)
        if w:
            row["watts"] = w
            row["gen_tps_per_kw"] = rnd(g["mean"] / (w / 1000.0)) if g["mean"] is not None else None
            row["prefill_tps_per_kw"] = rnd(act / (w / 1000.0)) if act is not None else None
        rows.append(row)

    summary = []
    labels = sorted({lab for lab, _ in merged}, key=lambda lab: (label_order.get(lab, 0), str(lab)))
    for label in labels:
        gen: Counter = Counter()
        prompt: Counter = Counter()
        n = comp = 0
        lo, hi = opts.summary_running
        for (lab, running), a in merged.items():
            if lab != label or running < lo or (hi is not None and running > hi):
                continue
            add_counts(gen, fgen[lab, running])
            add_counts(prompt, fprompt[lab, running])
            n += a.n
            comp += a.completions
        if n == 0:
            continue
        g = counter_stats(gen)
        pa = counter_stats(prompt, skip_zero=True)
        sus, _ = _fmean(prompt)
        row = {"label": label} if opts.windows else {}
        row.update({
            "running_range": [lo, hi],
            "samples": n,
            "gen_tps_mean": rnd(g["mean"]), "gen_tps_median": rnd(g["median"]), "gen_tps_p95": rnd(g["p95"]),
            "prefill_tps_mean": rnd(pa["mean"]), "prefill_tps_median": rnd(pa["median"]),
            "prefill_tps_sustained": rnd(sus),
            "completions_per_min": rnd(comp / n * scale),
        })
        w = watts.get(label)
        if w:
            row["watts"] = w
            # n > 0 here, and every stats line counted in n adds one gen sample, so the mean exists
            assert g["mean"] is not None
            row["gen_tps_per_kw"] = rnd(g["mean"] / (w / 1000.0))
            row["prefill_tps_per_kw"] = rnd(pa["mean"] / (w / 1000.0)) if pa["mean"] is not None else None
        summary.append(row)

    spec = None
    s = m.spec
    if s.n:
        spec = {
            "lines": s.n,
            "mean_acceptance_length": rnd(s.mal_sum / s.mal_n, 3) if s.mal_n else None,
            "draft_acceptance_rate_pct": rnd(100.0 * s.accepted / s.drafted, 2) if s.drafted
            else (rnd(s.rate_sum / s.rate_n, 2) if s.rate_n else None),
            "accepted_tokens": s.accepted,
            "drafted_tokens": s.drafted,
            "per_position_acceptance": [rnd(a / c, 3) for a, c in zip(s.pos_sum, s.pos_n)] or None,
        }

    capacity = []
    seen = set()
    for rec in m.capacity:
        cap_key = (rec.get("kv_cache_tokens"), rec["max_model_len"], rec["max_concurrency"], rec.get("gpu_blocks"))
        if cap_key in seen:
            continue
        seen.add(cap_key)
        rec = dict(rec)
        if "kv_cache_tokens" not in rec:
            rec["kv_cache_tokens_est"] = int(round(rec["max_concurrency"] * rec["max_model_len"]))
        capacity.append(rec)

    def sname(sid):
        return "aggregated" if sid == AGG else f"engine {sid:03d}"

    parse = {
        "files": [str(f) for f in files],
        "bytes": m.bytes,
        "seconds": round(seconds, 3),
        "mb_per_s": round(m.bytes / seconds / 1e6, 1) if seconds > 0 else None,
        "stats_lines": m.stats_lines,
        "corrupt_lines": m.corrupt_lines,
        "skipped_other_engines": m.skipped_engine,
        "unlabelled_windows": m.unlabelled if opts.windows else None,
        "windows_without_timestamp": m.no_timestamp,
        "series": [sname(s) for s in sorted(series_ids)],
        "series_used": [sname(s) for s in sorted(chosen)],
        "interval_s": round(interval, 2),
        "span_s": round(m.span, 1),
        "idle_s": round(idle_s, 1),
        "idle_windows": idle_windows,
        "completions": m.completions,
        "completions_unattributed": m.unattributed,
        "http_errors": dict(sorted(m.http_status.items())),
        "truncated_inputs": m.truncated,
    }
    return {"source": "vllm", "buckets": rows, "summary": summary, "spec_decode": spec, "capacity": capacity,
            "parse": parse, "notes": notes}


def analyze(paths: list[Path], opts: Options, workers: int | None = None, **kw: Any) -> dict[str, Any]:
    partials, seconds = scan_files(paths, opts, workers, **kw)
    return report(merge(partials), opts, seconds, paths)
