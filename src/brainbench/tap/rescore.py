"""Re-score a recorded tap run from its store, no traffic needed: `brainbench tap rescore RUN_DIR [--rules F]`
(and `brainbench score RUN_DIR`, with the rules the run recorded).

Each conversation is judged again as the tap judged it live, from what it stored: every turn's calls against
that turn's request tools and the rules, the agent's tool answers and nudges read again from the stored message
list (each request extends the one before, so the messages between two turns are what the agent sent back),
then the conversation's verdict. A changed rules file (a new close-out tool, a regex, an allow-list) or a
changed classifier is thus re-applied to traffic already seen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.errors import BrainbenchError
from ..core.records import AttemptRecord
from ..core.verdict import Verdict
from ..store.db import RunStore
from . import classify
from .rules import Rule, RuleFile
from .storage import PACK


def rejudge(rec: AttemptRecord, rules: list[Rule]) -> Verdict:
    """The verdict on one stored conversation under `rules` (its turns' call checks and answers rebuilt)."""
    messages = rec.dispatches[0].messages if rec.dispatches else []
    opening = classify.opening_text(messages[: rec.turns[0].messages_before] if rec.turns else messages)
    rec.final_state.pop("answered", None)
    tools: list[Any] = []
    for i, turn in enumerate(rec.turns):
        asked = turn.result.request.get("tools")
        tools = asked if isinstance(asked, list) else tools
        turn.tool_results = classify.read_calls(turn.result, tools, classify.rules_for(rules, tools, opening))
        turn.nudge = None
        upto = rec.turns[i + 1].messages_before if i + 1 < len(rec.turns) else len(messages)
        answered = classify.absorb_followup(turn, messages[turn.messages_before:upto])
        if answered:
            rec.final_state.setdefault("answered", []).extend(answered)
    held = classify.rules_for(rules, tools, opening)
    verdict = classify.judge(rec, held, list(classify.tool_specs(tools)), rec.final_state.get("ended"))
    rec.final_state["rules"] = verdict.details["rules"]
    return verdict


def recorded_rules(store: RunStore) -> list[Rule]:
    """The rules the run was recorded with (the latest tap start on it)."""
    tap = (store.get_meta("run") or {}).get("tap") or {}
    defs = tap.get("rules", [])
    if any(not isinstance(d, dict) for d in defs):
        raise BrainbenchError(f"{store.run_dir}: this tap run recorded its rules' names only "
                              f"({', '.join(map(str, defs))}); pass them again with --rules")
    return RuleFile.model_validate({"rules": defs}).rules


def rescore(store: RunStore, rules: list[Rule] | None = None, keys: set[str] | None = None) -> int:
    """Re-judge every recorded conversation (all, or only `keys`) under `rules` (None: the recorded ones),
    rewriting each with its new verdict; returns how many. New rules become the run's recorded rules."""
    if rules is None:
        rules = recorded_rules(store)
    else:
        run = store.get_meta("run") or {}
        run.setdefault("tap", {})["rules"] = dump_rules(rules)
        store.set_meta("run", run)
    n = 0
    for rec in store.attempts(status="completed"):
        if rec.pack != PACK or not rec.turns or (keys is not None and rec.key not in keys):
            continue
        store.put_attempt(rec, rejudge(rec, rules), log_events=False)
        n += 1
    return n


def dump_rules(rules: list[Rule]) -> list[dict[str, Any]]:
    """Rules as the run records them (whole definitions, so a re-score needs no file)."""
    return [r.model_dump(mode="json") for r in rules]


def rescore_dir(run_dir: Path, rule_files: list[str]) -> int:
    """`brainbench tap rescore`: the run directory re-judged, under these files' rules or the recorded ones."""
    from .rules import load_all

    rules = load_all(list(rule_files)) if rule_files else None
    with RunStore(run_dir, lock=True) as store:
        if not any(r.pack == PACK for r in store.attempts()):
            raise BrainbenchError(f"{run_dir}: no conversation recorded by brainbench tap")
        return rescore(store, rules)
