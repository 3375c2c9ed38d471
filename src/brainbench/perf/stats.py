"""Small, dependency-free statistics with the same conventions as numpy (and so vLLM and GuideLLM).

Percentiles use linear interpolation between closest ranks (numpy's default, `method="linear"`);
CV is the sample standard deviation (n − 1) over the mean.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def clean(values: Iterable[float | None]) -> list[float]:
    """The finite numbers among `values` (None, NaN and inf dropped)."""
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100), linear interpolation; None for an empty sample."""
    xs = sorted(clean(values))
    if not xs:
        return None
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def mean(values: Sequence[float]) -> float | None:
    xs = clean(values)
    return sum(xs) / len(xs) if xs else None


def stdev(values: Sequence[float]) -> float | None:
    xs = clean(values)
    if len(xs) < 2:
        return None
    m = sum(xs) / len(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def cv(values: Sequence[float]) -> float | None:
    """Coefficient of variation: sample stdev ÷ mean (None with fewer than 2 values or a zero mean)."""
    m, s = mean(values), stdev(values)
    if m is None or s is None or m == 0:
        return None
    return s / abs(m)


def summarize(values: Sequence[float | None], scale: float = 1.0) -> dict[str, float | int | None]:
    """count, mean, median, p90, p99, min, max, cv of the finite values, each multiplied by `scale`."""
    xs = [x * scale for x in clean(values)]

    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 4)

    return {
        "count": len(xs),
        "mean": r(mean(xs)),
        "median": r(percentile(xs, 50)),
        "p90": r(percentile(xs, 90)),
        "p99": r(percentile(xs, 99)),
        "min": r(min(xs)) if xs else None,
        "max": r(max(xs)) if xs else None,
        "cv": r(cv(xs)),
    }


def rel_error(measured: float | None, truth: float | None) -> float | None:
    """|measured − truth| ÷ truth (None when either is missing or truth is 0)."""
    if measured is None or truth is None or truth == 0:
        return None
    return abs(measured - truth) / abs(truth)


def rel_gap(client: float | None, server: float | None) -> float | None:
    """Signed (client − server) ÷ server."""
    if client is None or server is None or server == 0:
        return None
    return (client - server) / server
