"""Run one profile into one run directory: start the server, wait until healthy, warm up, run the legs, stop.

The run directory is an ordinary brainbench run directory (`brainbench score/export` work on it): agentic
attempts in the attempts table, speed and soak results as `results` rows, the leg states in meta `legs`.
A leg stored as done (same profile identity, same leg settings) is skipped on the next run: resumable.
A server that dies mid-leg ends that leg as `crashed` (what it stored stays); the profile's restart policy
says whether the remaining legs get a restarted server or are skipped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..backend.fetch import SetupError
from ..core.errors import BrainbenchError
from ..profiles.launch import ServerFailed, ServerHandle, warm_up
from ..profiles.schema import AgenticLeg, Profile, SoakLeg, SpeedLeg, leg_name
from ..servers.handle import ServerDied, guarded  # the one watchdog, shared with `run`
from ..store.db import RunStore
from .legs import leg_id, run_agentic, run_speed

Log = Callable[[str], None]
Progress = Callable[[str, int, int], None]




def _compact(leg: Any, result: dict[str, Any]) -> dict[str, Any]:
    """The few figures a summary table needs (the full result is in the results table)."""
    if isinstance(leg, SpeedLeg):
        return {k: result.get(k) for k in ("decode_tps_median", "decode_tps_cv", "ttft_ms_median", "errors")}
    if isinstance(leg, AgenticLeg):
        return {k: result.get(k) for k in ("packs", "attempts", "pass", "clean", "infra_errors")}
    keys = ("passed", "reasons", "sessions_run", "sessions_complete", "turns", "silent_empty", "crashes",
            "tps_retention", "restarts", "truncated", "decode_tps_median")
    out = {k: result.get(k) for k in keys}
    out["memory"] = {k: v for k, v in (result.get("memory") or {}).items() if k != "samples"}
    return out


class ProfileRun:
    """One profile against its server, stored in `run_dir`."""

    def __init__(self, profile: Profile, run_dir: Path, log: Log = lambda s: None, progress: Progress | None = None):
        self.profile = profile
        self.run_dir = Path(run_dir)
        self.log = log
        self.progress = progress or (lambda name, d, t: None)
        self.restarts = 0

    def _pending(self, state: dict[str, Any]) -> list[Any]:
        out = []
        for leg in self.profile.legs:
            st = state.get(leg_name(leg)) or {}
            if st.get("status") == "done" and st.get("leg_id") == leg_id(self.profile, leg):
                continue
            out.append(leg)
        return out

    def todo(self) -> list[Any]:
        """The legs a run would run now (none: everything is stored as done), without writing anything."""
        if not (self.run_dir / "brainbench.sqlite").exists():
            return list(self.profile.legs)
        with RunStore(self.run_dir) as store:
            return self._pending(dict(store.get_meta("legs") or {}))

    def lost(self, reason: str) -> dict[str, Any]:
        """The record of a run that never came back (its executor lost it): an infrastructure event, and the
        legs not stored as done are `not_run` with the reason; what was stored before stays."""
        with RunStore(self.run_dir, create=True) as store:
            store.log_event("profile_lost", reason)
            state: dict[str, Any] = dict(store.get_meta("legs") or {})
            for leg in self._pending(state):
                state[leg_name(leg)] = {"status": "not_run", "reason": reason, "leg_id": leg_id(self.profile, leg)}
            self._save(store, state)
            return self._record(state, "failed", reason, store)

    def run(self) -> dict[str, Any]:
        """Run what is not stored yet; returns the profile record (status, reason, legs)."""
        p = self.profile
        store = RunStore(self.run_dir, create=True)
        try:
            store.set_meta("profile", {**p.model_dump(mode="json"), "source": p.source})
            if not store.get_meta("host"):
                from ..report.host import host_info

                store.set_meta("host", host_info())
            state: dict[str, Any] = dict(store.get_meta("legs") or {})
            pending = self._pending(state)
            if not pending:
                return self._record(state, "done", None, store)
            return self._run_pending(store, state, pending)
        finally:
            store.close()

    def _save(self, store: RunStore, state: dict[str, Any]) -> None:
        store.set_meta("legs", state)

    def _record(self, state: dict[str, Any], status: str, reason: str | None, store: RunStore) -> dict[str, Any]:
        rec = {"name": self.profile.name, "identity": self.profile.identity(), "status": status, "reason": reason,
               "dir": str(self.run_dir), "legs": {leg_name(lg): state.get(leg_name(lg), {"status": "not_run"}) for lg in self.profile.legs},
               "server": store.get_meta("server"), "restarts": self.restarts}
        store.set_meta("profile_status", {k: v for k, v in rec.items() if k != "legs"})
        return rec

    def _start(self, server: ServerHandle, store: RunStore) -> None:
        t0 = time.monotonic()
        server.start()
        store.set_meta("server", server.public())
        store.set_meta("command_line", server.command_line())
        warm = asyncio.run(warm_up(server.endpoint, self.profile.warmup))
        store.put_result("server_start", "start", self.profile.name,
                         {"ready_s": round(time.monotonic() - t0, 3), "warmup": warm, "start": server.starts})
        self.log(f"{self.profile.name}: server healthy in {time.monotonic() - t0:.1f}s at {server.base_url}")

    def _run_pending(self, store: RunStore, state: dict[str, Any], pending: list[Any]) -> dict[str, Any]:
        p = self.profile
        server = ServerHandle(p, self.run_dir / "server.log")
        try:
            try:
                self._start(server, store)
            except (ServerFailed, SetupError) as e:
                phase = getattr(e, "phase", "start")
                store.log_event("server_failed", str(e))
                self.log(f"{p.name}: server failed ({phase}): {e}")
                for leg in pending:
                    state[leg.name] = {"status": "not_run", "reason": f"server failed to {phase}",
                                       "leg_id": leg_id(p, leg)}
                self._save(store, state)
                return self._record(state, "failed", f"{phase}: {e}", store)
            stop_reason = None
            for leg in pending:
                lid = leg_id(p, leg)
                if stop_reason:
                    state[leg.name] = {"status": "skipped", "reason": stop_reason, "leg_id": lid}
                    continue
                if not server.alive():
                    if not self._maybe_restart(server, store, "server was dead before the leg"):
                        stop_reason = f"server died ({server.exit_info()})"
                        state[leg.name] = {"status": "skipped", "reason": stop_reason, "leg_id": lid}
                        continue
                state[leg.name] = {"status": "running", "leg_id": lid, "started": time.time()}
                self._save(store, state)
                t0 = time.monotonic()
                self.log(f"{p.name}: leg {leg.name} ({leg.type})")
                try:
                    result = self._run_leg(leg, server, store)
                    state[leg.name] = {"status": "done", "leg_id": lid, "wall_s": round(time.monotonic() - t0, 2),
                                       "result": _compact(leg, result)}
                    if isinstance(leg, SoakLeg) and result.get("dead"):
                        stop_reason = "server died during the soak and was not restarted"
                except ServerDied as e:
                    store.log_event("server_died", f"leg {leg.name}: {e}")
                    self.log(f"{p.name}: {leg.name}: {e}")
                    state[leg.name] = {"status": "crashed", "reason": str(e), "leg_id": lid,
                                       "wall_s": round(time.monotonic() - t0, 2)}
                    if not self._maybe_restart(server, store, str(e)):
                        stop_reason = "server died in an earlier leg"
                except BrainbenchError as e:
                    self.log(f"{p.name}: {leg.name}: error: {e}")
                    state[leg.name] = {"status": "error", "reason": str(e), "leg_id": lid,
                                       "wall_s": round(time.monotonic() - t0, 2)}
                self._save(store, state)
            self._save(store, state)
            statuses = [state[leg_name(lg)]["status"] for lg in p.legs]
            status = "done" if all(s == "done" for s in statuses) else "partial"
            reason = next((state[leg_name(lg)].get("reason") for lg in p.legs if state[leg_name(lg)]["status"] != "done"), None)
            return self._record(state, status, reason, store)
        finally:
            server.stop()

    def _maybe_restart(self, server: ServerHandle, store: RunStore, why: str) -> bool:
        if self.profile.restart != "on_crash" or self.restarts >= self.profile.max_restarts:
            return False
        self.restarts += 1
        self.log(f"{self.profile.name}: restarting the server ({self.restarts}/{self.profile.max_restarts}): {why}")
        store.log_event("server_restart", why)
        try:
            server.stop()
            self._start(server, store)
            return True
        except (ServerFailed, SetupError) as e:
            store.log_event("server_failed", f"restart: {e}")
            return False

    def _run_leg(self, leg: Any, server: ServerHandle, store: RunStore) -> dict[str, Any]:
        label = self.profile.name
        if isinstance(leg, SpeedLeg):
            result = asyncio.run(guarded(run_speed(leg, server.endpoint), server))
            # the shape `brainbench speed` stores (decode_tps summary, sweep levels), so reports read both alike
            store.put_result("speed", leg_name(leg), label, {**result, "decode_tps": result["decode"].get("decode_tps"),
                                                        "sweep": (result.get("sweep") or {}).get("levels", [])})
            return result
        if isinstance(leg, AgenticLeg):
            prog = lambda d, t: self.progress(f"{label} {leg.name}", d, t)  # noqa: E731
            result = asyncio.run(guarded(run_agentic(leg, server.endpoint, store, label, server.public(), prog), server))
            store.put_result("agentic", leg_name(leg), label, result)
            return result
        if isinstance(leg, SoakLeg):
            from .soak import run_soak

            prog = lambda d, t: self.progress(f"{label} {leg.name}", d, t)  # noqa: E731
            return asyncio.run(run_soak(leg, server, store, label, lambda s: self.log(f"{label}: {leg.name}: {s}"), prog))
        raise BrainbenchError(f"unknown leg type {leg.type!r}")  # pragma: no cover
