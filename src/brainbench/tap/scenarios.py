"""Recorded conversations as draft scenarios: `brainbench tap export-scenarios RUN_DIR -o DIR`.

DIR becomes a pack (`pack.yaml` plus one `scenarios/<id>.yaml` per conversation) for the `schema_tools`
environment: the agent's own tool schemas, the answers its tools gave (served back in the order they came),
and the conversation up to the turn that failed (the whole opening when nothing failed before the end). The
checks are left for the user to write: the draft says what the tap found, not what success means.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..core.errors import BrainbenchError
from ..core.records import AttemptRecord
from ..store.db import RunStore
from .storage import PACK

_HEADER = ("# Draft scenario recorded by `brainbench tap` from a real agent's traffic.\n"
           "# Complete it: add `checks:` (brainbench packs --schema lists the types), then\n"
           "#   brainbench run --pack {pack} ...\n")


def _failing_turn(rec: AttemptRecord, verdict: dict[str, Any] | None) -> int | None:
    """Index of the first turn the tap flagged; the last turn when only the ending failed; None: no failure."""
    for t in rec.turns:
        if any(r.error_kind for r in t.tool_results) or not (t.result.content.strip() or t.result.tool_calls):
            return t.index
    if verdict and verdict["failures"] and rec.turns:
        return rec.turns[-1].index
    return None


def _tool_results(rec: AttemptRecord, upto: int) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for t in rec.turns[:upto]:
        for r in t.tool_results:
            out.setdefault(r.name, []).append(r.output)
    return out


def draft(rec: AttemptRecord, verdict: dict[str, Any] | None) -> dict[str, Any]:
    """One scenario (a plain dict in the pack schema) from one stored conversation."""
    messages = rec.dispatches[0].messages if rec.dispatches else []
    at = _failing_turn(rec, verdict)
    cut = rec.turns[at].messages_before if at is not None else (rec.turns[0].messages_before if rec.turns else 0)
    convo = [m for m in messages[: cut or len(messages)] if isinstance(m, dict)]
    system = convo[0].get("content") if convo and convo[0].get("role") == "system" else None
    if system is not None:
        convo = convo[1:]
    first = rec.turns[0].result.request if rec.turns else {}
    params = {k: first[k] for k in ("temperature", "top_p", "max_tokens", "seed") if k in first}
    found = verdict["failures"] if verdict else []
    scenario: dict[str, Any] = {
        "id": rec.scenario_id + (f"-t{rec.trial}" if rec.trial else ""),
        "description": f"Recorded by brainbench tap (model {rec.model}); the tap found: {', '.join(found) or 'nothing'}.",
        "env": "schema_tools",
        "state": {"tools": first.get("tools") or [], "results": _tool_results(rec, at if at is not None else len(rec.turns))},
        "messages": convo or [{"role": "user", "content": "(the recorded conversation had no messages)"}],
        "checks": [],
        "meta": {"source": "brainbench tap", "attempt": rec.key, "failures": found,
                 "reasons": (verdict or {}).get("details", {}).get("reasons", []),
                 "cut_at_turn": at, "recorded_turns": len(rec.turns),
                 "infra_events": [e.kind for e in rec.infra_events]},
    }
    if system is not None:
        scenario["system"] = system
    if params:
        scenario["params"] = params
    return scenario


def export_scenarios(run_dir: Path, out: Path, failed_only: bool = False) -> list[Path]:
    """Write DIR/pack.yaml and DIR/scenarios/<id>.yaml; returns the scenario files written."""
    from ..scoring import SCORER

    with RunStore(run_dir) as store:
        verdicts = store.verdicts(SCORER)
        recs = [r for r in store.attempts() if r.pack == PACK and r.turns]
    if not recs:
        raise BrainbenchError(f"{run_dir}: no conversation recorded by brainbench tap")
    try:
        (out / "scenarios").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BrainbenchError(f"{out}: cannot create the directory ({e.strerror or e})") from None
    pack = out.name or "tap-drafts"
    (out / "pack.yaml").write_text(yaml.safe_dump({"name": pack, "description": f"Draft scenarios recorded by "
                                                   f"brainbench tap in {run_dir}."}, sort_keys=False))
    paths = []
    for rec in recs:
        v = verdicts.get(rec.key)
        if failed_only and not (v and v["failures"]):
            continue
        sc = draft(rec, v)
        path = out / "scenarios" / f"{sc['id']}.yaml"
        path.write_text(_HEADER.format(pack=pack) + yaml.safe_dump(sc, sort_keys=False, allow_unicode=True))
        paths.append(path)
    return paths
