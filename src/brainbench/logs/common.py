"""Shared plumbing for the log miners: input files, timestamps, statistics.

Everything here streams: files are read in large binary regions (mmap for plain files, fixed-size
decompressed blocks for gzip), never as a whole, and statistics are kept as value -> count tables so
memory is bounded by the number of distinct logged values, not by the number of lines.
"""

from __future__ import annotations

import bisect
import math
import mmap
import os
import re
import stat
import sys
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import accumulate, compress
from operator import itemgetter, mul
from pathlib import Path

from ..core.errors import BrainbenchError

REGION_BYTES = 32 << 20
"""Bytes handed to a parser at a time (plain files: a window of the mmap; gzip: decompressed text)."""

GZIP_MAGIC = b"\x1f\x8b"


class LogInputError(BrainbenchError):
    """An input cannot be read at all (missing, a directory, unreadable). Shown as one line."""


# -- input files -------------------------------------------------------------------------------------

_ROTATED = re.compile(r"^(?P<base>.+?)(?:\.(?P<n>\d{1,3})|[.-](?P<date>\d{8}(?:\d{2})?))?(?P<gz>\.gz)?$")


def order_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """The order files are read in: as given, except rotated siblings, which are put oldest first and the
    live file last: `x.log.2.gz x.log.1 x.log` (logrotate numbers: higher is older) and
    `x.log-20250510 x.log-20250511 x.log` (dateext: higher is newer)."""
    items = [Path(p) for p in paths]
    groups: dict[str, list[tuple[tuple, int, Path]]] = {}
    first_seen: dict[str, int] = {}
    for i, p in enumerate(items):
        m = _ROTATED.match(p.name)
        base = str(p.parent / m.group("base")) if m else str(p)
        if m and m.group("n"):
            key: tuple = (0, -int(m.group("n")))
        elif m and m.group("date"):
            key = (0, int(m.group("date")))
        else:
            key = (1, 0)  # the live file
        groups.setdefault(base, []).append((key, i, p))
        first_seen.setdefault(base, i)
    out: list[Path] = []
    for base in sorted(groups, key=first_seen.__getitem__):
        out.extend(p for _, _, p in sorted(groups[base], key=lambda t: (t[0], t[1])))
    return out


def is_stream(path: Path) -> bool:
    """`-` (stdin) or a pipe / process substitution: read once, front to back, never split."""
    if str(path) == "-":
        return True
    try:
        return not stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def check_inputs(paths: Iterable[Path]) -> list[Path]:
    """Fail early, with one line, on inputs that cannot be opened."""
    checked = []
    for p in paths:
        if str(p) == "-":
            checked.append(p)
            continue
        if not p.exists():
            raise LogInputError(f"{p}: no such file")
        if p.is_dir():
            raise LogInputError(f"{p}: is a directory (give the log files themselves)")
        if not os.access(p, os.R_OK):
            raise LogInputError(f"{p}: not readable")
        checked.append(p)
    if not checked:
        raise LogInputError("no input files given")
    return checked


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


@dataclass
class Region:
    """A piece of one input: `buf[start:end]` holds whole lines (the last line may lack its newline)."""

    buf: bytes | mmap.mmap
    start: int
    end: int


@dataclass
class Task:
    """A unit of parallel work: a byte range of a plain file, or a whole gzip file."""

    path: str
    start: int
    end: int
    gz: bool
    index: int = 0
    stream: bool = False


