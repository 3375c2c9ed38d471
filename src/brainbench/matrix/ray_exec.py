"""`--ray ADDRESS`: each profile as a Ray task on a node with the resources it declares, several at once.

No shared filesystem is assumed. The driver sends the task the profile and the rows its run directory already
holds (what `--resume` skips); the task runs `execute.run_profile` in a temporary directory on its node and
returns the rows it added, the server log and its node; the driver merges them into the one store
(`store.rows.merge`). A node lost mid-leg: Ray runs the task again on another node (`max_retries`), from the
same rows: the lost try returned nothing, so nothing is doubled, and attempts are content-keyed. A task that
still fails is recorded as the profile failing (an infrastructure event) and the matrix goes on.
"""

from __future__ import annotations

import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..core.errors import BrainbenchError
from ..profiles.schema import Profile
from ..store.db import DB_NAME, RunStore
from ..store.rows import Rows, added, dump, merge
from .engine import Log, ProfileRun
from .execute import Job, run_profile

MAX_RETRIES = 3
"""Ray re-runs a task whose worker or node died this many times (system failures only, not errors)."""
LOG_TAIL = 1 << 20
"""The last bytes of a task's server log that come back with its rows."""
NO_ROWS: Rows = {"meta": {}, "attempts": [], "verdicts": [], "events": [], "results": []}


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BrainbenchError("--ray needs Ray on this machine and on every node: pip install 'brainbench[ray]'") from None
    return ray


def ray_options(resources: dict[str, float]) -> dict[str, Any]:
    """A profile's `resources` as Ray task options: gpus, cpus, memory_gb are Ray's own; other names custom."""
    own = {"gpus": "num_gpus", "cpus": "num_cpus"}
    opts: dict[str, Any] = {own[k]: v for k, v in resources.items() if k in own}
    if "memory_gb" in resources:
        opts["memory"] = int(resources["memory_gb"] * 2**30)
    custom = {k: v for k, v in resources.items() if k not in own and k != "memory_gb"}
    if custom:
        opts["resources"] = custom
    return opts


def profile_task(profile: dict[str, Any], source: str | None, seed: Rows) -> dict[str, Any]:
    """Runs on a Ray node: the profile on a fresh store seeded with `seed`; returns the record and the new rows."""
    import ray

    p = Profile.model_validate(profile)
    p.source = source
    tmp = Path(tempfile.mkdtemp(prefix="bb-ray-"))
    try:
        d = tmp / p.name
        with RunStore(d, create=True) as store:
            merge(store, seed)
            before = dump(store)
        # stderr: Ray shows it on the driver's stderr, and the driver's stdout stays clean for --json
        rec = run_profile(p, d, lambda s: print(f"{p.name}: {s}", file=sys.stderr, flush=True))
        with RunStore(d) as store:
            rows = added(dump(store), before)
        log = d / "server.log"
        text = log.read_bytes()[-LOG_TAIL:].decode(errors="replace") if log.is_file() else ""
        return {"record": rec, "rows": rows, "server_log": text, "host": socket.gethostname(),
                "node": ray.get_runtime_context().get_node_id()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _one_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[-1] if lines else ''}"[:300]


def _missing(opts: dict[str, Any], have: dict[str, float]) -> dict[str, float]:
    """What a task asks for beyond the whole cluster's total (it would wait for a node to join)."""
    need = {"GPU": opts.get("num_gpus", 0), "CPU": opts.get("num_cpus", 0), "memory": opts.get("memory", 0),
            **opts.get("resources", {})}
    return {k: v for k, v in need.items() if v and have.get(k, 0) < v}


