"""A hostile disk: damaged databases and rows, a second writer, a read-only mount, a full disk.

Each is one line (StoreError) or a named, skipped row; nothing stored before is lost.
"""

import os
import sqlite3
import subprocess
import uuid

import pytest

from brainbench.core.records import AttemptRecord
from brainbench.core.verdict import Verdict
from brainbench.store import RunStore, StoreError
from brainbench.store.db import DB_NAME


def rec(i: int, status: str = "completed") -> AttemptRecord:
    return AttemptRecord(key=f"k{i:03d}", scenario_id=f"s{i}", pack="p", scenario_hash="h", model="m",
                         config_hash="c", trial=0, status=status, error="x" * 2000)


def filled(tmp_path, n=20):
    run = tmp_path / "run"
    with RunStore(run, create=True) as st:
        for i in range(n):
            st.put_attempt(rec(i), Verdict(passed=i % 2 == 0, clean=i % 2 == 0))
    return run


def test_verdict_is_stored_with_its_attempt_and_unscored_ones_are_found(tmp_path):
    run = filled(tmp_path, 3)
    with RunStore(run) as st:
        st.put_attempt(rec(9))  # stored without a verdict (as an older brainbench or a raising hook left it)
        assert set(st.verdicts()) == {"k000", "k001", "k002"}
        assert st.unscored() == {"k009"}


def test_a_damaged_row_is_skipped_and_named(tmp_path):
    run = filled(tmp_path)
    with sqlite3.connect(run / DB_NAME) as con:
        con.execute("UPDATE attempts SET record='{not json' WHERE key='k007'")
        con.execute("UPDATE verdicts SET failures='[' WHERE attempt_key='k003'")
    with RunStore(run) as st:
        keys = [r.key for r in st.attempts()]
        verdicts = st.verdicts()
    assert len(keys) == 19 and "k007" not in keys
    assert st.skipped == ["k007", "verdict k003"] and len(verdicts) == 19


@pytest.mark.parametrize("sql, words", [
    ("UPDATE meta SET value='one' WHERE key='schema_version'", "schema version 'one' is not a number"),
    ("INSERT OR REPLACE INTO meta VALUES ('scenarios', '{oops')", "meta 'scenarios' is not valid JSON"),
])
def test_damaged_meta_is_one_line(tmp_path, sql, words):
    run = filled(tmp_path, 2)
    with sqlite3.connect(run / DB_NAME) as con:
        con.execute(sql)
    with pytest.raises(StoreError) as err:
        with RunStore(run) as st:
            st.get_meta("scenarios")
    assert words in str(err.value)


def test_a_database_damaged_mid_file_is_one_line(tmp_path):
    run = filled(tmp_path, 200)
    with sqlite3.connect(run / DB_NAME) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    path = run / DB_NAME
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 8192] = os.urandom(8192)
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError) as err:
        with RunStore(run) as st:
            list(st.attempts())
            st.verdicts()
    assert "damaged run database" in str(err.value) or "cannot open the run database" in str(err.value)


def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path):
    run = filled(tmp_path, 1)
    with RunStore(run, lock=True):
        with pytest.raises(StoreError) as err:
            RunStore(run, lock=True)
        assert f"pid {os.getpid()}" in str(err.value)
        with RunStore(run) as reader:  # readers need no lock
            assert len(list(reader.attempts())) == 1
    with RunStore(run, lock=True):  # released on close
        pass


def _mount(args: list[str]) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.fixture
def mountpoint(tmp_path):
    point = tmp_path / f"mnt-{uuid.uuid4().hex[:6]}"
    point.mkdir()
    yield point
    subprocess.run(["umount", str(point)], capture_output=True)


def test_a_read_only_run_directory_reads_but_refuses_writes(tmp_path, mountpoint):
    run = filled(tmp_path, 5)
    if not _mount(["--bind", "-o", "ro", str(run), str(mountpoint)]):
        pytest.skip("cannot bind-mount read-only here (needs root)")
    with RunStore(mountpoint) as st:
        assert st.readonly and len(list(st.attempts())) == 5 and len(st.verdicts()) == 5
        with pytest.raises(StoreError) as err:
            st.put_attempt(rec(99))
    assert "read-only" in str(err.value)
    assert sorted(p.name for p in mountpoint.iterdir()) == sorted(p.name for p in run.iterdir())