def plan_tasks(paths: list[Path], parts: int, min_part_bytes: int = 8 << 20) -> list[Task]:
    """Split the inputs into ordered tasks. Plain files are cut at newlines into `parts` ranges
    (so both cores can work on one big file); gzip files cannot be split and stay whole."""
    tasks: list[Task] = []
    for p in paths:
        if is_stream(p):
            tasks.append(Task(str(p), 0, 0, False, stream=True))
            continue
        size = p.stat().st_size
        if size == 0:
            continue
        if is_gzip(p):
            tasks.append(Task(str(p), 0, size, True))
            continue
        n = max(1, min(parts, size // max(1, min_part_bytes) or 1))
        cuts = [0]
        with open(p, "rb") as f:
            for k in range(1, n):
                f.seek(size * k // n)
                chunk = f.read(1 << 20)
                nl = chunk.find(b"\n")
                cut = (size * k // n) + nl + 1 if nl >= 0 else size
                if cut > cuts[-1] and cut < size:
                    cuts.append(cut)
        cuts.append(size)
        tasks.extend(Task(str(p), a, b, False) for a, b in zip(cuts, cuts[1:]) if b > a)
    for i, t in enumerate(tasks):
        t.index = i
    return tasks


def iter_regions(task: Task, region_bytes: int = REGION_BYTES) -> Iterator[Region]:
    """Yield the task's text as regions of whole lines, in order, in bounded memory."""
    if task.stream:
        yield from _stream_input(task.path, region_bytes)
    elif task.gz:
        yield from _gzip_regions(task.path, region_bytes)
    else:
        yield from _mmap_regions(task, region_bytes)


def _stream_input(path: str, region_bytes: int) -> Iterator[Region]:
    """stdin or a pipe: gzip or plain, told apart by the first two bytes."""
    f = sys.stdin.buffer if path == "-" else open(path, "rb")
    try:
        first = f.read(1 << 20)
        if first[:2] == GZIP_MAGIC:
            def raw() -> Iterator[bytes]:
                yield first
                while True:
                    b = f.read(1 << 20)
                    if not b:
                        return
                    yield b
            yield from _regions_from_chunks(_gunzip(raw(), path), region_bytes)
        else:
            yield from _stream_regions(_Prefixed(first, f), None, region_bytes)
    finally:
        if f is not sys.stdin.buffer:
            f.close()


class _Prefixed:
    """A file object that first returns some already-read bytes."""

    def __init__(self, head: bytes, f):
        self.head = head
        self.f = f

    def read(self, n: int) -> bytes:
        if self.head:
            out, self.head = self.head[:n], self.head[n:]
            return out
        return self.f.read(n)


def _mmap_regions(task: Task, region_bytes: int) -> Iterator[Region]:
    with open(task.path, "rb") as f:
        try:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError):  # empty or unmappable (e.g. a pipe): fall back to reading
            f.seek(task.start)
            yield from _stream_regions(f, task.end - task.start, region_bytes)
            return
        try:
            if hasattr(mm, "madvise"):
                mm.madvise(mmap.MADV_SEQUENTIAL)
            pos = task.start
            page = mmap.ALLOCATIONGRANULARITY
            while pos < task.end:
                end = min(task.end, pos + region_bytes)
                if end < task.end:
                    nl = mm.find(b"\n", end)
                    end = task.end if nl < 0 or nl >= task.end else nl + 1
                yield Region(mm, pos, end)
                if hasattr(mm, "madvise"):  # drop what we have read so the resident set stays small
                    lo = pos - pos % page
                    hi = end - end % page
                    if hi > lo:
                        try:
                            mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
                        except OSError:
                            pass
                pos = end
        finally:
            mm.close()


def _stream_regions(f, limit: int | None, region_bytes: int) -> Iterator[Region]:
    rest = b""
    left = limit
    while True:
        want = region_bytes if left is None else min(region_bytes, left)
        block = f.read(want) if want > 0 else b""
        if left is not None:
            left -= len(block)
        if not block:
            if rest:
                yield Region(rest, 0, len(rest))
            return
        block = rest + block if rest else block
        cut = block.rfind(b"\n") + 1
        if cut == 0:  # one line longer than a region: keep accumulating (bounded by that line)
            rest = block
            continue
        rest = block[cut:]
        yield Region(block, 0, cut)


def _file_chunks(path: str, step: int = 1 << 20) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while True:
            b = f.read(step)
            if not b:
                return
            yield b


def _gunzip(chunks: Iterator[bytes], path: str) -> Iterator[bytes]:
    """Decompressed data of a gzip stream (several members allowed), as it comes. A truncated or damaged
    stream yields everything before the damage, then raises TruncatedInput."""
    d = zlib.decompressobj(wbits=31)
    fed = False  # the current member has started
    for raw in chunks:
        while raw:
            fed = True
            try:
                out = d.decompress(raw)
            except zlib.error as e:
                raise TruncatedInput(f"{path}: damaged compressed data ({e}); the lines before it were read") \
                    from None
            if out:
                yield out
            if d.eof:  # next gzip member, if any
                raw = d.unused_data
                d = zlib.decompressobj(wbits=31)
                fed = False
            else:
                raw = b""
    tail = d.flush()
    if tail:
        yield tail
    if fed and not d.eof:
        raise TruncatedInput(f"{path}: compressed data ends early; the lines before it were read")


def _regions_from_chunks(chunks: Iterator[bytes], region_bytes: int) -> Iterator[Region]:
    parts: list[bytes] = []
    size = 0
    rest = b""
    try:
        for chunk in chunks:
            parts.append(chunk)
            size += len(chunk)
            if size >= region_bytes:
                block = rest + b"".join(parts)
                parts, size = [], 0
                cut = block.rfind(b"\n") + 1
                if cut == 0:
                    rest = block
                    continue
                rest = block[cut:]
                yield Region(block, 0, cut)
    finally:
        block = rest + b"".join(parts)
        if block:
            yield Region(block, 0, len(block))


def _gzip_regions(path: str, region_bytes: int) -> Iterator[Region]:
    """Decompressed regions of whole lines. Damage at the end is never fatal: the lines before it are
    parsed and the caller is told (TruncatedInput) so it can report it."""
    yield from _regions_from_chunks(_gunzip(_file_chunks(path), path), region_bytes)


class TruncatedInput(Exception):
    """A compressed input ended early; what was read before is kept."""


# -- ANSI / timestamps --------------------------------------------------------------------------------

ANSI_RE = re.compile(rb"\x1b\[[0-9;]*[A-Za-z]")
ANSI_RE_S = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def strip_ansi(b: bytes) -> bytes:
    return ANSI_RE.sub(b"", b) if b"\x1b" in b else b


def strip_ansi_s(s: str) -> str:
    return ANSI_RE_S.sub("", s) if "\x1b" in s else s


# Day-of-year offsets using a leap-year calendar: logs carry no year, so Feb 29 must exist. In a
# non-leap year a log that spans Feb 28 -> Mar 1 shows a one-day gap there (harmless: it reads as idle).
_MONTH_START = [0, 0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335]
YEAR_S = 366 * 86400


def md_seconds(month: int, day: int, hh: int, mm: int, ss: float) -> float | None:
    """Seconds since Jan 1 00:00 of an unknown (leap) year; None when the fields are not a date."""
    if not (1 <= month <= 12 and 1 <= day <= 31 and hh < 24 and mm < 60 and ss < 61):
        return None
    return (_MONTH_START[month] + day - 1) * 86400 + hh * 3600 + mm * 60 + ss


_WIN_TIME = re.compile(
    r"^\s*(?:(?P<y>\d{4})[-/])?(?P<mo>\d{1,2})[-/](?P<d>\d{1,2})[ T]+(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}(?:\.\d+)?))?\s*$"
)


def parse_wallclock(text: str) -> float | None:
    """`[YYYY-]MM-DD HH:MM[:SS]` (or with T / slashes) -> year-less seconds, as vLLM timestamps are."""
    m = _WIN_TIME.match(text)
    if not m:
        return None
    return md_seconds(int(m["mo"]), int(m["d"]), int(m["h"]), int(m["mi"]), float(m["s"] or 0))


# -- statistics ---------------------------------------------------------------------------------------


def counter_stats(c: Counter | dict, *, skip_zero: bool = False) -> dict[str, float | int | None]:
    """n, mean, median, p95 (linear interpolation between order statistics, as numpy's default) and max
    of a value -> count table (one C-level pass per step: tables can hold 10^5 distinct values)."""
    keys = list(map(float, c.keys()))
    counts = list(c.values())
    if 0 in counts:
        keys, counts = list(compress(keys, counts)), list(filter(None, counts))
    if skip_zero:
        nonzero = list(map(bool, keys))  # 0.0 and -0.0 left out
        keys, counts = list(compress(keys, nonzero)), list(compress(counts, nonzero))
    if not keys:
        return {"n": 0, "mean": None, "median": None, "p95": None, "max": None}
    items = sorted(zip(keys, counts))
    values = list(map(itemgetter(0), items))
    cum = list(accumulate(map(itemgetter(1), items)))
    n = cum[-1]
    total = sum(map(mul, values, map(itemgetter(1), items)))
    return {
        "n": n,
        "mean": total / n,
        "median": _quantile(values, cum, n, 0.5),
        "p95": _quantile(values, cum, n, 0.95),
        "max": values[-1],
    }


def _quantile(values: list[float], cum: list[int], n: int, q: float) -> float:
    """`values` sorted, `cum[i]`: how many are <= values[i]; the k-th (from 0) is values[bisect_right(cum, k)]."""
    rank = q * (n - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, n - 1)
    a = values[bisect.bisect_right(cum, lo)]
    if hi == lo:
        return a
    b = values[bisect.bisect_right(cum, hi)]
    return a + (b - a) * (rank - lo)


def list_stats(values: Iterable[float]) -> dict[str, float | int | None]:
    c: Counter = Counter()
    for v in values:
        c[float(v)] += 1
    return counter_stats(c)


def rnd(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(x, nd)


# -- Go durations (GIN latency) -----------------------------------------------------------------------

_GO_DUR = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|µs|μs|ns|m|s)")
_GO_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ns": 1e-9}


def parse_go_duration(text: str) -> float | None:
    """`1m2.5s`, `12.3456ms`, `850.2µs` -> seconds."""
    text = text.strip()
    if not text:
        return None
    pos = 0
    total = 0.0
    for m in _GO_DUR.finditer(text):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _GO_UNIT[m.group(2)]
        pos = m.end()
    return total if pos == len(text) and pos > 0 else None


def iter_lines(paths: Iterable[Path], truncated: list[str] | None = None) -> Iterator[bytes]:
    """Every line of every input, in order, streamed (for the small-volume miners: llama, ollama, agent)."""
    for task in plan_tasks(list(paths), 1):
        try:
            for region in iter_regions(task):
                data = region.buf[region.start:region.end]
                if data.endswith(b"\n"):
                    data = data[:-1]
                yield from data.split(b"\n")
        except TruncatedInput as e:
            if truncated is not None:
                truncated.append(str(e))
