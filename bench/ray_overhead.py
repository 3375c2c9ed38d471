"""What `matrix --ray` costs over a local matrix: the same fake-process profile, run both ways, in pairs.

    PYTHONPATH=src:tests .venv/bin/python bench/ray_overhead.py              # a local 2-node cluster, 7 pairs
    PYTHONPATH=src:tests .venv/bin/python bench/ray_overhead.py --pairs 11 --address 127.0.0.1:6379

Without --address a Ray cluster is started on this machine (tests/ray_cluster.py: a head and one worker with a
`fakegpu` resource, 127.0.0.1) and stopped at the end. Each pair runs the profile (a real fake-server process;
a speed leg and a 4-scenario agentic leg) into a fresh matrix directory locally, then as a Ray task on the
`fakegpu` node (or the reverse, alternating, so a drifting machine favours neither). Printed: the wall time of
one profile either way (median, and the spread of the pairs), the difference per profile (one task: seed,
schedule, server start on the node, rows back, merge) and per leg. The first Ray task (a cold worker) is
reported apart and not in the pairs.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from brainbench.matrix.ray_exec import RayExecutor
from brainbench.matrix.run import run_matrix
from matrix_fixtures import fake_profile
from ray_cluster import Cluster


def _one(profile, out: Path, executor=None) -> float:
    t0 = time.perf_counter()
    man = run_matrix([profile], out, executor=executor)
    dt = time.perf_counter() - t0
    if man["profiles"][0]["status"] != "done":
        sys.exit(f"{out}: {man['profiles'][0]['status']}: {man['profiles'][0].get('reason')}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=7)
    ap.add_argument("--address", help="An existing cluster with a node that has the fakegpu resource.")
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bb-rayov-"))
    profile = fake_profile(root, "ovh", resources={"fakegpu": 1})
    legs = len(profile.legs)
    cluster = None
    t0 = time.perf_counter()
    if a.address:
        import ray

        ray.init(address=a.address, log_to_driver=False)
    else:
        cluster = Cluster(head_cpus=1)
        cluster.add_worker(cpus=1, resources={"fakegpu": 1})
        cluster.connect(alive=2)
    up = time.perf_counter() - t0
    try:
        ex = RayExecutor("connected")
        cold = _one(profile, root / "cold", ex)
        local, remote = [], []
        for i in range(a.pairs):
            order = [("local", None), ("ray", ex)] if i % 2 == 0 else [("ray", ex), ("local", None)]
            for name, e in order:
                (local if e is None else remote).append(_one(profile, root / f"{name}-{i}", e))
    finally:
        if cluster:
            cluster.close()
        shutil.rmtree(root, ignore_errors=True)
    diffs = [r - lo for r, lo in zip(remote, local)]
    med = statistics.median
    print(f"cluster {'reached' if a.address else 'started (head + 1 worker)'} in {up:.1f}s; "
          f"first Ray task (cold worker) {cold:.2f}s")
    print(f"one profile ({legs} legs: speed 2 requests, agentic 4 attempts), {a.pairs} pairs:")
    print(f"  local  median {med(local):.3f}s  (min {min(local):.3f}, max {max(local):.3f})")
    print(f"  ray    median {med(remote):.3f}s  (min {min(remote):.3f}, max {max(remote):.3f})")
    print(f"  overhead per profile (one task): median {med(diffs):+.3f}s (pairs {min(diffs):+.3f} .. {max(diffs):+.3f})")
    print(f"  overhead per leg: {med(diffs) / legs:+.3f}s")


if __name__ == "__main__":
    main()
