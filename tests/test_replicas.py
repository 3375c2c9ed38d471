"""A run spread over replicas of one model (`brainbench run --endpoint A --endpoint B`): content-key shards,
per-replica concurrency, a dead replica's attempts re-run elsewhere as infrastructure events, and the report
flagging a replica that answers differently. Fake servers speak real HTTP/SSE; the CLI runs as a user runs it."""

import collections
import json
import sqlite3
import threading

from brainbench.core.records import attempt_key, config_hash
from brainbench.runner.replicas import public_url, rendezvous, shard
from brainbench.store.db import DB_NAME
from brainbench.testing import ByConversation, Reply
from test_cli import bb, one_line_error
from test_runner_store import perfect_smoke


def _keys(n: int) -> list[str]:
    return [attempt_key(f"scenario-{i % 40}", "m", "c", i // 40) for i in range(n)]


def test_shards_are_deterministic_balanced_and_the_same_for_any_subset_left():
    keys = _keys(1000)
    split = shard(keys, 3)
    counts = collections.Counter(split.values())
    assert max(counts.values()) - min(counts.values()) <= 1, counts
    assert shard(list(reversed(keys)), 3) == split  # order given does not matter
    assert shard(keys, 3) == split  # nor the call


def test_a_dead_replicas_attempts_spread_evenly_over_the_rest_and_always_the_same_way():
    urls = ["http://a/v1", "http://b/v1", "http://c/v1"]
    keys = _keys(900)
    moved = [k for k, i in shard(keys, 3).items() if i == 0]
    where = collections.Counter(rendezvous(k, urls[1:]) for k in moved)
    assert set(where) == {"http://b/v1", "http://c/v1"} and min(where.values()) > 0.4 * len(moved), where
    assert [rendezvous(k, urls[1:]) for k in moved] == [rendezvous(k, urls[1:]) for k in moved]


def test_a_stored_replica_url_has_no_user_or_password():
    assert public_url("http://user:s3cret@host:8000/v1") == "http://host:8000/v1"
    assert public_url("http://host:8000/v1") == "http://host:8000/v1"


def _db(run):
    return sqlite3.connect(run / DB_NAME)


def test_one_endpoint_keeps_todays_keys_options_and_store(fake, tmp_path):
    srv = fake(ByConversation(perfect_smoke))
    run = tmp_path / "r"
    proc = bb("run", "--endpoint", srv.base_url, "--model", "fake-model", "-o", str(run))
    assert proc.returncode == 0, proc.stderr
    with _db(run) as con:
        meta = {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM meta")}
        cols = [r[1] for r in con.execute("PRAGMA table_info(attempts)")]
        rows = con.execute("SELECT key, scenario_hash, trial, record FROM attempts").fetchall()
    assert meta["schema_version"] == 1 and "replica" not in cols, (meta["schema_version"], cols)
    assert meta["run"]["backend"] == {"endpoint": srv.base_url, "model": "fake-model"}
    # the key as it was before replicas existed: the backend's public fields, the server record, retries
    config = {"backend": {"endpoint": srv.base_url, "model": "fake-model", "api": "openai", "api_key_env": None},
              "server": meta["server"], "retries": 1}
    for key, h, trial, record in rows:
        assert key == attempt_key(h, "fake-model", config_hash(config), trial)
        assert json.loads(record)["replica"] is None


class Dies:
    """A brain that serves `n` chat requests, then dies: its server stops accepting connections and every
    request still arriving on a kept-alive connection is reset mid-stream."""

    def __init__(self, n: int):
        self.n, self.served, self.srv = n, 0, None
        self.lock = threading.Lock()
        self.inner = ByConversation(perfect_smoke)

    def __call__(self, body):
        with self.lock:
            self.served += 1
            if self.served == self.n + 1:
                threading.Thread(target=self._die, daemon=True).start()
            if self.served > self.n:
                return Reply(content="Paris", fault="reset", fault_after=0)
        return self.inner(body)

    def _die(self):
        self.srv.httpd.shutdown()
        self.srv.httpd.server_close()


def test_killing_a_replica_mid_run_reruns_its_attempts_elsewhere_once_each(fake, tmp_path):
    dying = Dies(3)
    a, b, c = fake(ByConversation(perfect_smoke)), fake(dying), fake(ByConversation(perfect_smoke))
    dying.srv = b
    run = tmp_path / "r"
    proc = bb("run", "--endpoint", a.base_url, "--endpoint", b.base_url, "--endpoint", c.base_url,
              "--model", "fake-model", "-k", "6", "-c", "2", "-o", str(run))
    assert proc.returncode == 0, proc.stderr
    with _db(run) as con:
        rows = con.execute("SELECT key, status, replica, record FROM attempts").fetchall()
        events = con.execute("SELECT attempt_key, kind, detail FROM infra_events").fetchall()
        verdicts = con.execute("SELECT passed, clean FROM verdicts").fetchall()
    assert len(rows) == 24 and len({r[0] for r in rows}) == 24  # 4 scenarios x 6 trials, each stored once
    assert all(status == "completed" for _, status, _, _ in rows), collections.Counter(r[1] for r in rows)
    assert len(verdicts) == 24 and all(p and c for p, c in verdicts)  # nothing counted against the brain
    dead = [e for e in events if e[1] == "replica_dead"]
    assert len(dead) == 1 and dead[0][2].startswith(b.base_url) and dead[0][0] is None, dead
    moved = {e[0] for e in events if e[1] == "replica_failover"}
    assert moved and all(b.base_url in e[2] for e in events if e[1] == "replica_failover")
    by_key = {k: (rep, json.loads(rec)) for k, _, rep, rec in rows}
    for k in moved:  # each re-run finished on a live replica, its record carrying the failover event
        rep, rec = by_key[k]
        assert rep in (a.base_url, c.base_url) and rec["replica"] == rep
        assert any(e["kind"] == "replica_failover" for e in rec["infra_events"])
    on_b = [k for k, (rep, _) in by_key.items() if rep == b.base_url]
    assert len(on_b) <= 3  # what b finished before it died stays b's
    assert f"{b.base_url}: " in proc.stderr and "(dead: " in proc.stderr, proc.stderr


def test_every_replica_dead_ends_in_one_line_and_resume_finishes(fake, tmp_path):
    first, second = Dies(4), Dies(4)
    a, b = fake(first), fake(second)
    first.srv, second.srv = a, b
    run = tmp_path / "r"
    proc = bb("run", "--endpoint", a.base_url, "--endpoint", b.base_url, "--model", "fake-model", "-k", "6",
              "-o", str(run))
    one_line_error(proc, "every replica is dead")
    assert f"--resume {run}" in proc.stderr
    with _db(run) as con:
        done = con.execute("SELECT COUNT(*) FROM attempts WHERE status='completed'").fetchone()[0]
        run_meta = json.loads(con.execute("SELECT value FROM meta WHERE key='run'").fetchone()[0])
    assert 0 < done < 24 and run_meta["backend"]["replicas"] == [b.base_url]
    for dead in (a, b):  # both come back on their ports: --resume reloads the replicas and runs the rest
        dead.__exit__(None, None, None)
        fake(ByConversation(perfect_smoke), port=dead.port)
    proc = bb("run", "--resume", str(run))
    assert proc.returncode == 0, proc.stderr
    with _db(run) as con:
        rows = con.execute("SELECT key, status FROM attempts").fetchall()
    assert len(rows) == 24 and len({k for k, _ in rows}) == 24 and all(s == "completed" for _, s in rows)
