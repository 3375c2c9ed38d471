"""The tap's run directory: every conversation is one attempt in the pack run store, rewritten as each turn
ends (one transaction, WAL), so `brainbench report` shows a tap run with the same views and a killed tap loses
no finished turn.

A conversation is stored in the shape a pack run has: pack `tap`, scenario id from its opening (the first user
words and a hash of the opening messages), trial = how many earlier conversations opened the same way, a
deterministic verdict. The opening's content hash keys it, so the same agent task seen twice becomes two
trials of one scenario (pass^k across runs of an agent). All writes go through one thread (SQLite connections
stay in the thread that opened them); the proxy waits for a write only before relaying the first byte of the
same conversation's next reply (see `Tap._settle`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..core.records import AttemptRecord, attempt_key, config_hash
from ..core.types import InfraEvent
from ..core.verdict import Verdict
from ..store.db import RunStore

PACK = "tap"


def scenario_id(messages: list[Any], opening_hash: str) -> str:
    """A readable, stable id: the first words of the first user message, then the opening's hash."""
    text = next((m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "user"), "") or ""
    words = re.findall(r"[a-z0-9]+", str(text).lower())[:5]
    return "-".join(words + [opening_hash[:8]])


class TapStore:
    """One writer thread over one RunStore; `submit` queues a write and returns its future."""

    def __init__(self, run_dir: Path, run_meta: dict[str, Any]):
        self.run_dir = Path(run_dir)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tap-store")
        self._store: RunStore | None = None
        self.config_hash = config_hash({"tap": run_meta.get("upstream", "")})
        self.trials: Counter[str] = Counter()
        self.last: Future | None = None
        """The latest queued write (writes run in order: when it is done, every earlier one is)."""
        self.resumable: list[tuple[AttemptRecord, list[str]]] = []
        """Conversations an earlier tap left open on this run directory (stopped or killed, not gone idle), with
        their stored failures: a request that continues one joins it (`Tap.resume`)."""
        self._call(self._open, run_meta).result()  # a bad run directory fails here, in one line

    def _call(self, fn: Callable[..., Any], *args: Any) -> Future:
        self.last = self._pool.submit(fn, *args)
        return self.last

    def _open(self, run_meta: dict[str, Any]) -> None:
        self._store = RunStore(self.run_dir, create=True, lock=True)
        self._store.set_meta("run", {"packs": [PACK], "tap": run_meta, "trials": 1, "concurrency": None})
        verdicts = self._store.verdicts()
        for rec in self._store.attempts():
            if rec.pack == PACK:
                self.trials[rec.scenario_hash] = max(self.trials[rec.scenario_hash], rec.trial + 1)
                if rec.final_state.get("ended") != "idle" and rec.dispatches and rec.dispatches[0].messages:
                    self.resumable.append((rec, (verdicts.get(rec.key) or {}).get("failures", [])))

    def new_key(self, opening_hash: str, model: str) -> tuple[str, int]:
        """(attempt key, trial) for a new conversation with this opening (called from the event loop only)."""
        trial = self.trials[opening_hash]
        self.trials[opening_hash] += 1
        return attempt_key(opening_hash, model, self.config_hash, trial), trial

    def run(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Run other work off the event loop, in the store's thread, in turn with the writes (reading a reply)."""
        return self._call(fn, *args)

    def put(self, rec: AttemptRecord, judge: Callable[[AttemptRecord], Verdict]) -> Future:
        """Store a snapshot of the conversation (replacing its earlier version) with the verdict `judge` gives
        (called in the store's thread; no verdict for a conversation with no reply)."""
        return self._call(self._put, rec, judge)

    def _put(self, rec: AttemptRecord, judge: Callable[[AttemptRecord], Verdict]) -> None:
        assert self._store is not None
        verdict = judge(rec)
        self._store.put_attempt(rec, verdict if rec.turns else None, log_events=False)  # logged by `event`

    def event(self, ev: InfraEvent, key: str | None) -> Future:
        """An infrastructure event, stored once (never a model failure)."""
        return self._call(self._event, ev, key)

    def _event(self, ev: InfraEvent, key: str | None) -> None:
        assert self._store is not None
        self._store.log_event(ev.kind, ev.detail, key)

    def close(self) -> None:
        """Finish every queued write, then close the store (and its lock)."""
        if self._store is not None:
            self._call(self._store.close).result()
        self._pool.shutdown(wait=True)
