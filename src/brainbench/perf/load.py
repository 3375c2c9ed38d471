"""The machine's load during a timed leg. A 1-minute load average above the core count means other work
shared the CPU while the leg ran, so its timings may be slower than the brain alone: say so in one line and
keep the line with the run, rather than publish a slow figure as the brain's."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

INTERVAL_S = 5.0
"""Seconds between samples while a leg runs (besides one before and one after)."""


def read_load() -> float | None:
    """The 1-minute load average; None where the OS has none (Windows)."""
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


class LoadWatch:
    """Samples the load average before, every INTERVAL_S during and after a leg (`async with`)."""

    def __init__(self, leg: str, read: Callable[[], float | None] | None = None, cores: int | None = None,
                 interval: float = INTERVAL_S) -> None:
        self.leg, self.read, self.interval = leg, read or read_load, interval
        self.cores = cores or os.cpu_count() or 1
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def _take(self) -> None:
        v = self.read()
        if v is not None:
            self.samples.append(round(v, 2))

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self._take()

    async def __aenter__(self) -> LoadWatch:
        self._take()
        self._task = asyncio.create_task(self._poll())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._take()

    @property
    def warning(self) -> str | None:
        """One line when the load average went above the core count; None otherwise (or unknown)."""
        top = max(self.samples, default=None)
        if top is None or top <= self.cores:
            return None
        return (f"load average {top:.1f} on {self.cores} cores during the {self.leg} leg: other work shared the "
                "CPU, so its timings may be slower than the brain alone")

    def result(self) -> dict[str, Any]:
        """What is stored with the leg: the samples, the cores and the warning (None when the load stayed below)."""
        return {"cores": self.cores, "samples": self.samples, "max": max(self.samples, default=None),
                "warning": self.warning}
