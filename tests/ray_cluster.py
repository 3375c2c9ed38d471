"""A real Ray cluster on this machine (127.0.0.1) for the --ray tests and bench/ray_overhead.py: a head and
worker nodes, each a `ray start --block` process group that this helper started and tears down itself."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
SRC = str(Path(__file__).resolve().parents[1] / "src")
FAST_DEATH = {"RAY_health_check_period_ms": "500", "RAY_health_check_timeout_ms": "1000",
              "RAY_health_check_failure_threshold": "3", "RAY_health_check_initial_delay_ms": "0"}
"""A killed node is declared dead in about 2 s (Ray's default is about 15 s)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, head_cpus: int = 1):
        self.temp = tempfile.mkdtemp(prefix="bbray")  # short: Ray's socket paths must fit in 107 characters
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {**os.environ, **FAST_DEATH, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]),
                    "RAY_USAGE_STATS_ENABLED": "0"}
        self.nodes: list[subprocess.Popen] = []
        self.head = self._start(["--head", f"--port={self.port}", f"--num-cpus={head_cpus}", "--include-dashboard=false",
                                 f"--temp-dir={self.temp}"])

    def _start(self, args: list[str]) -> subprocess.Popen:
        log = open(Path(self.temp) / f"node-{len(self.nodes)}.log", "w")
        p = subprocess.Popen([RAY, "start", "--block", "--node-ip-address=127.0.0.1", "--disable-usage-stats", *args],
                             env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.nodes.append(p)
        return p

    def add_worker(self, cpus: int = 1, resources: dict[str, float] | None = None) -> subprocess.Popen:
        return self._start([f"--address={self.address}", f"--num-cpus={cpus}",
                            f"--resources={json.dumps(resources or {})}"])

    def connect(self, alive: int, timeout: float = 180) -> None:
        """ray.init in this process, once `alive` nodes have joined."""
        import ray

        deadline = time.time() + timeout
        while True:
            try:
                if not ray.is_initialized():
                    ray.init(address=self.address, _node_ip_address="127.0.0.1", log_to_driver=False)
                if sum(n["Alive"] for n in ray.nodes()) >= alive:
                    return
            except (ConnectionError, RuntimeError):
                pass
            if time.time() > deadline:
                raise TimeoutError(f"Ray cluster at {self.address}: fewer than {alive} nodes after {timeout}s")
            time.sleep(1)

    def wait_nodes(self, alive: int, timeout: float = 180) -> None:
        import ray

        deadline = time.time() + timeout
        while sum(n["Alive"] for n in ray.nodes()) != alive:
            if time.time() > deadline:
                raise TimeoutError(f"Ray cluster: not {alive} alive nodes after {timeout}s")
            time.sleep(0.5)

    @staticmethod
    def kill(node: subprocess.Popen) -> None:
        """The node lost: SIGKILL to its whole process group (raylet, workers and the servers they started)."""
        try:
            os.killpg(node.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        node.wait(10)

    def close(self) -> None:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        for p in reversed(self.nodes):  # workers first; SIGTERM: `ray start --block` stops what it started
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    pass
            try:
                os.killpg(p.pid, signal.SIGKILL)  # anything of that node still running
            except ProcessLookupError:
                pass
        shutil.rmtree(self.temp, ignore_errors=True)
