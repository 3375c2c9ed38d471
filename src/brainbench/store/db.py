"""The run store: one SQLite database (WAL) per run directory.

Every attempt is written, in its own transaction, the moment it ends, with its verdict, so a run killed with
SIGKILL loses at most the attempts in flight. Verdicts (scoring) live in their own table and can be rebuilt
from the stored attempts at any time without calling a model. One writer at a time (a lock file naming its
pid); a run directory that cannot be written (a read-only mount) is read from a snapshot; a damaged row is
skipped and named, never fatal to the rows around it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic

from ..core.errors import BrainbenchError
from ..core.records import AttemptRecord
from ..core.verdict import Verdict

SCHEMA_VERSION = 2
"""The newest store this brainbench reads. 2: `attempts` has a `replica` column, added (and the store's version
raised) only when a run over several endpoints stores its first attempt, so a one-endpoint run stays at 1 and an
older brainbench still reads and resumes it."""
BASE_VERSION = 1
"""The version a new store is created at."""
DB_NAME = "brainbench.sqlite"
LOCK_NAME = "brainbench.lock"

_ATTEMPT_COLUMNS = ("key", "pack", "scenario_id", "scenario_hash", "model", "config_hash", "trial", "status",
                    "started", "ended", "record")
"""The columns of schema 1 (`replica` is schema 2's, present only in stores of runs over replicas)."""

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


def _write_failed(run_dir: Path, e: sqlite3.Error) -> StoreError:
    """One line for a write the disk refused (full, read-only): what was stored before stays stored."""
    why = str(e)
    if "full" in why:
        why = "the disk is full"
    elif "readonly" in why or "read-only" in why:
        why = "the run directory is read-only"
    return StoreError(f"{run_dir}: cannot store results: {why}; everything stored before is kept "
                      f"(free space or fix permissions, then --resume {run_dir})")


class RunStore:
    """Access to one run directory's database. Cheap to open; safe to reopen after a crash.

    `lock=True` (what writers of attempts pass) takes the run directory's lock: a second writer gets one line
    naming the holder's pid. A directory that cannot be written is opened from a temporary snapshot, read-only.
    """

    def __init__(self, run_dir: Path, *, create: bool = False, lock: bool = False):
        self.run_dir = Path(run_dir)
        self.skipped: list[str] = []
        """Rows that could not be read (damaged JSON), named by key: reported, never fatal."""
        self._lock_fd: int | None = None
        self._snapshot: str | None = None
        path = self.run_dir / DB_NAME
        if not path.exists() and not create:
            raise StoreError(f"{self.run_dir}: not a brainbench run directory (no {DB_NAME})")
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"{self.run_dir}: cannot create the run directory ({e.strerror})") from None
        self.readonly = path.exists() and not os.access(self.run_dir, os.W_OK)
        if lock and not self.readonly:
            self._take_lock()
        try:
            self.conn = self._connect(path, create)
        except sqlite3.DatabaseError as e:
            self.close()
            raise StoreError(f"{path}: cannot open the run database: {e}") from None
        except StoreError:
            self.close()
            raise

    def _connect(self, path: Path, create: bool) -> sqlite3.Connection:
        if self.readonly:  # WAL needs a writable directory even to read: read a snapshot instead
            self._snapshot = tempfile.mkdtemp(prefix="bb-ro-")
            for f in self.run_dir.glob(DB_NAME + "*"):
                shutil.copy2(f, self._snapshot)
            path = Path(self._snapshot) / DB_NAME
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.conn = conn
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        self._check_version(create)
        conn.executescript(_DDL)
        conn.execute("SELECT COUNT(*) FROM attempts").fetchone()  # a damaged file fails here, in one line
        return conn

    def _take_lock(self) -> None:
        path = self.run_dir / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StoreError(f"{self.run_dir} is being written by another brainbench (pid {holder}); "
                             "wait for it to finish or stop it first") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Writes that the disk refuses become one line; a read-only store refuses writes in one line."""
        if self.readonly:
            raise StoreError(f"{self.run_dir} is read-only: it can be exported and reported, not written")
        try:
            yield
        except sqlite3.OperationalError as e:
            raise _write_failed(self.run_dir, e) from None

    def _check_version(self, create: bool) -> None:
        has_meta = self.conn.execute("SELECT 1 FROM sqlite_master WHERE name='meta'").fetchone()
        if has_meta:
            row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            try:
                version = int(row[0]) if row else SCHEMA_VERSION
            except (TypeError, ValueError):
                raise StoreError(f"{self.run_dir}: damaged run database (schema version {row[0]!r} is not a "
                                 "number)") from None
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.run_dir} was written by a newer brainbench (store schema {version}, this one reads "
                    f"up to {SCHEMA_VERSION}); upgrade brainbench to read it"
                )
        elif not create:
            raise StoreError(f"{self.run_dir}: not a brainbench run database")
        if self.readonly:
            return
        self.conn.executescript(_DDL)
        self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(BASE_VERSION),))
        self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('created', ?)", (str(time.time()),))

    def close(self) -> None:
        if getattr(self, "conn", None) is not None:
            self.conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
        if self._snapshot:
            shutil.rmtree(self._snapshot, ignore_errors=True)
            self._snapshot = None

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- run configuration ---------------------------------------------------------------------------

    def set_meta(self, key: str, value: Any) -> None:
        with self._writing():
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        if not row:
            return default
        try:
            return json.loads(row[0])
        except json.JSONDecodeError:
            raise StoreError(f"{self.run_dir}: damaged run database (meta {key!r} is not valid JSON)") from None

    # -- attempts ------------------------------------------------------------------------------------

    def put_attempt(self, rec: AttemptRecord, verdict: Verdict | None = None, scorer: str = "deterministic",
                    log_events: bool = True) -> None:
        """Store one finished attempt atomically (replacing an earlier infra_error try of the same key), with its
        verdict in the same transaction: a kill between the two can never leave a completed attempt unscored.
        `log_events` False: its infra events are already in the events table (the tap logs each as it happens
        and rewrites the attempt after every turn)."""
        with self._writing(), self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            cols: tuple[str, ...] = _ATTEMPT_COLUMNS
            vals = [rec.key, rec.pack, rec.scenario_id, rec.scenario_hash, rec.model, rec.config_hash, rec.trial,
                    rec.status, rec.started, rec.ended, rec.model_dump_json()]
            if rec.replica is not None:
                self._add_replica_column()
                cols, vals = cols + ("replica",), vals + [rec.replica]
            self.conn.execute(f"INSERT OR REPLACE INTO attempts ({', '.join(cols)}) VALUES "
                              f"({', '.join('?' * len(cols))})", vals)
            self.conn.executemany(
                "INSERT INTO infra_events (attempt_key, at, kind, detail) VALUES (?,?,?,?)",
                [(rec.key, e.at, e.kind, e.detail) for e in rec.infra_events] if log_events else [],
            )
            if verdict is not None:
                self._insert_verdict(rec.key, scorer, verdict)

    def _has_replica_column(self) -> bool:
        return any(r[1] == "replica" for r in self.conn.execute("PRAGMA table_info(attempts)"))

    def _add_replica_column(self) -> None:
        """Schema 2, inside the caller's transaction: the first attempt of a run over replicas adds the column."""
        if not self._has_replica_column():
            self.conn.execute("ALTER TABLE attempts ADD COLUMN replica TEXT")
            self.conn.execute("UPDATE meta SET value='2' WHERE key='schema_version'")

    def replicas(self) -> dict[str, int]:
        """Stored attempts per replica (empty for a store without replicas: one endpoint, or one from before them)."""
        if not self._has_replica_column():
            return {}
        return dict(self._rows("SELECT replica, COUNT(*) FROM attempts WHERE replica IS NOT NULL GROUP BY replica"))

    def completed_keys(self) -> set[str]:
        """Keys that resume must skip: attempts that completed (infra_error ones are re-run)."""
        return {r[0] for r in self.conn.execute("SELECT key FROM attempts WHERE status='completed'")}

    def _rows(self, sql: str, args: tuple = ()) -> list[tuple]:
        """All rows of a query; a damaged database file is one line, not a traceback."""
        try:
            return self.conn.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.run_dir}: damaged run database ({e}); copy out what `brainbench export` "
                             "still reads and re-run the rest") from None

    def unscored(self, scorer: str = "deterministic") -> set[str]:
        """Completed attempts with no verdict (a run stored by an older brainbench, or a hook that raised)."""
        rows = self.conn.execute("SELECT key FROM attempts WHERE status='completed' AND key NOT IN "
                                 "(SELECT attempt_key FROM verdicts WHERE scorer=?)", (scorer,))
        return {r[0] for r in rows}

    def attempts(self, status: str | None = None) -> Iterator[AttemptRecord]:
        """Stored attempts; a damaged row is skipped and its key added to `skipped` (the rest still read)."""
        sql = ("SELECT key, record FROM attempts" + (" WHERE status=?" if status else "")
               + " ORDER BY pack, scenario_id, trial")
        for key, blob in self._rows(sql, (status,) if status else ()):
            try:
                yield AttemptRecord.model_validate_json(blob)
            except pydantic.ValidationError:
                if key not in self.skipped:
                    self.skipped.append(key)

    def count(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT status, COUNT(*) FROM attempts GROUP BY status").fetchall())

    def log_event(self, kind: str, detail: str, attempt_key: str | None = None) -> None:
        """An infrastructure event outside any attempt (e.g. the server died between attempts)."""
        with self._writing():
            self.conn.execute("INSERT INTO infra_events (attempt_key, at, kind, detail) VALUES (?,?,?,?)",
                              (attempt_key, time.time(), kind, detail))

    def infra_events(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT attempt_key, at, kind, detail FROM infra_events ORDER BY id")
        return [dict(zip(("attempt_key", "at", "kind", "detail"), r)) for r in rows]

    # -- verdicts ------------------------------------------------------------------------------------

    def put_verdict(self, attempt_key: str, scorer: str, passed: bool, clean: bool,
                    failures: list[str], details: dict[str, Any]) -> None:
        with self._writing():
            self._insert_verdict(attempt_key, scorer, Verdict(passed, clean, failures, details))

    def _insert_verdict(self, attempt_key: str, scorer: str, v: Verdict) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO verdicts VALUES (?,?,?,?,?,?,?)",
            (attempt_key, scorer, int(v.passed), int(v.clean), json.dumps(v.failures), json.dumps(v.details),
             time.time()),
        )

    def verdicts(self, scorer: str = "deterministic") -> dict[str, dict[str, Any]]:
        """Verdicts by attempt key; a damaged row is skipped and named in `skipped` (the attempt reads unscored)."""
        rows = self._rows("SELECT attempt_key, passed, clean, failures, details FROM verdicts WHERE scorer=?",
                          (scorer,))
        out = {}
        for k, p, c, f, d in rows:
            try:
                out[k] = {"passed": bool(p), "clean": bool(c), "failures": json.loads(f), "details": json.loads(d)}
            except (json.JSONDecodeError, TypeError):
                self.skipped.append(f"verdict {k}")
        return out

    # -- other results (speed legs, imported logs, ...) ---------------------------------------------

    def put_result(self, kind: str, name: str, model: str, data: dict[str, Any]) -> int:
        with self._writing():
            cur = self.conn.execute("INSERT INTO results (kind, name, model, created, data) VALUES (?,?,?,?,?)",
                                    (kind, name, model, time.time(), json.dumps(data)))
        return int(cur.lastrowid or 0)

    def results(self, kind: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT id, kind, name, model, created, data FROM results" + (" WHERE kind=?" if kind else "") + " ORDER BY id"
        out = []
        for i, k, n, m, c, d in self._rows(sql, (kind,) if kind else ()):
            try:
                out.append({"id": i, "kind": k, "name": n, "model": m, "created": c, "data": json.loads(d)})
            except json.JSONDecodeError:
                self.skipped.append(f"result {i}")
        return out
