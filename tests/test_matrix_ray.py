"""`matrix --ray` on a real local Ray cluster (tests/ray_cluster.py: a head, and a worker whose `fakegpu` resource
stands in for a GPU, all on 127.0.0.1): the same stored results as a local matrix, resume, a node killed mid-leg.
The store-merge and error tests at the top need no cluster."""

import json
import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from brainbench.matrix.run import run_matrix, stored_profiles
from brainbench.profiles.schema import profile_from_data
from brainbench.store import RunStore
from brainbench.store.rows import added, dump, merge
from matrix_fixtures import fake_profile, write_pack
from ray_cluster import SRC, Cluster
from test_cli import bb, one_line_error


def _stored(run_dir):
    """What must match between two runs of one profile: attempts and verdicts by key, leg states, result rows."""
    with RunStore(run_dir) as s:
        verdicts = {k: (v["passed"], v["clean"], tuple(v["failures"])) for k, v in s.verdicts().items()}
        legs = {n: (st["status"], st["leg_id"]) for n, st in (s.get_meta("legs") or {}).items()}
        return {"attempts": sorted(r.key for r in s.attempts()), "status": s.count(), "verdicts": verdicts,
                "legs": legs, "results": sorted((r["kind"], r["name"]) for r in s.results())}


def _starts(run_dir):
    return sum(ln.startswith("$ ") for ln in (Path(run_dir) / "server.log").read_text().splitlines())


# -- no cluster needed -------------------------------------------------------------------------------------


def test_merging_the_same_rows_twice_stores_them_once(tmp_path):
    src = fake_profile(tmp_path, "src")
    run_matrix([src], tmp_path / "m")
    with RunStore(tmp_path / "m" / "src") as s:
        rows = dump(s)
    with RunStore(tmp_path / "copy", create=True) as dst:
        first = merge(dst, rows)
        again = merge(dst, rows)
        before = dump(dst)
        dst.log_event("late", "one more")
        new = added(dump(dst), before)
    assert first["attempts"] == 4 and first["results"] == 3 and again["attempts"] == again["results"] == 0
    assert again["events"] == 0
    assert [e[3] for e in new["events"]] == ["late"] and not new["attempts"] and not new["results"]
    assert _stored(tmp_path / "copy") == _stored(tmp_path / "m" / "src")


def test_profile_resources_are_validated_and_not_part_of_the_identity(tmp_path):
    base = {"name": "x", "server": {"kind": "endpoint", "base_url": "http://127.0.0.1:1/v1", "model": "m"}}
    p = profile_from_data({**base, "resources": {"gpus": 1, "a100": 0.5}}, "x.yaml")
    assert p.resources == {"gpus": 1, "a100": 0.5}
    assert p.identity() == profile_from_data(base, "x.yaml").identity()  # scheduling, not configuration
    with pytest.raises(Exception, match=r"x.yaml: resources: .*must be > 0"):
        profile_from_data({**base, "resources": {"gpus": 0}}, "x.yaml")
    with pytest.raises(Exception, match=r"x.yaml: resources: resource name '1gpu'"):
        profile_from_data({**base, "resources": {"1gpu": 1}}, "x.yaml")


def test_profile_resources_become_ray_options_and_missing_ones_are_named():
    from brainbench.matrix.ray_exec import _missing, ray_options

    opts = ray_options({"gpus": 1, "cpus": 2, "memory_gb": 1.5, "h100": 1})
    assert opts == {"num_gpus": 1, "num_cpus": 2, "memory": 1610612736, "resources": {"h100": 1}}
    have = {"CPU": 4.0, "GPU": 1.0, "memory": 8e9}
    assert _missing(opts, have) == {"h100": 1}  # the task would wait for a node that has one
    assert _missing(ray_options({"gpus": 2}), have) == {"GPU": 2}
    assert _missing(ray_options({}), have) == {}


def test_ray_missing_is_one_line(tmp_path):
    fake_profile(tmp_path, "p")
    shadow = tmp_path / "noray" / "ray"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no ray here')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "noray"), os.environ.get("PYTHONPATH", "")])}
    proc = bb("matrix", str(tmp_path / "p.yaml"), "--ray", "auto", "-o", str(tmp_path / "m"), env=env)
    one_line_error(proc, "pip install 'brainbench[ray]'")


