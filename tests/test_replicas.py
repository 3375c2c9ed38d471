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


# -- the report: the replica per attempt, and a replica that answers differently flagged ---------------


def broken_template(messages):
    """A replica whose chat template is broken: calls come back written as text, answers as template debris."""
    r = perfect_smoke(messages)
    if r.tool_calls:
        c = r.tool_calls[0]
        return Reply.text(json.dumps({"name": c["name"], "arguments": c["arguments"]}), chunk_gap=0.01)
    return Reply.text("<|im_start|>assistant\n<|im_end|>", chunk_gap=0.01)


def slowed(gap):
    """The right answers, streamed with `gap` seconds between chunks."""
    def script(messages):
        r = perfect_smoke(messages)
        r.chunk_gap = gap
        return r
    return script


async def _fleet_run(servers, tmp_path, trials):
    """The smoke pack over `servers` as replicas, through the real fleet runner and store (in-process)."""
    from brainbench.client import Endpoint
    from brainbench.packs import select
    from brainbench.runner.replicas import execute_replicas, open_fleet
    from brainbench.runner.run import RunPlan, prepare
    from brainbench.store import RunStore

    run = tmp_path / "run"
    with RunStore(run, create=True) as store:
        plan = RunPlan(packs=select(["smoke"]), model="fake-model", config={"t": 1}, trials=trials, concurrency=2)
        todo = prepare(plan, store)
        async with open_fleet([Endpoint(s.base_url, "fake-model") for s in servers], store, 2, lambda c: c,
                              backoff=0.01) as fleet:
            await execute_replicas(plan, fleet, store, todo)
    return run


async def test_a_replica_with_a_broken_chat_template_is_flagged_in_every_output(fake, tmp_path):
    from brainbench.report.data import build_report
    from brainbench.report.outputs import render

    # streamed with gaps, so speed is measured, not scheduling noise on zero-length windows
    a, bad, c = fake(ByConversation(slowed(0.01))), fake(ByConversation(broken_template)), fake(ByConversation(slowed(0.01)))
    run = await _fleet_run([a, bad, c], tmp_path, trials=6)
    rep = build_report([run])
    (e,) = rep.entries
    figs = {x["url"]: x for x in e.replicas}
    assert set(figs) == {a.base_url, bad.base_url, c.base_url} and all(x["attempts"] == 8 for x in figs.values())
    assert figs[bad.base_url]["flags"] and "pass rate 0%" in figs[bad.base_url]["flags"][0]
    assert not figs[a.base_url]["flags"] and not figs[c.base_url]["flags"]  # the healthy ones are not dragged in
    assert sorted(k for x in figs.values() for k in x["keys"]) == sorted(r["key"] for r in e.rows)
    assert all(f["replica"] == bad.base_url for f in e.failed) and len(e.failed) == 8  # each failure names it
    md = render(rep, "md")
    flagged_rows = [ln for ln in md.splitlines() if "**flagged**" in ln]
    assert len(flagged_rows) == 1 and bad.base_url in flagged_rows[0], flagged_rows
    assert sum(f"| {bad.base_url} |" in ln for ln in md.splitlines()) == 8 + 1  # 8 failed attempts + its row
    html = render(rep, "html")
    assert 'id="replicas"' in html and html.count('class="v bad">flagged') == 1
    terminal = render(rep, "terminal", width=200)
    assert f"flagged fake-model replica {bad.base_url}: pass rate 0%" in terminal
    slim = json.loads(render(rep, "json"))
    assert [x["url"] for x in slim["entries"][0]["replicas"] if x["flags"]] == [bad.base_url]