def _closed(address: str, timeout: float = 10.0) -> str | None:
    """Why HOST:PORT (or ray://HOST:PORT) does not accept a connection; None when it does (or is not one)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return None
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        return f"{host}:{port}: {e.strerror or e}"
    return None


class RayExecutor:
    """Profiles as Ray tasks; their rows land in the driver's run directories."""

    def __init__(self, address: str, log: Log = lambda s: None, pin: bool = False, max_retries: int = MAX_RETRIES):
        self.ray = import_ray()
        self.log, self.pin, self.max_retries = log, pin, max_retries
        self.node: str | None = None
        """The node a pinned executor keeps its tasks on (the first task's)."""
        self._own = not self.ray.is_initialized()
        if self._own:
            self._connect(address)
        self._task = self.ray.remote(profile_task)

    def _connect(self, address: str) -> None:
        closed = _closed(address)
        if closed:  # ray.init would retry an unreachable address for minutes
            raise BrainbenchError(f"--ray {address}: cannot reach a Ray cluster ({closed})")
        kw: dict[str, Any] = {"include_dashboard": False} if address == "local" else {"address": address}
        try:
            self.ray.init(log_to_driver=True, **kw)
        except Exception as e:  # noqa: BLE001 - whatever Ray raises for an unreachable cluster: one line
            raise BrainbenchError(f"--ray {address}: cannot reach a Ray cluster ({_one_line(e)})") from None
        res = self.ray.cluster_resources()
        self.log(f"ray: {len(self.ray.nodes())} node(s), " + ", ".join(f"{k} {v:g}" for k, v in sorted(res.items())
                                                                       if "node:" not in k and k != "object_store_memory"))

    def _submit(self, p: Profile, d: Path) -> Any:
        opts: dict[str, Any] = {**ray_options(p.resources), "max_retries": self.max_retries,
                                "retry_exceptions": False, "name": f"brainbench:{p.name}"}
        short = _missing(opts, self.ray.cluster_resources())
        if short:
            self.log(f"{p.name}: the cluster has no {short} now; the task waits until a node with it joins")
        if self.pin and self.node:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            opts["scheduling_strategy"] = NodeAffinitySchedulingStrategy(self.node, soft=True)
        seed = NO_ROWS
        if (d / DB_NAME).exists():
            with RunStore(d) as store:
                seed = dump(store)
        return self._task.options(**opts).remote(p.model_dump(mode="json"), p.source, seed)

    def _lost(self, p: Profile, d: Path, e: Exception) -> dict[str, Any]:
        """A task that raised on its node (not retried: it would raise again), or whose worker or node died on
        every try: the profile failed, an infrastructure event."""
        if isinstance(e, self.ray.exceptions.RayTaskError):
            reason = f"ray task failed on its node: {_one_line(getattr(e, 'cause', None) or e)}"
        else:
            reason = f"ray task lost after {self.max_retries} retries: {_one_line(e)}"
        self.log(f"{p.name}: {reason}")
        return ProfileRun(p, d, self.log).lost(reason)

    def _land(self, ref: Any, p: Profile, d: Path) -> dict[str, Any]:
        """The task's rows into `d`'s store and its server log after `d`'s; a lost task: the profile failed."""
        try:
            out = self.ray.get(ref)
        except self.ray.exceptions.RayError as e:
            return self._lost(p, d, e)
        with RunStore(d, create=True) as store:
            merge(store, out["rows"])
            rec = {**out["record"], "dir": str(d), "node": out["host"], "node_id": out["node"]}
            store.set_meta("profile_status", {k: v for k, v in rec.items() if k != "legs"})
        if out["server_log"]:
            with open(d / "server.log", "a", encoding="utf-8") as f:
                f.write(out["server_log"])
        if self.pin and self.node and out["node"] != self.node:
            self.log(f"{p.name}: ran on another node than the first ({out['host']}): speeds compare across machines")
        self.node = self.node or out["node"]
        self.log(f"{p.name}: {rec['status']} on {out['host']}")
        return rec

    def run(self, jobs: list[Job], started: Callable[[int], None] = lambda i: None) -> Iterator[tuple[int, dict[str, Any]]]:
        pending: dict[Any, int] = {}
        try:
            for i, (p, d) in enumerate(jobs):
                if not ProfileRun(p, d).todo():  # everything stored: no task, no server
                    yield i, run_profile(p, d, self.log)
                    continue
                started(i)
                pending[self._submit(p, d)] = i
                self.log(f"{p.name}: submitted" + (f" (needs {p.resources})" if p.resources else ""))
            while pending:
                ready, _ = self.ray.wait(list(pending), num_returns=1)
                i = pending.pop(ready[0])
                yield i, self._land(ready[0], *jobs[i])
        finally:
            for ref in pending:  # interrupted: stop the tasks (their servers die with their worker)
                self.ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._own:
            self.ray.shutdown()
            self._own = False