def test_unreachable_ray_address_is_one_line_and_quick(tmp_path):
    fake_profile(tmp_path, "p")
    t0 = time.monotonic()
    proc = bb("matrix", str(tmp_path / "p.yaml"), "--ray", "127.0.0.1:1", "-o", str(tmp_path / "m"), timeout=60)
    one_line_error(proc, "--ray 127.0.0.1:1: cannot reach a Ray cluster (127.0.0.1:1: Connection refused)")
    assert time.monotonic() - t0 < 30  # ray.init alone retried this address for 10+ minutes


# -- on a real local Ray cluster ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("ray", reason="the ray extra (pip install -e '.[dev]' brings it)")
    c = Cluster(head_cpus=2)
    try:
        c.add_worker(cpus=1, resources={"fakegpu": 1})
        c.connect(alive=2)
        yield c
    finally:
        c.close()


def _ray():
    from brainbench.matrix.ray_exec import RayExecutor

    return RayExecutor("unused: this process is connected already", print)


def _fakegpu_node():
    import ray

    return next(n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("fakegpu"))


def _brain_small(root):
    """The real embedded server, kept small: on a loaded 2-core machine its speed leg alone took minutes (the
    fake profile brings the speed rows)."""
    data = {"name": "small", "server": {"kind": "llama-server", "brain": "brain-small", "parallel": 1,
                                        "ctx_per_slot": 2048},
            "warmup": {"requests": 0}, "resources": {"cpus": 1},
            "legs": [{"type": "agentic", "packs": ["mini"], "pack_dirs": [str(write_pack(root))], "limit_per_pack": 2}]}
    return profile_from_data(data, str(root / "small.yaml"), root)


@pytest.mark.ray
@pytest.mark.integration
def test_ray_matrix_stores_what_a_local_matrix_stores(cluster, tmp_path):
    profiles = [_brain_small(tmp_path), fake_profile(tmp_path, "fake", resources={"fakegpu": 1})]
    local = run_matrix(profiles, tmp_path / "local")
    on_ray = run_matrix(profiles, tmp_path / "ray", print, executor=_ray())
    for p in profiles:
        assert _stored(tmp_path / "ray" / p.name) == _stored(tmp_path / "local" / p.name), p.name
        assert _starts(tmp_path / "ray" / p.name) == 1  # the node's server log came back with the rows
    st = {e["name"]: e for e in on_ray["profiles"]}
    assert [e["status"] for e in local["profiles"]] == [st[p.name]["status"] for p in profiles] == ["done", "done"]
    assert st["fake"]["node_id"] == _fakegpu_node()  # it went where its resource is
    assert st["fake"]["ended"] < st["small"]["ended"]  # at once: the second profile did not wait for the first
    assert _stored(tmp_path / "ray" / "small")["status"] == {"completed": 2}

    # resume: nothing pending, no task, no server
    again = run_matrix(stored_profiles(tmp_path / "ray"), tmp_path / "ray", executor=_ray())
    assert again["runs"] == 2 and _starts(tmp_path / "ray" / "fake") == 1
    # a changed leg is a new leg: only it runs on the node, seeded with the stored rows (attempts reused)
    changed = fake_profile(tmp_path, "fake", resources={"fakegpu": 1},
                           legs=[{"type": "speed", "requests": 3, "max_tokens": 8, "warmup": 0},
                                 {"type": "agentic", "packs": ["mini"], "pack_dirs": [str(write_pack(tmp_path))]}])
    run_matrix([changed], tmp_path / "ray", executor=_ray())
    after = _stored(tmp_path / "ray" / "fake")
    assert after["status"] == {"completed": 4} and after["attempts"] == _stored(tmp_path / "local" / "fake")["attempts"]
    assert after["results"].count(("speed", "speed")) == 2 and _starts(tmp_path / "ray" / "fake") == 2