async def test_a_slow_replica_is_flagged_for_speed_and_not_for_its_verdicts(fake, tmp_path):
    from brainbench.report.data import build_report

    fast1, slow, fast2 = (fake(ByConversation(slowed(g))) for g in (0.01, 0.05, 0.01))
    run = await _fleet_run([fast1, slow, fast2], tmp_path, trials=6)
    figs = {x["url"]: x for x in build_report([run]).entries[0].replicas}
    assert [u for u, x in figs.items() if x["flags"]] == [slow.base_url], {u: x["flags"] for u, x in figs.items()}
    (why,) = figs[slow.base_url]["flags"]
    assert why.startswith("decode ") and "95% intervals apart" in why
    assert figs[slow.base_url]["clean"]["rate"] == 1.0


async def test_two_healthy_replicas_are_not_flagged(fake, tmp_path):
    from brainbench.report.data import build_report

    run = await _fleet_run([fake(ByConversation(slowed(0.01))), fake(ByConversation(slowed(0.01)))], tmp_path,
                           trials=6)
    figs = build_report([run]).entries[0].replicas
    assert len(figs) == 2 and not any(x["flags"] for x in figs)


class Counting:
    """The right answers, each after 0.1 s, counting the requests in flight at once (here and, through
    `total`, over every replica)."""

    def __init__(self, total=None):
        self.now = self.most = 0
        self.total = total
        self.lock = threading.Lock()

    def __enter__(self):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc):
        with self.lock:
            self.now -= 1

    def __call__(self, messages):
        import time

        with self, self.total:
            time.sleep(0.1)
        return perfect_smoke(messages)


async def test_concurrency_applies_per_replica(fake, tmp_path):
    total = Counting()
    brains = [Counting(total), Counting(total)]
    await _fleet_run([fake(ByConversation(b)) for b in brains], tmp_path, trials=3)  # -c 2 per replica
    assert [b.most for b in brains] == [2, 2] and total.most == 4


async def test_a_replica_failing_every_chat_while_its_model_list_answers_dies_after_two_strikes(fake, tmp_path):
    from brainbench.store import RunStore

    good = fake(ByConversation(perfect_smoke))
    bad = fake(ByConversation(lambda m: Reply.http_error(500, "CUDA error: an illegal memory access")))
    run = await _fleet_run([good, bad], tmp_path, trials=4)
    with RunStore(run) as st:
        recs, events = list(st.attempts()), st.infra_events()
    assert len(recs) == 16 and all(r.status == "completed" and r.replica == good.base_url for r in recs)
    (dead,) = [e for e in events if e["kind"] == "replica_dead"]
    assert dead["detail"].startswith(f"{bad.base_url}: 2 attempts in a row ended in infrastructure errors")
    moved = [r for r in recs if any(e.kind == "replica_failover" for e in r.infra_events)]
    # re-runs: the two struck attempts (stored as infra_error, then replaced) and any that started there before it
    # was marked dead (at most -c 2 more); the rest of its share never ran there and simply went elsewhere
    assert 2 <= len(moved) <= 4, len(moved)


def _fig(url, passed, n, samples):
    from brainbench.report.data import mean_ci
    from brainbench.scoring.metrics import rate

    return {"url": url, "pass": rate(passed, n), "clean": rate(passed, n), "scenarios": 4, "decode": mean_ci(samples),
            "samples": samples, "verdict_vs_rest": None, "decode_vs_rest": None, "flags": []}


def test_of_two_replicas_that_differ_the_worse_is_flagged_whichever_comes_first():
    from brainbench.report.replicas import _flag, _speed_gap, _verdict_gap

    for order in (1, -1):
        figs = [_fig("good", 10, 16, [4.6, 4.7, 4.8] * 5), _fig("bad", 0, 16, [2.6, 2.7, 2.8] * 5)][::order]
        _flag(figs, _verdict_gap, "verdict_vs_rest")
        assert {f["url"]: bool(f["flags"]) for f in figs} == {"good": False, "bad": True}
        for f in figs:
            f["flags"] = []
        _flag(figs, _speed_gap, "decode_vs_rest")  # the slower one, though |log a/b| = |log b/a|
        assert {f["url"]: bool(f["flags"]) for f in figs} == {"good": False, "bad": True}
