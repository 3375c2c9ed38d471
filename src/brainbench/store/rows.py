"""A run store's rows as plain data, and merging them into another store.

This is how a profile run elsewhere (a Ray task on another node: no shared filesystem) comes back to the one
store on the driver: the task seeds a fresh store with the driver's rows, runs, and returns only the rows it
added (`added`); the driver `merge`s them. Merging is idempotent: attempts and verdicts are keyed by content
(an attempt re-run after a lost node has the same key and replaces, never doubles, an infra_error try), and a
result or event row identical to one already stored is not stored again.
"""

from __future__ import annotations

from typing import Any

from .db import RunStore

Rows = dict[str, Any]
"""{"meta": {key: json}, "attempts": [...], "verdicts": [...], "events": [...], "results": [...]} (lists of row tuples)."""

_OWN_META = {"schema_version", "created"}
"""Meta that belongs to the store itself, never copied from another one."""

_SQL = {
    "attempts": "SELECT key, pack, scenario_id, scenario_hash, model, config_hash, trial, status, started, ended, "
                "record FROM attempts ORDER BY key",
    "verdicts": "SELECT attempt_key, scorer, passed, clean, failures, details, scored_at FROM verdicts "
                "ORDER BY attempt_key, scorer",
    "events": "SELECT id, attempt_key, at, kind, detail FROM infra_events ORDER BY id",
    "results": "SELECT id, kind, name, model, created, data FROM results ORDER BY id",
}


def dump(store: RunStore) -> Rows:
    """Every row of the store (meta values as their stored JSON text)."""
    out: Rows = {t: [list(r) for r in store._rows(sql)] for t, sql in _SQL.items()}
    out["meta"] = {k: v for k, v in store._rows("SELECT key, value FROM meta") if k not in _OWN_META}
    return out


def added(after: Rows, before: Rows) -> Rows:
    """The rows of `after` that `before` does not hold (new or changed; events and results by id)."""
    out: Rows = {"meta": {k: v for k, v in after["meta"].items() if before["meta"].get(k) != v}}
    for t in ("attempts", "verdicts"):
        seen = {tuple(r) for r in before[t]}
        out[t] = [r for r in after[t] if tuple(r) not in seen]
    for t in ("events", "results"):
        last = max((r[0] for r in before[t]), default=0)
        out[t] = [r for r in after[t] if r[0] > last]
    return out


def merge(store: RunStore, rows: Rows) -> dict[str, int]:
    """Store `rows` (from `dump` or `added`) in one transaction; returns how many rows of each kind were new."""
    n = dict.fromkeys(("attempts", "verdicts", "events", "results", "meta"), 0)
    c = store.conn
    with store._writing(), c:
        c.execute("BEGIN IMMEDIATE")
        for r in rows.get("attempts", []):
            n["attempts"] += not c.execute("SELECT 1 FROM attempts WHERE key=? AND record=?", (r[0], r[10])).fetchone()
            c.execute("INSERT OR REPLACE INTO attempts VALUES (?,?,?,?,?,?,?,?,?,?,?)", tuple(r))
        for r in rows.get("verdicts", []):
            n["verdicts"] += 1
            c.execute("INSERT OR REPLACE INTO verdicts VALUES (?,?,?,?,?,?,?)", tuple(r))
        for _id, key, at, kind, detail in rows.get("events", []):
            if not c.execute("SELECT 1 FROM infra_events WHERE attempt_key IS ? AND at=? AND kind=? AND detail=?",
                             (key, at, kind, detail)).fetchone():
                n["events"] += 1
                c.execute("INSERT INTO infra_events (attempt_key, at, kind, detail) VALUES (?,?,?,?)",
                          (key, at, kind, detail))
        for _id, kind, name, model, created, data in rows.get("results", []):
            if not c.execute("SELECT 1 FROM results WHERE kind=? AND name=? AND model=? AND created=? AND data=?",
                             (kind, name, model, created, data)).fetchone():
                n["results"] += 1
                c.execute("INSERT INTO results (kind, name, model, created, data) VALUES (?,?,?,?,?)",
                          (kind, name, model, created, data))
        for k, v in rows.get("meta", {}).items():
            if k not in _OWN_META:
                n["meta"] += 1
                c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (k, v))
    return n
