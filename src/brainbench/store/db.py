"""The run store: one SQLite database (WAL) per run directory.

Every attempt is written, in its own transaction, the moment it ends, so a run killed with SIGKILL
loses at most the attempts in flight. Verdicts (scoring) live in their own table and can be rebuilt
from the stored attempts at any time without calling a model.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterator

from ..core.errors import BrainbenchError
from ..core.records import AttemptRecord

SCHEMA_VERSION = 1
DB_NAME = "brainbench.sqlite"

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS attempts (
  key TEXT PRIMARY KEY,
  pack TEXT NOT NULL, scenario_id TEXT NOT NULL, scenario_hash TEXT NOT NULL,
  model TEXT NOT NULL, config_hash TEXT NOT NULL, trial INTEGER NOT NULL,
  status TEXT NOT NULL, started REAL, ended REAL,
  record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_scenario ON attempts(pack, scenario_id);
CREATE TABLE IF NOT EXISTS infra_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  attempt_key TEXT, at REAL, kind TEXT NOT NULL, detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS verdicts (
  attempt_key TEXT NOT NULL, scorer TEXT NOT NULL,
  passed INTEGER NOT NULL, clean INTEGER NOT NULL,
  failures TEXT NOT NULL, details TEXT NOT NULL, scored_at REAL NOT NULL,
  PRIMARY KEY (attempt_key, scorer)
);
CREATE TABLE IF NOT EXISTS results (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL, name TEXT NOT NULL, model TEXT NOT NULL, created REAL NOT NULL,
  data TEXT NOT NULL
);
"""


class StoreError(BrainbenchError):
    """The run directory cannot be used (missing, corrupt, or from a newer brainbench)."""


class RunStore:
    """Access to one run directory's database. Cheap to open; safe to reopen after a crash."""

    def __init__(self, run_dir: Path, *, create: bool = False):
        self.run_dir = Path(run_dir)
        path = self.run_dir / DB_NAME
        if not path.exists() and not create:
            raise StoreError(f"{self.run_dir}: not a brainbench run directory (no {DB_NAME})")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(path, timeout=30, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self._check_version(create)
            self.conn.executescript(_DDL)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{path}: cannot open the run database: {e}") from None

    def _check_version(self, create: bool) -> None:
        has_meta = self.conn.execute("SELECT 1 FROM sqlite_master WHERE name='meta'").fetchone()
        if has_meta:
            row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else SCHEMA_VERSION
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.run_dir} was written by a newer brainbench (store schema {version}, this one reads "
                    f"up to {SCHEMA_VERSION}); upgrade brainbench to read it"
                )
        elif not create:
            raise StoreError(f"{self.run_dir}: not a brainbench run database")
        self.conn.executescript(_DDL)
        self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('created', ?)", (str(time.time()),))

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- run configuration ---------------------------------------------------------------------------

    def set_meta(self, key: str, value: Any) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    # -- attempts ------------------------------------------------------------------------------------

    def put_attempt(self, rec: AttemptRecord) -> None:
        """Store one finished attempt atomically (replacing an earlier infra_error try of the same key)."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(
                "INSERT OR REPLACE INTO attempts VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (rec.key, rec.pack, rec.scenario_id, rec.scenario_hash, rec.model, rec.config_hash, rec.trial,
                 rec.status, rec.started, rec.ended, rec.model_dump_json()),
            )
            self.conn.executemany(
                "INSERT INTO infra_events (attempt_key, at, kind, detail) VALUES (?,?,?,?)",
                [(rec.key, e.at, e.kind, e.detail) for e in rec.infra_events],
            )

    def completed_keys(self) -> set[str]:
        """Keys that resume must skip: attempts that completed (infra_error ones are re-run)."""
        return {r[0] for r in self.conn.execute("SELECT key FROM attempts WHERE status='completed'")}

    def attempts(self, status: str | None = None) -> Iterator[AttemptRecord]:
        sql = "SELECT record FROM attempts" + (" WHERE status=?" if status else "") + " ORDER BY pack, scenario_id, trial"
        for (blob,) in self.conn.execute(sql, (status,) if status else ()):
            yield AttemptRecord.model_validate_json(blob)

    def count(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT status, COUNT(*) FROM attempts GROUP BY status").fetchall())

    def log_event(self, kind: str, detail: str, attempt_key: str | None = None) -> None:
        """An infrastructure event outside any attempt (e.g. the server died between attempts)."""
        self.conn.execute("INSERT INTO infra_events (attempt_key, at, kind, detail) VALUES (?,?,?,?)",
                          (attempt_key, time.time(), kind, detail))

    def infra_events(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT attempt_key, at, kind, detail FROM infra_events ORDER BY id")
        return [dict(zip(("attempt_key", "at", "kind", "detail"), r)) for r in rows]

    # -- verdicts ------------------------------------------------------------------------------------

    def put_verdict(self, attempt_key: str, scorer: str, passed: bool, clean: bool,
                    failures: list[str], details: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO verdicts VALUES (?,?,?,?,?,?,?)",
            (attempt_key, scorer, int(passed), int(clean), json.dumps(failures), json.dumps(details), time.time()),
        )

    def verdicts(self, scorer: str = "deterministic") -> dict[str, dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT attempt_key, passed, clean, failures, details FROM verdicts WHERE scorer=?", (scorer,)
        )
        return {k: {"passed": bool(p), "clean": bool(c), "failures": json.loads(f), "details": json.loads(d)}
                for k, p, c, f, d in rows}

    # -- other results (speed legs, imported logs, ...) ---------------------------------------------

    def put_result(self, kind: str, name: str, model: str, data: dict[str, Any]) -> int:
        cur = self.conn.execute("INSERT INTO results (kind, name, model, created, data) VALUES (?,?,?,?,?)",
                                (kind, name, model, time.time(), json.dumps(data)))
        return int(cur.lastrowid or 0)

    def results(self, kind: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT id, kind, name, model, created, data FROM results" + (" WHERE kind=?" if kind else "") + " ORDER BY id"
        rows = self.conn.execute(sql, (kind,) if kind else ())
        return [{"id": i, "kind": k, "name": n, "model": m, "created": c, "data": json.loads(d)} for i, k, n, m, c, d in rows]
