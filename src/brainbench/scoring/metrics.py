"""Aggregate verdicts into rates, with the noise shown: every rate carries a 95% Wilson interval."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any, Iterable


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a binomial rate (sane at 0/n and n/n, unlike the normal interval)."""
    if n == 0:
        return (0.0, 0.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def rate(successes: int, n: int) -> dict[str, Any]:
    lo, hi = wilson(successes, n)
    return {"k": successes, "n": n, "rate": successes / n if n else None, "ci95": [round(lo, 4), round(hi, 4)]}


def pass_hat_k(per_scenario: dict[str, list[bool]], k: int) -> float | None:
    """tau-bench pass^k: mean over scenarios of C(c,k)/C(n,k), c passes in n trials; scenarios with n < k skipped."""
    vals = [math.comb(sum(v), k) / math.comb(len(v), k) for v in per_scenario.values() if len(v) >= k]
    return sum(vals) / len(vals) if vals else None


def summarise(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Summary of scored attempts. Each row: scenario, passed, clean, failures, tool_calls, tool_errors.

    Attempts lost to infrastructure are not in `rows` (the caller leaves them out), so they never count.
    """
    rows = list(rows)
    n = len(rows)
    passed = sum(r["passed"] for r in rows)
    clean = sum(r["clean"] for r in rows)
    calls = sum(r["tool_calls"] for r in rows)
    errors = sum(r["tool_errors"] for r in rows)
    by_class = Counter(f for r in rows for f in r["failures"])
    per_scenario: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        per_scenario[f"{r.get('pack', '')}/{r['scenario']}"].append(r["passed"])
    k_max = min((len(v) for v in per_scenario.values()), default=0)
    return {
        "attempts": n,
        "scenarios": len(per_scenario),
        "pass": rate(passed, n),
        "clean": rate(clean, n),
        "passed_after_retry": rate(passed - clean, n),
        "pass_hat_k": {str(k): pass_hat_k(per_scenario, k) for k in range(1, k_max + 1)},
        "tool_calls": calls,
        "tool_errors": errors,
        "error_rate_per_call": errors / calls if calls else None,
        "failures_by_class": dict(by_class.most_common()),
        "errors_per_100_calls": {c: round(100 * v / calls, 2) for c, v in by_class.items()} if calls else {},
    }
