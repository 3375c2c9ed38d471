"""A run: every (scenario, trial) of the chosen packs against one brain, stored as each attempt ends.

Resume reads only the keys already stored and runs the rest; keys are content hashes, so a pack that
was edited or reordered between the two runs can never be mixed up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..client import ChatClient, EndpointError
from ..core.errors import BrainbenchError
from ..core.records import AttemptRecord, attempt_key, config_hash
from ..core.run_config import RunConfig
from ..core.verdict import Verdict
from ..packs import Pack, Scenario
from ..scoring import SCORER, rescore, score_attempt
from ..store.db import RunStore
from .attempt import AttemptRunner
from .harness import plan_config


@dataclass
class RunPlan:
    """What to run; `config` holds everything that changes results (never an API key or a port)."""

    packs: list[Pack]
    model: str
    config: dict[str, Any]
    trials: int = 1
    concurrency: int = 1
    retries: int = 1
    harness: str = "minimal"
    todo: list[tuple[Scenario, int]] = field(default_factory=list)

    @classmethod
    def of(cls, options: RunConfig, packs: list[Pack], model: str, config: dict[str, Any]) -> RunPlan:
        """The plan for a run's options (trials, concurrency, retries and the harness come from them, never
        repeated); a harness other than minimal joins the config, so it is part of every attempt key."""
        return cls(packs=packs, model=model, config={**config, **plan_config(options.harness)},
                   trials=options.trials, concurrency=options.concurrency, retries=options.retries,
                   harness=options.harness)

    @property
    def config_hash(self) -> str:
        return config_hash({**self.config, "retries": self.retries})

    def items(self) -> list[tuple[Scenario, int]]:
        return [(s, t) for p in self.packs for s in p.scenarios for t in range(self.trials)]


def new_record(plan: RunPlan, sc: Scenario, trial: int) -> AttemptRecord:
    h = sc.content_hash()
    return AttemptRecord(
        key=attempt_key(h, plan.model, plan.config_hash, trial), scenario_id=sc.id, pack=sc.pack,
        scenario_hash=h, model=plan.model, config_hash=plan.config_hash, trial=trial, status="completed",
    )


def prepare(plan: RunPlan, store: RunStore) -> list[tuple[Scenario, int]]:
    """Record the plan in the store and return the (scenario, trial) pairs not yet completed."""
    scenarios = dict(store.get_meta("scenarios") or {})
    for p in plan.packs:
        for s in p.scenarios:
            scenarios[s.content_hash()] = s.model_dump(mode="json")
    store.set_meta("scenarios", scenarios)
    current = dict(store.get_meta("current_versions") or {})  # pack/id -> the version this run scores
    current.update({f"{s.pack}/{s.id}": s.content_hash() for p in plan.packs for s in p.scenarios})
    store.set_meta("current_versions", current)
    unscored = store.unscored()
    if unscored:  # stored by a run killed between attempt and verdict (older brainbench) or a hook that raised
        rescore(store, unscored)
    done = store.completed_keys()
    return [(s, t) for s, t in plan.items() if new_record(plan, s, t).key not in done]


async def execute(
    plan: RunPlan,
    client: ChatClient,
    store: RunStore,
    todo: list[tuple[Scenario, int]],
    on_done: Callable[[AttemptRecord], None] = lambda r: None,
) -> None:
    """Run `todo` with at most `plan.concurrency` attempts in flight; store and score each as it ends.

    An EndpointError (a refusal retrying cannot fix) stops the whole run: nothing after it could pass.
    """
    runner = AttemptRunner(client, retries=plan.retries, harness=plan.harness)
    sem = asyncio.Semaphore(plan.concurrency)

    async def one(sc: Scenario, trial: int) -> None:
        async with sem:
            rec = await runner.run(sc, new_record(plan, sc, trial))
            verdict = score_or_log(store, sc, rec) if rec.status == "completed" else None
            store.put_attempt(rec, verdict, SCORER)  # attempt and verdict in one transaction
            on_done(rec)

    tasks = [asyncio.create_task(one(s, t)) for s, t in todo]
    try:
        await asyncio.gather(*tasks)
    except EndpointError:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def score_or_log(store: RunStore, sc: Scenario, rec: AttemptRecord) -> Verdict | None:
    """The attempt's verdict; a scenario hook that raises leaves it unscored (recorded), never stops the run:
    `brainbench score` or the next --resume scores it again."""
    try:
        return score_attempt(sc, rec)
    except BrainbenchError:
        raise
    except Exception as e:  # a user's scoring hook: its failure is the pack's, not the run's
        store.log_event("scoring_error", f"{sc.pack}/{sc.id}: {type(e).__name__}: {e}"[:300], rec.key)
        return None


def run_dir_default(root: Path, model: str) -> Path:
    import time

    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in model)[:40]
    return root / f"{time.strftime('%Y%m%d-%H%M%S')}-{safe}"
