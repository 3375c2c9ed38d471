"""A run spread over replicas: several endpoints serving the same model (`brainbench run --endpoint A --endpoint B`).

Each attempt has a home replica, dealt by content key (`shard`): the keys of the whole plan in key order, dealt
round-robin, so the split is balanced to one attempt and the same attempt goes to the same replica on every run
and every resume while all are alive. Each replica has its own `-c` attempts in flight.

A replica is marked dead when an attempt on it ends in an infrastructure error and its health probe fails
(connection refused or reset, a 5xx), or when `STRIKES` attempts in a row on it end in a server-side failure;
each dead replica is logged once (`replica_dead`). Its attempts, in flight or waiting, re-run on a live replica
(the next by rendezvous hash, so they spread over the rest), each carrying a `replica_failover` infrastructure
event: never a model failure, and stored once, under its content key, whichever replica finished it. With every
replica dead the run stops (`AllReplicasDead`, one line); what was stored stays and `--resume` runs the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from ..client import ChatClient, Endpoint
from ..core.errors import BrainbenchError
from ..core.records import AttemptRecord
from ..core.types import InfraEvent
from ..packs import Scenario
from ..scoring import SCORER
from ..store.db import RunStore
from .attempt import AttemptRunner
from .run import RunPlan, new_record, score_or_log

STRIKES = 2
"""Attempts in a row ending in a server-side failure (`STRIKE_KINDS`), with the replica still answering its health
probe, after which it is dead anyway (a server that answers /models but fails every chat request)."""
STRIKE_KINDS = frozenset({"connect_error", "stream_reset", "http_5xx", "loading_model"})
"""Infrastructure events that are the server's own failing. A timeout, a reply cut short or a context too small
for a scenario can be the scenario's doing: stored as an infrastructure error (`--resume` re-runs it), no strike."""
PROBE_TIMEOUT = 5.0
"""Seconds the health probe of a replica may take."""


class AllReplicasDead(BrainbenchError):
    """Every replica of the run is dead: nothing left could run."""


