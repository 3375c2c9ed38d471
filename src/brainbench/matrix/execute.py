"""Where profiles run: here, one after another (`Local`), or as Ray tasks spread over a cluster (`ray_exec.RayExecutor`,
`--ray`). Both call `run_profile`, the one per-profile function (start the server, run the pending legs, stop it),
and both leave the same rows in the same run directory: one code path, two executors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from ..profiles.schema import Profile
from .engine import Log, ProfileRun, Progress

Job = tuple[Profile, Path]
"""A profile and the run directory (on this machine) its rows end up in."""


def run_profile(profile: Profile, run_dir: Path, log: Log = lambda s: None,
                progress: Progress | None = None) -> dict[str, Any]:
    """Run what `run_dir` does not hold yet for `profile`; the profile record (status, reason, legs)."""
    return ProfileRun(profile, run_dir, log, progress).run()


class Executor(Protocol):
    def run(self, jobs: list[Job], started: Callable[[int], None] = lambda i: None) -> Iterator[tuple[int, dict[str, Any]]]:
        """Run every job; yields (index, record) as each ends. `started(i)` when job i starts (or is queued)."""
        ...  # pragma: no cover

    def close(self) -> None: ...  # pragma: no cover


class Local:
    """One profile after another, in this process."""

    def __init__(self, log: Log = lambda s: None, progress: Progress | None = None):
        self.log, self.progress = log, progress

    def run(self, jobs: list[Job], started: Callable[[int], None] = lambda i: None) -> Iterator[tuple[int, dict[str, Any]]]:
        for i, (p, d) in enumerate(jobs):
            started(i)
            yield i, run_profile(p, d, self.log, self.progress)

    def close(self) -> None:
        pass


def run_one(executor: Executor, profile: Profile, run_dir: Path) -> dict[str, Any]:
    """One profile through `executor` (a sweep's experiments, one at a time)."""
    return next(iter(executor.run([(profile, run_dir)])))[1]


def make_executor(ray: str | None, log: Log, progress: Progress | None = None, pin: bool = False) -> Executor:
    """`Local`, or (`--ray ADDRESS`) a `RayExecutor`; `pin`: keep every task on the node of the first one."""
    if not ray:
        return Local(log, progress)
    from .ray_exec import RayExecutor

    return RayExecutor(ray, log, pin=pin)
