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
        "flaky_scenarios": flip_rate(per_scenario),
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


# -- the noise floor: how large a difference this run size can see ------------------------------------

Z_ALPHA = 1.959964
"""Two-sided 95% confidence."""
Z_POWER = 0.841621
"""80% power."""
CONVENTION = "two-proportion test at the observed rate, 95% confidence, 80% power"
"""The convention the noise floor is stated at (printed next to every figure)."""


def _variance(p: float, n: int) -> float:
    """p(1-p) with p kept at least half an attempt off 0 and 1 (a 0/n or n/n rate is not certainty)."""
    q = min(max(p, 0.5 / n), 1 - 0.5 / n)
    return q * (1 - q)


def mdd(p: float | None, n: int) -> float | None:
    """Minimum detectable difference between two runs of `n` attempts each at rate `p`:
    (z_0.975 + z_0.8) * sqrt(2 p(1-p) / n). None without attempts."""
    if p is None or n <= 0:
        return None
    return (Z_ALPHA + Z_POWER) * math.sqrt(2 * _variance(p, n) / n)


def attempts_needed(p1: float, p2: float, n: int) -> float | None:
    """Attempts per run at which the observed difference p2 - p1 equals the MDD (the MDD formula solved
    for n at the pooled rate); None when the rates are equal (no difference to detect)."""
    d = abs(p2 - p1)
    if d == 0:
        return None
    pooled = (p1 + p2) / 2
    return (Z_ALPHA + Z_POWER) ** 2 * 2 * _variance(pooled, max(n, 1)) / (d * d)


def flip_rate(per_scenario: dict[str, list[bool]]) -> dict[str, Any]:
    """Share of scenarios (with two or more trials) whose verdict changed between trials."""
    multi = [v for v in per_scenario.values() if len(v) >= 2]
    return rate(sum(1 for v in multi if 0 < sum(v) < len(v)), len(multi))


def separable(base: dict[str, Any], cur: dict[str, Any], scenarios: int) -> dict[str, Any]:
    """Compare verdict on two rates ({k, n, rate}): "A better" / "B better" (A the baseline) when the observed
    difference reaches the MDD at the pooled rate, else "not separable" with about how many more trials
    per scenario (both runs) would make the observed difference detectable."""
    pa, pb, n = base["rate"], cur["rate"], min(base["n"], cur["n"])
    if pa is None or pb is None or n == 0:
        return {"verdict": "n/a", "mdd": None, "more_trials": None}
    floor = mdd((pa + pb) / 2, n)
    if floor is not None and abs(pb - pa) >= floor:
        return {"verdict": "B better" if pb > pa else "A better", "mdd": floor, "more_trials": 0}
    need = attempts_needed(pa, pb, n)
    trials = n / max(scenarios, 1)
    more = None if need is None else max(1, math.ceil(need / max(scenarios, 1) - trials))
    return {"verdict": "not separable", "mdd": floor, "more_trials": more}


def verdict_text(sep: dict[str, Any]) -> str:
    """The verdict as one phrase: "B better", or "not separable: about 12 more trials per scenario needed"."""
    if sep["verdict"] != "not separable":
        return sep["verdict"]
    if sep["more_trials"] is None:
        return "not separable: no difference observed"
    return f"not separable: about {sep['more_trials']} more trials per scenario needed"


def noise_floor(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What a run of this size can tell apart: attempts, scenarios, trials, the clean rate and its MDD, and
    the flip rate of the pass verdict across trials (None with one trial)."""
    per_scenario: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        per_scenario[f"{r.get('pack', '')}/{r['scenario']}"].append(bool(r["passed"]))
    n = len(rows)
    p = sum(bool(r["clean"]) for r in rows) / n if n else None
    flips = flip_rate(per_scenario)
    return {"attempts": n, "scenarios": len(per_scenario),
            "trials": min((len(v) for v in per_scenario.values()), default=0),
            "clean": p, "mdd": mdd(p, n), "flip": flips if flips["n"] else None}
