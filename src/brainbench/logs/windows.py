"""`--windows FILE`: time ranges that tag stats windows with a label (a power limit, a config name).

CSV columns: `start,end,label[,watts]`; a header row is optional. Times are `[YYYY-]MM-DD HH:MM[:SS]`
(vLLM's log timestamps carry no year, so any year given is ignored). `watts` is the power the label
ran at (all GPUs together) and turns on tokens-per-second-per-kW columns.
"""

from __future__ import annotations

import bisect
import csv
from dataclasses import dataclass
from pathlib import Path

from .common import YEAR_S, LogInputError, parse_wallclock


@dataclass(frozen=True)
class Window:
    start: float
    end: float
    label: str
    watts: float | None = None

    def contains(self, t: float) -> bool:
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end  # wraps New Year


class WindowSet:
    """Label lookup by year-less timestamp, O(log n): the windows are flattened once into disjoint
    intervals. The first window in file order wins where windows overlap."""

    def __init__(self, windows: list[Window]):
        self.windows = windows
        self.watts = {w.label: w.watts for w in windows if w.watts is not None}
        self.labels = list(dict.fromkeys(w.label for w in windows))
        points = sorted({0.0, float(YEAR_S)} | {w.start % YEAR_S for w in windows} | {w.end % YEAR_S for w in windows})
        self._bounds: list[float] = []
        self._owner: list[str | None] = []
        for lo in points[:-1]:
            owner = next((w.label for w in windows if w.contains(lo)), None)
            if self._owner and self._owner[-1] == owner:
                continue
            self._bounds.append(lo)
            self._owner.append(owner)

    def label_at(self, t: float | None) -> str | None:
        if t is None:
            return None
        i = bisect.bisect_right(self._bounds, t % YEAR_S) - 1
        return self._owner[i] if i >= 0 else None


def load_windows(path: Path) -> WindowSet:
    if not path.exists():
        raise LogInputError(f"{path}: no such windows file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise LogInputError(f"{path}: cannot read windows file ({e})") from None
    windows: list[Window] = []
    for lineno, row in enumerate(csv.reader(text.splitlines()), 1):
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in row]
        if len(cells) < 3:
            raise LogInputError(f"{path}:{lineno}: expected start,end,label[,watts], got {len(cells)} column(s)")
        start, end = parse_wallclock(cells[0]), parse_wallclock(cells[1])
        if start is None or end is None:
            if not windows and lineno == 1:  # header row
                continue
            raise LogInputError(f"{path}:{lineno}: cannot read time {cells[0]!r} or {cells[1]!r} "
                                "(use MM-DD HH:MM[:SS] or YYYY-MM-DD HH:MM[:SS])")
        watts = None
        if len(cells) > 3 and cells[3]:
            try:
                watts = float(cells[3].rstrip("Ww"))
            except ValueError:
                raise LogInputError(f"{path}:{lineno}: watts {cells[3]!r} is not a number") from None
            if watts <= 0:
                raise LogInputError(f"{path}:{lineno}: watts must be positive")
        if not cells[2]:
            raise LogInputError(f"{path}:{lineno}: empty label")
        windows.append(Window(start, end, cells[2], watts))
    if not windows:
        raise LogInputError(f"{path}: no windows in the file")
    return WindowSet(windows)
