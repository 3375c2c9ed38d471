"""Aggregate verdicts into rates, with the noise shown: every rate carries a 95% interval.

Rates of attempts use the Wilson score interval. pass^k is a mean over scenarios, so its interval is a
percentile bootstrap over scenarios (seeded, so the same rows always give the same interval). Attempts
lost to infrastructure are never in `rows` (the caller leaves them out), so they count nowhere.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from ..core.taxonomy import layer

BOOTSTRAP_RESAMPLES = 1000


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


def _per_scenario_hat(per_scenario: dict[str, list[bool]], k: int) -> list[float]:
    return [math.comb(sum(v), k) / math.comb(len(v), k) for v in per_scenario.values() if len(v) >= k]


def pass_hat_k(per_scenario: dict[str, list[bool]], k: int) -> float | None:
    """tau-bench pass^k: mean over scenarios of C(c,k)/C(n,k), c passes in n trials; scenarios with n < k skipped."""
    vals = _per_scenario_hat(per_scenario, k)
    return sum(vals) / len(vals) if vals else None


def bootstrap_mean_ci(vals: list[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> list[float] | None:
    """95% percentile-bootstrap interval of a mean (resampling the items, e.g. scenarios)."""
    if not vals:
        return None
    rng = random.Random(seed)
    n = len(vals)
    means = sorted(sum(rng.choice(vals) for _ in range(n)) / n for _ in range(resamples))
    return [round(means[int(0.025 * resamples)], 4), round(means[int(0.975 * resamples) - 1], 4)]


def iceberg(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What a log shows vs what happened: failures with an error line vs silent ones, and failed attempts
    a grep over error lines would never find."""
    counts = Counter(layer(f) for r in rows for f in r["failures"])
    failed = [r for r in rows if not r["passed"]]
    hidden = [r for r in failed if not any(layer(f) == "error_line" for f in r["failures"])]
    vis, sil = counts.get("error_line", 0), counts.get("silent", 0)
    return {
        "error_line": vis,
        "silent": sil,
        "silent_per_error_line": round(sil / vis, 3) if vis else None,
        "failed_attempts": len(failed),
        "failed_without_error_line": len(hidden),
        "hidden_share": rate(len(hidden), len(failed)),
    }


def summarise(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Summary of scored attempts (README, "Metrics", has every formula).

    Each row: pack, scenario, passed, clean, failures, tool_calls, tool_errors and, where scoring recorded
    them, strict_passed, in_text_calls, obligation, first_dispatch_open, denied, recovered.
    """
    rows = list(rows)
    n = len(rows)
    passed = sum(r["passed"] for r in rows)
    clean = sum(r["clean"] for r in rows)
    calls = sum(r["tool_calls"] for r in rows)
    errors = sum(r["tool_errors"] for r in rows)
    in_text = sum(r.get("in_text_calls", 0) for r in rows)
    by_class = Counter(f for r in rows for f in r["failures"])
    per_scenario: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        per_scenario[f"{r.get('pack', '')}/{r['scenario']}"].append(r["passed"])
    k_max = min((len(v) for v in per_scenario.values()), default=0)
    multi = [v for v in per_scenario.values() if len(v) >= 2]
    obliged = [r for r in rows if r.get("obligation")]
    denied = [r for r in rows if r.get("denied")]
    return {
        "attempts": n,
        "scenarios": len(per_scenario),
        "pass": rate(passed, n),
        "clean": rate(clean, n),
        "passed_after_retry": rate(passed - clean, n),
        "strict_pass": rate(sum(bool(r.get("strict_passed", r["passed"])) for r in rows), n),
        "pass_hat_k": {str(k): pass_hat_k(per_scenario, k) for k in range(1, k_max + 1)},
        "pass_hat_k_ci95": {str(k): bootstrap_mean_ci(_per_scenario_hat(per_scenario, k)) for k in range(1, k_max + 1)},
        "flaky_scenarios": rate(sum(1 for v in multi if 0 < sum(v) < len(v)), len(multi)),
        "tool_calls": calls,
        "tool_errors": errors,
        "error_rate_per_call": errors / calls if calls else None,
        "error_rate": rate(errors, calls),
        "in_text_calls": in_text,
        "in_text_rate": rate(in_text, calls),
        "failures_by_class": dict(by_class.most_common()),
        "errors_per_100_calls": {c: round(100 * v / calls, 2) for c, v in by_class.items()} if calls else {},
        "omission": rate(sum(1 for r in obliged if "omitted_closeout" in r["failures"]), len(obliged)),
        "first_dispatch_violation": rate(sum(1 for r in obliged if r.get("first_dispatch_open")), len(obliged)),
        "recovery": rate(sum(1 for r in denied if r.get("recovered")), len(denied)),
        "iceberg": iceberg(rows),
    }