def test_a_full_disk_is_one_line_and_keeps_what_was_stored(mountpoint):
    if not _mount(["-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mountpoint)]):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    run = mountpoint / "run"
    stored = 0
    with pytest.raises(StoreError) as err:
        with RunStore(run, create=True) as st:
            for i in range(10_000):
                st.put_attempt(rec(i), Verdict(passed=True, clean=True))
                stored += 1
    assert "disk is full" in str(err.value) and "--resume" in str(err.value)
    assert stored > 5
    with RunStore(run) as st:
        assert len(list(st.attempts())) == stored


# -- the run and export commands over a hostile store ---------------------------------------------------------

import json  # noqa: E402
import sys  # noqa: E402

from brainbench.runner.run import prepare  # noqa: E402
from brainbench.testing import ByConversation  # noqa: E402
from test_runner_store import perfect_smoke, plan_for, run_plan, smoke  # noqa: E402


def bb(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "brainbench", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200"})


def test_a_second_run_on_the_same_directory_is_one_line(fake, tmp_path):
    srv = fake(ByConversation(perfect_smoke))
    run = tmp_path / "run"
    with RunStore(run, create=True, lock=True):
        proc = bb("run", "--endpoint", srv.base_url, "--model", "fake-model", "-o", str(run))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"being written by another brainbench (pid {os.getpid()})" in proc.stderr


async def test_an_attempt_stored_without_its_verdict_is_scored_by_the_next_prepare(fake, tmp_path):
    srv = fake(ByConversation(perfect_smoke))
    plan = plan_for([smoke()])
    store = await run_plan(srv, tmp_path, plan)
    key = next(iter(store.verdicts()))
    store.conn.execute("DELETE FROM verdicts WHERE attempt_key=?", (key,))
    assert store.unscored() == {key}
    assert prepare(plan, store) == []  # nothing to run again...
    assert store.unscored() == set() and store.verdicts()[key]["passed"]  # ...and the verdict is back


async def test_an_edited_scenario_is_a_new_one_and_rates_are_over_the_latest_version(fake, tmp_path):
    srv = fake(ByConversation(perfect_smoke))
    pack = smoke()
    store = await run_plan(srv, tmp_path, plan_for([pack]))
    edited = pack.model_copy(update={"scenarios": [pack.scenarios[0].model_copy(update={"max_turns": 7}),
                                                   *pack.scenarios[1:]]})
    from brainbench.client import ChatClient  # noqa: F401
    from brainbench.runner.run import execute
    from brainbench.scoring import attempt_rows, summary
    from conftest import client_for

    plan = plan_for([edited])
    todo = prepare(plan, store)
    assert [s.id for s, _ in todo] == [pack.scenarios[0].id]  # only the edited one runs again
    async with client_for(srv) as c:
        await execute(plan, c, store, todo)
    s = summary(attempt_rows(store))["fake-model"]
    assert s["overall"]["attempts"] == len(pack.scenarios) and s["superseded"] == 1


def test_export_skips_a_damaged_row_with_a_warning(tmp_path):
    run = filled(tmp_path, 4)
    with sqlite3.connect(run / DB_NAME) as con:
        con.execute("UPDATE attempts SET record='{' WHERE key='k002'")
    proc = bb("export", str(run), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["attempts"]) == 3
    assert "1 damaged row(s) skipped" in proc.stderr and "k002" in proc.stderr


def test_sigterm_mid_run_says_what_is_stored_and_how_to_finish(fake, tmp_path):
    import signal
    import time

    from brainbench.testing import Reply, ScriptedBrain

    srv = fake(ScriptedBrain([Reply.text("x " * 20, chunk_gap=0.02)]))
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "brainbench", "run", "--endpoint", srv.base_url, "--model",
                             "fake-model", "-k", "30", "-c", "2", "-o", str(run)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "300"})
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.2)
        try:
            with sqlite3.connect(run / DB_NAME) as con:
                if con.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] >= 2:
                    break
        except sqlite3.Error:
            pass
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "finished attempts are stored in" in err and f"brainbench run --resume {run}" in err.replace("\n", " ")