def _node_store(marker, here, timeout=120):
    """The run store the node's task is writing, found through its fake server (marked by its --answer), not
    under `here` (the local run's)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                log = os.readlink(f"/proc/{pid}/fd/1")
            except OSError:
                continue
            if marker.encode() in cmd and not log.startswith(str(here)):
                return Path(log).parent
        time.sleep(0.2)
    raise TimeoutError("the task's server never started")


def _attempts_in(run_dir, at_least, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with sqlite3.connect(f"file:{run_dir}/brainbench.sqlite?mode=ro", uri=True) as c:
                n = c.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
            if n >= at_least:
                return n
        except sqlite3.Error:
            pass
        time.sleep(0.1)
    raise TimeoutError("no attempt stored on the node")


@pytest.mark.ray
def test_node_killed_mid_leg_loses_nothing_and_doubles_nothing(cluster, tmp_path):
    legs = [{"type": "agentic", "packs": ["mini"], "pack_dirs": [str(write_pack(tmp_path))], "trials": 2},
            {"type": "speed", "requests": 2, "max_tokens": 8, "warmup": 0}]
    marker = f"OK-{os.getpid()}-killed"
    slow = fake_profile(tmp_path, "slow", ("--answer", marker, "--chunk-gap", "0.1"), legs=legs,
                        resources={"fakegpu": 1})
    run_matrix([slow], tmp_path / "local")
    out: dict = {}
    t = threading.Thread(target=lambda: out.update(run_matrix([slow], tmp_path / "ray", print, executor=_ray())))
    t.start()
    node_dir = _node_store(marker, tmp_path)
    stored_on_node = _attempts_in(node_dir, 2)  # mid-leg: attempts stored on the node, 8 to go
    victim = cluster.nodes[1]
    Cluster.kill(victim)  # the node is lost with its rows: Ray runs the task again where fakegpu is
    shutil.rmtree(node_dir.parent, ignore_errors=True)  # the killed task's temp dir (nobody left to remove it)
    cluster.add_worker(cpus=1, resources={"fakegpu": 1})
    t.join(300)
    assert not t.is_alive()
    rec = out["profiles"][0]
    assert rec["status"] == "done", rec
    assert 2 <= stored_on_node < 8
    assert rec["node_id"] == _fakegpu_node()  # the replacement node, not the killed one
    ray_rows, local_rows = _stored(tmp_path / "ray" / "slow"), _stored(tmp_path / "local" / "slow")
    assert ray_rows == local_rows
    assert ray_rows["status"] == {"completed": 8} and len(ray_rows["verdicts"]) == 8
    assert ray_rows["results"] == [("agentic", "agentic"), ("server_start", "start"), ("speed", "speed")]
    assert _starts(tmp_path / "ray" / "slow") == 1  # only the try that came back


@pytest.mark.ray
def test_matrix_command_with_ray_address(cluster, tmp_path):
    fake_profile(tmp_path, "cli", resources={"fakegpu": 1})
    proc = bb("matrix", str(tmp_path / "cli.yaml"), "--ray", cluster.address, "--json", "-o", str(tmp_path / "m"),
              timeout=300, env={"PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])})
    assert proc.returncode == 0, proc.stderr
    man = json.loads(proc.stdout)  # the task's log lines went to stderr, not into the JSON
    assert man["profiles"][0]["status"] == "done" and man["profiles"][0]["node_id"] == _fakegpu_node()
    assert "cli: done on" in proc.stderr
    assert _stored(tmp_path / "m" / "cli")["status"] == {"completed": 4}


@pytest.mark.ray
def test_sweep_on_ray_keeps_its_experiments_on_one_node(cluster, tmp_path):
    from brainbench.matrix.ray_exec import RayExecutor
    from brainbench.matrix.sweep import Sweep, SweepOptions

    opts = SweepOptions(params=[("chunk_gap", ["0.005"]), ("broken", ["true"])])
    base = fake_profile(tmp_path, "sw", ("--chunk-gap", "0.02"))
    data = Sweep(base, tmp_path / "sw", opts, print, executor=RayExecutor("connected", print, pin=True)).run()
    assert [e["status"] for e in data["experiments"]] == ["baseline", "kept", "rejected"]  # broken: not kept
    nodes = set()
    for e in data["experiments"]:
        with RunStore(tmp_path / "sw" / e["dir"]) as s:
            nodes.add(s.get_meta("profile_status")["node_id"])
    assert len(nodes) == 1  # speeds compared on one machine


@pytest.mark.ray
def test_a_task_that_never_comes_back_is_a_failed_profile_not_a_traceback(cluster, tmp_path):
    import ray

    @ray.remote(max_retries=0)
    def broken_node():
        raise OSError("the node image has no brainbench")

    p = fake_profile(tmp_path, "lost")
    run_matrix([p.model_copy(update={"legs": p.legs[:1]})], tmp_path / "m")  # the speed leg is stored before
    rec = _ray()._land(broken_node.remote(), p, tmp_path / "m" / "lost")
    assert rec["status"] == "failed"
    assert rec["reason"] == "ray task failed on its node: OSError: the node image has no brainbench"
    assert rec["legs"]["speed"]["status"] == "done"  # what was stored stays
    assert rec["legs"]["agentic"]["status"] == "not_run"
    with RunStore(tmp_path / "m" / "lost") as s:
        assert [e["kind"] for e in s.infra_events()] == ["profile_lost"]