def public_url(url: str) -> str:
    """A URL as it may be stored: without a user or password in it (an API key is never stored)."""
    parts = urlsplit(url)
    if not (parts.username or parts.password):
        return url
    host = parts.hostname or ""
    return urlunsplit(parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")))


def shard(keys: Iterable[str], n: int) -> dict[str, int]:
    """Key -> replica index: keys in sorted order dealt round-robin (balanced to one; the same keys always
    give the same split, whichever of them are still to run)."""
    return {k: i % n for i, k in enumerate(sorted(set(keys)))}


def rendezvous(key: str, urls: list[str]) -> str:
    """Where an attempt goes when its home replica is dead: the highest hash of (key, url) among `urls`, so a
    dead replica's attempts spread evenly over the rest and always land on the same one."""
    return max(urls, key=lambda u: hashlib.sha256(f"{key}|{u}".encode()).hexdigest())


@dataclass
class Replica:
    """One endpoint of the fleet, its own concurrency and its state."""

    url: str
    """As stored (`public_url`)."""
    client: Any
    """The ChatClient (or its thinking wrapper) for this endpoint."""
    probe_url: str
    """What the health probe GETs (the model list)."""
    sem: asyncio.Semaphore
    dead: str | None = None
    """Why it is dead; None while alive."""
    strikes: int = 0
    """Attempts in a row ending in an infrastructure error with the probe still answering."""
    struck: list[tuple[Scenario, int]] = field(default_factory=list)
    """Those attempts (stored as infra_error): re-run elsewhere if the replica dies."""


class Fleet:
    """The replicas of one run, which attempt goes where, and which are dead."""

    def __init__(self, replicas: list[Replica], store: RunStore, headers: dict[str, str] | None = None):
        self.replicas = {r.url: r for r in replicas}
        self.order = [r.url for r in replicas]
        self.store = store
        self.home: dict[str, str] = {}
        # a fresh connection per probe: a kept-alive one can outlive a server that no longer accepts any
        self._http = httpx.AsyncClient(timeout=PROBE_TIMEOUT, headers=headers or {},
                                       limits=httpx.Limits(max_keepalive_connections=0))

    def assign(self, keys: Iterable[str]) -> None:
        """Home replica of every key of the plan (all of it, not only what is left: resume-stable)."""
        self.home = {k: self.order[i] for k, i in shard(keys, len(self.order)).items()}

    def alive(self) -> list[str]:
        return [u for u in self.order if not self.replicas[u].dead]

    def pick(self, key: str) -> Replica:
        """The replica an attempt runs on now: its home while alive, else a live one by rendezvous hash."""
        home = self.replicas[self.home.get(key, self.order[0])]
        if not home.dead:
            return home
        live = self.alive()
        if not live:
            raise AllReplicasDead("every replica is dead (" + "; ".join(
                f"{u}: {self.replicas[u].dead}" for u in self.order) + ")")
        return self.replicas[rendezvous(key, live)]

    def kill(self, r: Replica, why: str) -> None:
        if r.dead:
            return
        r.dead = why
        self.store.log_event("replica_dead", f"{r.url}: {why}"[:300])

    async def probe(self, r: Replica) -> str | None:
        """Why the replica is not healthy (refused, reset, 5xx), None when it answers."""
        try:
            resp = await self._http.get(r.probe_url)
        except httpx.HTTPError as e:
            return f"health probe failed: {type(e).__name__}: {e}"[:200]
        return f"health probe answered HTTP {resp.status_code}" if resp.status_code >= 500 else None

    async def failed(self, r: Replica, rec: AttemptRecord, sc: Scenario, trial: int) -> bool:
        """An attempt on `r` ended in an infrastructure error: whether `r` is (now) dead, so it re-runs elsewhere."""
        if r.dead:
            return True
        why = await self.probe(r)
        if why is None:
            if not any(e.kind in STRIKE_KINDS for e in rec.infra_events):
                return False
            r.strikes += 1
            if r.strikes < STRIKES:
                r.struck.append((sc, trial))
                return False
            why = f"{r.strikes} attempts in a row ended in infrastructure errors (last: {rec.error})"
        self.kill(r, why[:300])
        return True

    async def aclose(self) -> None:
        await self._http.aclose()


def probe_url(ep: Endpoint) -> str:
    """The model list of an endpoint: its health probe (and the preflight's)."""
    base = ep.base_url.rstrip("/")
    return base.removesuffix("/v1") + "/api/tags" if ep.api == "ollama" else base + "/models"


@contextlib.asynccontextmanager
async def open_fleet(endpoints: list[Endpoint], store: RunStore, concurrency: int, wrap: Callable[[Any], Any],
                     dead: dict[str, str] | None = None, **client_kw: Any) -> AsyncIterator[Fleet]:
    """A fleet of one client per endpoint (`wrap` applied, e.g. the thinking switch); endpoints in `dead` (base
    URL -> why, e.g. unreachable at the preflight) start dead."""
    async with contextlib.AsyncExitStack() as stack:
        replicas = []
        for ep in endpoints:
            client = await stack.enter_async_context(ChatClient(ep, **client_kw))
            replicas.append(Replica(public_url(ep.base_url), wrap(client), probe_url(ep),
                                    asyncio.Semaphore(concurrency)))
        key = endpoints[0].api_key if endpoints else None
        fleet = Fleet(replicas, store, {"Authorization": f"Bearer {key}"} if key else None)
        stack.push_async_callback(fleet.aclose)
        for ep in endpoints:
            if ep.base_url in (dead or {}):
                fleet.kill(fleet.replicas[public_url(ep.base_url)], (dead or {})[ep.base_url])
        yield fleet


def _failover(r: Replica, rec: AttemptRecord) -> InfraEvent:
    return InfraEvent(kind="replica_failover", detail=f"{r.url} is dead ({r.dead}); the attempt re-runs on another "
                      f"replica; there it ended: {rec.error}"[:400], at=time.time(), retried=True)


async def execute_replicas(plan: RunPlan, fleet: Fleet, store: RunStore, todo: list[tuple[Scenario, int]],
                           on_done: Callable[[AttemptRecord], None] = lambda r: None) -> None:
    """Run `todo` over the fleet (per replica at most `plan.concurrency` in flight); store and score each as it
    ends, naming the replica that answered. AllReplicasDead or an EndpointError stops the whole run."""
    fleet.assign(new_record(plan, s, t).key for s, t in plan.items())
    runners = {u: AttemptRunner(r.client, retries=plan.retries, harness=plan.harness)
               for u, r in fleet.replicas.items()}
    pending: list[asyncio.Task[None]] = []

    def rerun(r: Replica) -> None:  # attempts stored as infra_error on a replica that has died since
        for sc, t in r.struck:
            pending.append(asyncio.create_task(one(sc, t, counted=True, carried=[InfraEvent(
                kind="replica_failover", detail=f"{r.url} is dead ({r.dead}); the attempt stored as an "
                f"infrastructure error there re-runs on another replica"[:400], at=time.time(), retried=True)])))
        r.struck = []

    async def one(sc: Scenario, trial: int, counted: bool = False, carried: list[InfraEvent] | None = None) -> None:
        events = list(carried or [])
        while True:
            r = fleet.pick(new_record(plan, sc, trial).key)
            async with r.sem:  # held until the failure is judged: an attempt waiting here then sees the replica dead
                if r.dead:
                    continue
                rec = await runners[r.url].run(sc, new_record(plan, sc, trial))
                moved = rec.status == "infra_error" and await fleet.failed(r, rec, sc, trial)
            if not moved:
                break
            events += [*rec.infra_events, _failover(r, rec)]
            rerun(r)
        if rec.status == "completed":
            r.strikes, r.struck = 0, []
        rec.replica, rec.infra_events = r.url, events + rec.infra_events
        verdict = score_or_log(store, sc, rec) if rec.status == "completed" else None
        store.put_attempt(rec, verdict, SCORER)
        if not counted:  # a re-run of an attempt stored before is already counted
            on_done(rec)

    pending += [asyncio.create_task(one(s, t)) for s, t in todo]
    try:
        while pending:
            batch, pending[:] = list(pending), []
            await asyncio.gather(*batch)
    except BaseException:  # every replica dead, an EndpointError, an interrupt: nothing else may go on
        for t in pending + batch:
            t.cancel()
        await asyncio.gather(*pending, *batch, return_exceptions=True)
        raise
