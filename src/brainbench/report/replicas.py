"""Per replica of a run spread over several endpoints (`brainbench run --endpoint A --endpoint B`): what each
answered, and which one answers differently from the rest (a misconfigured server in the fleet).

Attempts are dealt to replicas by content key, so each gets a random share of the scenarios and trials: a
difference beyond noise is the server's, not the mix's. A replica is flagged when its pass or clean pass rate is
separable from the other replicas' pooled rate (the compare verdict, `scoring.metrics.separable`: the difference
reaches the minimum detectable difference), or when its decode speed's 95% interval does not overlap the
others' (among replicas alive to the end and not flagged for their verdicts) and differs by `SPEED_TOLERANCE`
or more. The most different replica is flagged first and left out of the pool the rest are compared with, so
one broken replica does not make the healthy ones look odd; of two replicas that differ, the worse is flagged.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from ..core.records import AttemptRecord
from ..scoring.metrics import rate, separable, summarise

SPEED_TOLERANCE = 0.10
"""Smallest relative decode-speed difference flagged (with non-overlapping intervals): two healthy replicas on
slightly different hardware differ a little, and thousands of samples make any small difference 'significant'."""


def replica_figures(rows: list[dict[str, Any]], records: list[AttemptRecord],
                    events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One figure per replica (empty for a run without replicas): attempts, rates, decode speed, attempts re-run
    there after another replica died, why it died, its attempt keys, its comparison with the rest, and flags."""
    from .data import decode_samples, mean_ci

    urls = list(dict.fromkeys(r["replica"] for r in rows if r.get("replica")))
    if not urls:
        return []
    recs: dict[str, list[AttemptRecord]] = defaultdict(list)
    for rec in records:
        if rec.replica:
            recs[rec.replica].append(rec)
    dead = {e["detail"].split(": ", 1)[0]: e["detail"].split(": ", 1)[-1] for e in events
            if e.get("kind") == "replica_dead" and isinstance(e.get("detail"), str)}
    figs = []
    for u in urls:
        mine = [r for r in rows if r.get("replica") == u]
        scored = [r for r in mine if r["scored"] and r.get("current", True)]
        s = summarise(scored)
        samples, _ = decode_samples(recs[u])
        figs.append({
            "url": u, "attempts": len(mine), "scored": len(scored),
            "infra_errors": sum(1 for r in mine if r["status"] == "infra_error"),
            "reran_here": sum(1 for rec in recs[u] if any(e.kind == "replica_failover" for e in rec.infra_events)),
            "dead": dead.get(u), "pass": s["pass"], "clean": s["clean"], "in_text_rate": s["in_text_rate"],
            "scenarios": s["scenarios"], "decode": mean_ci(samples), "samples": samples,
            "keys": sorted(r["key"] for r in mine), "verdict_vs_rest": None, "decode_vs_rest": None, "flags": [],
        })
    _flag(figs, _verdict_gap, "verdict_vs_rest")
    # a replica that answers differently is not doing the same work (a template that drops the prompt decodes
    # faster on a shorter context): its speed says nothing about the others', so only the rest are compared
    # a replica that died ran only part of the run, under other load (the fleet's, before its death): only the
    # replicas alive to the end are compared for speed
    _flag([f for f in figs if not f["flags"] and not f["dead"]], _speed_gap, "decode_vs_rest")
    for f in figs:
        del f["samples"]
    return figs


def _pool(figs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The pooled rate `key` (pass or clean) of `figs` ({k, n, rate})."""
    k, n = sum(f[key]["k"] for f in figs), sum(f[key]["n"] for f in figs)
    return rate(k, n)


def _verdict_gap(f: dict[str, Any], rest: list[dict[str, Any]]) -> tuple[float, dict[str, Any], str] | None:
    """(size, comparison, flag) for the pass or clean rate of `f` (the larger difference) against the rest's;
    the flag is empty unless the difference is separable."""
    scen = max([f["scenarios"], *(x["scenarios"] for x in rest)])
    best: tuple[float, dict[str, Any], str] | None = None
    for key in ("pass", "clean"):
        base = _pool(rest, key)
        sep = separable(base, f[key], scen)
        if sep["verdict"] == "n/a":
            continue
        gap = f[key]["rate"] - base["rate"]
        cmp = {**sep, "rate": key, "replica": f[key]["rate"], "rest": base["rate"]}
        why = "" if sep["verdict"] == "not separable" else (
            f"{key} rate {100 * f[key]['rate']:.0f}% against {100 * base['rate']:.0f}% on the other replicas "
            f"({100 * gap:+.0f} points, beyond the {100 * sep['mdd']:.0f}-point MDD)")
        if best is None or (bool(why), abs(gap)) > (bool(best[2]), best[0]):
            best = (abs(gap), cmp, why)
    return best


def _speed_gap(f: dict[str, Any], rest: list[dict[str, Any]]) -> tuple[float, dict[str, Any], str] | None:
    """(size, comparison, flag) when the decode speed of `f` differs from the rest's beyond noise."""
    from .data import judge, mean_ci

    base = mean_ci([x for r in rest for x in r["samples"]])
    mine = f["decode"]
    if not mine or not base or not base["value"] or not mine["value"]:
        return None
    rel = (mine["value"] - base["value"]) / base["value"]
    verdict = judge(mine["value"], mine["ci95"], base["value"], base["ci95"])
    cmp = {"replica": mine["value"], "rest": base["value"], "rel": rel, "verdict": verdict}
    if verdict not in ("better", "worse") or abs(rel) < SPEED_TOLERANCE:
        return 0.0, cmp, ""
    why = (f"decode {mine['value']:.1f} tok/s against {base['value']:.1f} on the other replicas ({100 * rel:+.0f}%, "
           "95% intervals apart)")
    return abs(math.log(mine["value"] / base["value"])), cmp, why  # a ratio's size, the same slower or faster


def _flag(figs: list[dict[str, Any]], gap: Callable[..., tuple[float, dict[str, Any], str] | None],
          field: str) -> None:
    """Flag the most different replica while one differs from the pool of the unflagged rest; each figure keeps
    its comparison with the rest it was last measured against."""
    active = list(figs)
    while len(active) >= 2:
        found = []
        for f in active:
            g = gap(f, [x for x in active if x is not f])
            if g is not None:
                f[field] = g[1]
                if g[2]:
                    found.append((round(g[0], 9), -_worse(f, field), g[2], f))  # a and b: |log a/b| = |log b/a|
        if not found:
            return
        _, _, why, worst = max(found, key=lambda t: (t[0], t[1]))
        worst["flags"].append(why)
        active.remove(worst)


def _worse(f: dict[str, Any], field: str) -> float:
    """How good the replica looks (lower: worse), to flag the worse of two that differ from each other."""
    c = f[field] or {}
    return (c.get("replica") or 0.0) - (c.get("rest") or 0.0)
