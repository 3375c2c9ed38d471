"""Start the server a profile names, wait until it is healthy, warm it up, watch it, stop it.

The server itself is a `brainbench.servers.RunningServer` of the profile's kind (the registry knows how to
start each kind, when it is healthy and how it is recorded); this module adds the profile: the model name
requests carry, the profile identity in the record, and the warm-up.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..client import ChatClient, Endpoint
from ..core.errors import BrainbenchError
from ..servers import RunningServer, ServerFailed, stop_all
from .schema import Profile, ServerConfig, Warmup

__all__ = ["ServerFailed", "ServerHandle", "served_model", "stop_all", "warm_up"]


def served_model(profile: Profile) -> str:
    """The model name requests carry: the profile's model, else its brain, else the profile name."""
    s = profile.server
    return s.model or getattr(s, "brain", None) or profile.name


class ServerHandle(RunningServer):
    """One profile's server. `start()` returns once it is healthy; `endpoint` is where to send requests."""

    def __init__(self, profile: Profile, log_path: Path):
        super().__init__(profile.server, log_path, served_model(profile))
        self.profile = profile

    @property
    def spec(self) -> ServerConfig:
        return self.cfg

    def public(self) -> dict[str, Any]:
        """The server record (one shape for run, speed and matrix), with the profile's identity."""
        return self.record(profile_id=self.profile.identity()).dump()


async def warm_up(endpoint: Endpoint, warmup: Warmup) -> dict[str, Any]:
    """Send the warm-up requests; raises ServerFailed when none succeeds."""
    if warmup.requests == 0:
        return {"requests": 0}
    t0 = time.monotonic()
    errors = []
    ok = 0
    async with ChatClient(endpoint, timeout=warmup.timeout_s, retries=2, backoff=0.5) as client:
        for _ in range(warmup.requests):
            try:
                await client.chat([{"role": "user", "content": warmup.prompt}], max_tokens=warmup.max_tokens,
                                  temperature=0)
                ok += 1
            except BrainbenchError as e:
                errors.append(str(e))
    if ok == 0:
        raise ServerFailed(f"warm-up failed: {errors[-1] if errors else 'no reply'}", phase="warmup")
    return {"requests": warmup.requests, "ok": ok, "wall_s": round(time.monotonic() - t0, 3)}
