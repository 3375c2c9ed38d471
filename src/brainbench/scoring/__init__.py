"""Scoring: deterministic verdicts over stored attempts, and the metrics built from them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.taxonomy import TAXONOMY, layer
from ..store.db import RunStore
from .metrics import summarise
from .score import SCORER, Verdict, score_attempt

if TYPE_CHECKING:  # packs imports the check types from scoring, so scoring must not import packs at load time
    from ..packs import Scenario


def stored_scenarios(store: RunStore) -> dict[str, Scenario]:
    """Scenarios exactly as they were when the run started, by content hash."""
    from ..packs import stored_scenario

    return {h: stored_scenario(d) for h, d in (store.get_meta("scenarios") or {}).items()}


def rescore(store: RunStore, keys: set[str] | None = None) -> int:
    """Re-score completed attempts (all, or only `keys`) from their stored transcripts; returns how many.
    Conversations recorded by `brainbench tap` are judged again under the rules the run recorded."""
    scenarios = stored_scenarios(store)
    n = 0
    tapped = False
    for rec in store.attempts(status="completed"):
        if keys is not None and rec.key not in keys:
            continue
        tapped = tapped or rec.pack == "tap"
        sc = scenarios.get(rec.scenario_hash)
        if sc is None:
            continue
        v = score_attempt(sc, rec)
        store.put_verdict(rec.key, SCORER, v.passed, v.clean, v.failures, v.details)
        n += 1
    if tapped:
        from ..tap.rescore import rescore as rescore_tap

        n += rescore_tap(store, keys=keys)
    return n


_DETAIL_FIELDS: dict[str, Any] = {
    "strict_passed": False, "in_text_calls": 0, "obligation": False, "first_dispatch_open": False,
    "denied": False, "recovered": False, "error_line_failures": 0, "silent_failures": 0,
}
"""Verdict details copied into each export row (defaults for verdicts stored by an older scorer)."""


def attempt_rows(store: RunStore) -> list[dict[str, Any]]:
    """One flat row per stored attempt, joined with its verdict (the export contract)."""
    verdicts = store.verdicts(SCORER)
    current = store.get_meta("current_versions") or {}
    rows = []
    for rec in store.attempts():
        v = verdicts.get(rec.key)
        version = current.get(f"{rec.pack}/{rec.scenario_id}", rec.scenario_hash)
        rows.append({
            "key": rec.key, "scenario": rec.scenario_id, "pack": rec.pack, "trial": rec.trial, "model": rec.model,
            "scenario_hash": rec.scenario_hash, "current": version == rec.scenario_hash,
            "status": rec.status, "scored": v is not None,
            "passed": bool(v and v["passed"]), "clean": bool(v and v["clean"]),
            "failures": v["failures"] if v else [],
            "tool_calls": v["details"].get("tool_calls", 0) if v else 0,
            "tool_errors": v["details"].get("tool_errors", 0) if v else 0,
            "infra_events": len(rec.infra_events),
            **{k: (v["details"].get(k, default) if v else default) for k, default in _DETAIL_FIELDS.items()},
            "turns": len(rec.turns), "dispatches": len(rec.dispatches), "wall_s": round(rec.wall_s, 3),
            "completion_tokens": sum(t.result.usage.completion_tokens or 0 for t in rec.turns),
            "error": rec.error, "replica": rec.replica,
        })
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Metrics per model, per pack and overall; unscored (infra_error) attempts are left out, and so are attempts
    of an earlier version of a scenario that was edited between runs (counted in `superseded`): a rate is over
    one version of each scenario, the latest run's."""
    scored = [r for r in rows if r["scored"] and r.get("current", True)]
    out: dict[str, Any] = {}
    for model in sorted({r["model"] for r in scored}):
        mine = [r for r in scored if r["model"] == model]
        out[model] = {
            "overall": summarise(mine),
            "packs": {p: summarise(r for r in mine if r["pack"] == p) for p in sorted({r["pack"] for r in mine})},
            "infra_errors": sum(1 for r in rows if r["model"] == model and r["status"] == "infra_error"),
            "superseded": sum(1 for r in rows if r["model"] == model and not r.get("current", True)),
        }
    return out


__all__ = ["SCORER", "TAXONOMY", "Verdict", "attempt_rows", "layer", "rescore", "score_attempt", "stored_scenarios", "summary"]
