"""`brainbench sweep PROFILE --param NAME=v1,v2,...`: find the fastest server config that is not broken.

Each experiment is the profile with some settings changed, run as a two-leg profile: the speed leg
(single-stream decode tok/s, median and CV, through brainbench.perf) and the discipline leg (a fixed
agentic subset). The decision, in order:

- crashed: the server did not start, was never healthy, failed warm-up, or died during a leg;
- rejected (discipline): its pass rate is worse than the baseline's beyond the trial noise: the 95% interval of
  the difference (Newcombe's method, from the two Wilson intervals) lies wholly below zero; however fast it
  is (seed 004: a faster config with 38% structured-output failures);
- rejected (unstable): a request of its speed leg failed;
- kept: faster than the best so far by more than `min_gain` and more than the speed noise (the larger decode
  tok/s CV of the two configs): a milestone, it becomes the new best;
- rejected (no gain): otherwise.

`one-at-a-time` (default) walks the parameters in the order given, each value applied to the current best;
`grid` tries every combination applied to the profile. Stored experiments are reused (by config identity),
so running the same sweep again resumes it. On a machine whose load drifts, `paired` re-measures the current
best's speed just before each candidate, `confirm` measures a would-be keep again in reverse order (best,
candidate, candidate, best: ABBA) and keeps it only when both pairs agree, and `recheck` re-measures baseline
and best back to back at the end.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..profiles.launch import ServerHandle
from ..profiles.schema import AgenticLeg, Profile, ProfileError, SpeedLeg, apply_param
from .execute import Executor, Local, run_one

Log = Callable[[str], None]


@dataclass
class SweepOptions:
    params: list[tuple[str, list[str]]]
    mode: str = "one-at-a-time"
    min_gain: float = 0.03
    """A config must be this much faster (fraction) than the best so far to be kept."""
    speed: SpeedLeg | None = None
    discipline: AgenticLeg | None = None
    recheck: bool = False
    """At the end, re-measure the baseline's and the best config's speed back to back (machine drift)."""
    paired: bool = False
    """Re-measure the current best's speed just before each candidate and compare with that (a shared machine
    whose load drifts over the sweep would otherwise credit the drift to whichever config ran later)."""
    confirm: bool = False
    """A candidate that passes both gates is measured again in reverse order, candidate then best (A B B A with
    the paired measurement), and kept only when each pair shows it faster by more than the margin: one lucky
    measurement is not enough, and drift is not credited to the later config. Implies `paired`."""

    def __post_init__(self) -> None:
        self.paired = self.paired or self.confirm


@dataclass
class Experiment:
    index: int
    label: str
    changes: dict[str, str]
    identity: str
    dir: str
    status: str = "pending"
    """baseline | kept | rejected | crashed"""
    reason: str = ""
    tps: float | None = None
    tps_cv: float | None = None
    ttft_ms: float | None = None
    discipline: dict[str, Any] | None = None
    """The pass rate {k, n, rate, ci95}."""
    wall_s: float | None = None
    command_line: str = ""
    milestone: bool = False
    best_tps_after: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def sweep_profile(base: Profile, opts: SweepOptions) -> Profile:
    """The profile each experiment runs: its server, and exactly the speed and discipline legs."""
    speed = opts.speed or next((lg for lg in base.legs if isinstance(lg, SpeedLeg)), None) or SpeedLeg(type="speed")
    disc = opts.discipline or next((lg for lg in base.legs if isinstance(lg, AgenticLeg)), None) or AgenticLeg(type="agentic")
    data = base.model_dump(mode="json")
    data["legs"] = [{**speed.model_dump(mode="json"), "name": "speed"},
                    {**disc.model_dump(mode="json"), "name": "discipline"}]
    data["restart"] = "never"
    p = Profile.model_validate(data)
    p.source = base.source
    return p


def _label(changes: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in changes.items()) or "baseline"


def _pct(r: dict[str, Any] | None) -> str:
    if not r or r.get("rate") is None:
        return "–"
    lo, hi = r["ci95"]
    return f"{r['k']}/{r['n']} = {100 * r['rate']:.0f}% [{100 * lo:.0f}–{100 * hi:.0f}]"


def discipline_gate(cand: dict[str, Any] | None, ref: dict[str, Any] | None) -> tuple[bool, str]:
    """Reject when the candidate's pass rate is worse than the reference's beyond trial noise.

    "Beyond noise" is judged from the two 95% Wilson intervals with Newcombe's method for a difference of
    proportions (hybrid score interval): reject when the whole interval of (candidate − reference) is below 0.
    """
    if not cand or cand.get("rate") is None:
        return False, "no discipline result (every attempt was an infrastructure error)"
    if not ref or ref.get("rate") is None:
        return True, ""
    p1, (l1, u1) = ref["rate"], ref["ci95"]
    p2, (l2, u2) = cand["rate"], cand["ci95"]
    d = p2 - p1
    upper = d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    lower = d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    if upper < 0:
        return False, (f"discipline {_pct(cand)} vs baseline {_pct(ref)}: worse beyond trial noise "
                       f"(difference {100 * d:+.0f} pp, 95% CI [{100 * lower:+.0f}, {100 * upper:+.0f}]), "
                       f"rejected however fast")
    return True, ""


class Sweep:
    def __init__(self, base: Profile, out_dir: Path, opts: SweepOptions, log: Log = lambda s: None,
                 progress: Callable[[str, int, int], None] | None = None, executor: Executor | None = None):
        self.executor = executor or Local(log, progress)
        """Where each experiment's profile runs: here, or (`--ray`) on a cluster node, one at a time."""
        self.base = sweep_profile(base, opts)
        self.out_dir = Path(out_dir)
        self.opts = opts
        self.log = log
        self.progress = progress
        self.experiments: list[Experiment] = []
        self.recheck: dict[str, Any] | None = None
        self.by_identity: dict[str, Experiment] = {}

    # -- running one experiment ----------------------------------------------------------------------

    def _measure(self, profile: Profile, changes: dict[str, str],
                 slower: Callable[[Experiment], str | None] | None = None) -> Experiment:
        """Speed first; the discipline leg only when `slower` finds no reason to stop there (seed 004's loop:
        a config that is not faster is rejected without paying for its quality run)."""
        ident = profile.identity()
        d = self.out_dir / "experiments" / ident
        exp = Experiment(index=len(self.experiments), label=_label(changes), changes=dict(changes), identity=ident,
                         dir=str(d.relative_to(self.out_dir)))
        self.experiments.append(exp)
        self.by_identity[ident] = exp
        self.log(f"experiment {exp.index}: {exp.label}")
        t0 = time.monotonic()
        d.mkdir(parents=True, exist_ok=True)
        (d / "profile.json").write_text(json.dumps({**profile.model_dump(mode="json"), "source": profile.source}, indent=2))
        try:
            exp.command_line = ServerHandle(profile, d / "server.log").command_line(port=profile.server.port or 8080)
        except Exception as e:  # noqa: BLE001 - shown in the log; the start itself will say what is wrong
            exp.command_line = f"(cannot build: {e})"
        rec = run_one(self.executor, profile.model_copy(update={"legs": profile.legs[:1]}), d)
        speed = rec.get("legs", {}).get("speed", {})
        exp.wall_s = round(time.monotonic() - t0, 1)
        if rec["status"] == "failed" or speed.get("status") != "done":
            exp.status = "crashed"
            exp.reason = rec.get("reason") or f"{speed.get('status')}: {speed.get('reason') or ''}".strip()
            return exp
        sr = speed.get("result") or {}
        exp.tps, exp.tps_cv, exp.ttft_ms = sr.get("decode_tps_median"), sr.get("decode_tps_cv"), sr.get("ttft_ms_median")
        if sr.get("errors"):
            exp.extra["speed_errors"] = sr["errors"]
        why = slower(exp) if slower else None
        if why:
            exp.status, exp.reason = "rejected", why
            exp.extra["discipline_skipped"] = "not faster: the discipline leg was not run"
            return exp
        rec = run_one(self.executor, profile, d)
        disc = rec.get("legs", {}).get("discipline", {})
        exp.wall_s = round(time.monotonic() - t0, 1)
        if rec["status"] == "failed" or disc.get("status") != "done":
            exp.status = "crashed"
            exp.reason = rec.get("reason") or f"{disc.get('status')}: {disc.get('reason') or ''}".strip()
        exp.discipline = (disc.get("result") or {}).get("pass")
        return exp

    # -- the walk ------------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        base = self._measure(self.base, {})
        if base.status == "crashed":
            base.reason = f"baseline crashed: {base.reason}"
            self._write()
            raise ProfileError(f"sweep: the baseline config crashed ({base.reason}); nothing to compare against")
        base.status, base.milestone, base.best_tps_after = "baseline", True, base.tps
        ref = base.discipline
        best_changes: dict[str, str] = {}
        best, best_profile = base, self.base
        self._write()
        for changes in self._candidates():
            prof, full = self._candidate(changes, best_profile, best_changes)
            if prof.identity() in self.by_identity:
                self.log(f"skip {_label(changes)}: same config as experiment {self.by_identity[prof.identity()].index}")
                continue
            ref_tps, ref_cv = self._reference(best, best_profile, prof)
            now = ", re-measured just before" if self.opts.paired else ""

            def no_gain(e: Experiment, ref_tps: float | None = ref_tps, ref_cv: float | None = ref_cv,
                        best: Any = best, now: Any = now) -> str | None:
                margin = speed_margin(self.opts.min_gain, ref_cv, e.tps_cv)
                if e.tps is None or ref_tps is None or e.tps > ref_tps * (1 + margin):
                    return None
                return (f"no gain: {e.tps:.2f} tok/s vs best {ref_tps:.2f} ({best.label}{now}) "
                        f"(needs > {ref_tps * (1 + margin):.2f}, +{100 * margin:.0f}%)")

            exp = self._measure(prof, full, no_gain)
            exp.label = _label(changes)
            if self.opts.paired:
                exp.extra["best_remeasured"] = {"label": best.label, "tps": ref_tps, "tps_cv": ref_cv}
            if exp.status == "pending" and self._judge(exp, prof, ref, best, best_profile, ref_tps, ref_cv, now):
                best, best_profile, best_changes = exp, prof, full
            exp.best_tps_after = best.tps
            self.log(f"  -> {exp.status}: {exp.reason}")
            self._write()
        self.best, self.best_profile = best, best_profile
        if self.opts.recheck:
            self.recheck = {"baseline": self._recheck(base, self.base)}
            if best is not base:
                self.recheck["best"] = self._recheck(best, best_profile)
                b, t = self.recheck["baseline"]["tps"], self.recheck["best"]["tps"]
                self.recheck["gain"] = round(t / b - 1, 4) if b and t else None
                self.recheck.update(recheck_verdict(self.recheck["baseline"], self.recheck["best"], self.opts.min_gain))
        return self._write()

    def _candidate(self, changes: dict[str, str], best_profile: Profile,
                   best_changes: dict[str, str]) -> tuple[Profile, dict[str, str]]:
        """The candidate's profile and its full changes: on the profile (grid) or on the current best."""
        if self.opts.mode == "grid":
            prof, full = self.base, dict(changes)
        else:
            prof, full = best_profile, {**best_changes, **changes}
        for name, value in changes.items():
            prof = apply_param(prof, name, value)
        return prof, full

    def _reference(self, best: Experiment, best_profile: Profile, prof: Profile) -> tuple[float | None, float | None]:
        """The best's speed to beat: as measured, or (paired) measured again just before this candidate."""
        if self.opts.paired:
            now = self._recheck(best, best_profile, f"before-{prof.identity()}")
            if now.get("tps"):
                return now["tps"], now["tps_cv"]
        return best.tps, best.tps_cv

    def _judge(self, exp: Experiment, prof: Profile, ref: dict[str, Any] | None, best: Experiment,
               best_profile: Profile, ref_tps: float | None, ref_cv: float | None, now: str) -> bool:
        """A faster candidate: the discipline gate, the speed leg's errors, then (--confirm) A B B A. Sets its
        status and reason; True when it is kept."""
        ok, why = discipline_gate(exp.discipline, ref)
        if not ok:
            exp.status, exp.reason = "rejected", why
            return False
        if exp.extra.get("speed_errors"):
            exp.status = "rejected"
            exp.reason = f"{exp.extra['speed_errors']} request(s) of the speed leg failed: not a stable config"
            return False
        abba = self._confirm(exp, prof, best, best_profile, ref_tps, ref_cv) if self.opts.confirm else None
        if abba and not abba["kept"]:
            exp.status, exp.reason = "rejected", abba["why"]
            return False
        gain = exp.tps / ref_tps - 1 if exp.tps and ref_tps else 0.0
        exp.status, exp.milestone = "kept", True
        exp.reason = (f"{exp.tps or 0:.2f} tok/s, +{100 * gain:.1f}% over {ref_tps or 0:.2f} ({best.label}{now}); "
                      + (f"{abba['why']}; " if abba else "") + f"discipline {_pct(exp.discipline)}")
        return True

    def _confirm(self, exp: Experiment, prof: Profile, best: Experiment, best_profile: Profile,
                 a1: float | None, a1_cv: float | None) -> dict[str, Any]:
        """The B A half of A B B A: the candidate again, then the best again (both stored, reused on resume)."""
        b2 = self._recheck(exp, prof, "confirm")
        a2 = self._recheck(best, best_profile, f"after-{prof.identity()}")
        margin = speed_margin(self.opts.min_gain, a1_cv, exp.tps_cv, b2.get("tps_cv"), a2.get("tps_cv"))
        v = abba_verdict(a1, exp.tps, b2.get("tps"), a2.get("tps"), margin)
        exp.extra["abba"] = {"a1": a1, "b1": exp.tps, "b2": b2.get("tps"), "a2": a2.get("tps"), "margin": margin,
                             **{k: v[k] for k in ("gain", "pair_gains")}}
        return v

    def _recheck(self, exp: Experiment, profile: Profile, tag: str | None = None) -> dict[str, Any]:
        """The speed leg once more. Tagged (paired: before which candidate) it is stored and reused on resume;
        untagged (the final recheck) it gets a fresh name and always runs."""
        data = profile.model_dump(mode="json")
        name = f"recheck-{tag or int(time.time())}"
        data["legs"] = [{**data["legs"][0], "name": name}]
        p = Profile.model_validate(data)
        p.source = profile.source
        self.log(f"recheck: {exp.label}")
        rec = run_one(self.executor, p, self.out_dir / exp.dir)
        r = rec["legs"][name].get("result") or {}
        return {"label": exp.label, "tps": r.get("decode_tps_median"), "tps_cv": r.get("decode_tps_cv"),
                "status": rec["legs"][name].get("status"), "at": time.time()}

    def _candidates(self) -> list[dict[str, str]]:
        if self.opts.mode == "grid":
            names = [n for n, _ in self.opts.params]
            return [dict(zip(names, combo)) for combo in itertools.product(*[v for _, v in self.opts.params])]
        return [{n: v} for n, vals in self.opts.params for v in vals]

    # -- output --------------------------------------------------------------------------------------

    def _best(self) -> Experiment:
        return max((e for e in self.experiments if e.milestone), key=lambda e: e.index)

    def _write(self) -> dict[str, Any]:
        best = self._best() if any(e.milestone for e in self.experiments) else None
        data = {
            "kind": "brainbench-sweep", "profile": self.base.name, "source": self.base.source, "mode": self.opts.mode,
            "params": [{"name": n, "values": v} for n, v in self.opts.params], "min_gain": self.opts.min_gain,
            "updated": time.time(), "experiments": [asdict(e) for e in self.experiments], "recheck": self.recheck,
            "best": None if best is None else {"index": best.index, "label": best.label, "changes": best.changes,
                                               "tps": best.tps, "discipline": best.discipline,
                                               "command_line": best.command_line},
        }
        tmp = self.out_dir / "sweep.json.tmp"
        tmp.write_text(json.dumps(data, indent=2))
        os.replace(tmp, self.out_dir / "sweep.json")
        (self.out_dir / "sweep.md").write_text(sweep_markdown(data))
        from .chart import progression_svg

        (self.out_dir / "progression.svg").write_text(progression_svg(data))
        return data


def sweep_markdown(data: dict[str, Any]) -> str:
    rows = ["| # | step | config (vs the profile) | status | decode tok/s (CV) | discipline pass [95% CI] | reason |",
            "|---|---|---|---|---|---|---|"]
    for e in data["experiments"]:
        tps = "–" if e["tps"] is None else f"{e['tps']:.2f}" + (f" ({100 * e['tps_cv']:.0f}%)" if e["tps_cv"] is not None else "")
        st = e["status"] + (" ★" if e["milestone"] and e["status"] == "kept" else "")
        rows.append(f"| {e['index']} | {e['label']} | {_label(e['changes'])} | {st} | {tps} | {_pct(e['discipline'])} | "
                    f"{e['reason'].replace('|', '/')} |")
    out = [f"Sweep of `{data['profile']}` ({data['mode']}; params: "
           + "; ".join(f"{p['name']}={','.join(p['values'])}" for p in data["params"]) + ")", "", *rows, ""]
    b = data.get("best")
    if b:
        out += [f"Best: **{b['label']}** at {b['tps']:.2f} tok/s, discipline {_pct(b['discipline'])}:", "",
                "```sh", b["command_line"], "```", ""]
    rc = data.get("recheck")
    if rc:
        line = "Re-measured back to back at the end: " + ", ".join(
            f"{v['label']} {v['tps']:.2f} tok/s" + (f" (CV {100 * v['tps_cv']:.0f}%)" if v.get("tps_cv") is not None else "")
            for k, v in rc.items() if isinstance(v, dict) and v.get("tps"))
        if rc.get("gain") is not None:
            line += f"; best vs baseline {100 * rc['gain']:+.1f}%"
        out += [line + ".", ""]
        if rc.get("verdict"):
            out += [f"**Recheck {rc['verdict']}.**", ""]
    return "\n".join(out)


def speed_margin(min_gain: float, *cvs: float | None) -> float:
    """The gain a faster config must beat: min_gain and the speed noise (the larger decode CV of the two)."""
    return max(min_gain, *(cv or 0.0 for cv in cvs))


def abba_verdict(a1: float | None, b1: float | None, b2: float | None, a2: float | None,
                 margin: float) -> dict[str, Any]:
    """Best (A) and candidate (B) measured A B B A. Kept only when each pair (A1 B1, then B2 A2) shows B faster
    by more than the margin: one lucky run cannot carry the step (the quiet sweep's kept steps were 7-14% "gains"
    that a re-measurement took back), and a linear drift, which flatters B in one pair and A in the other, is
    not credited to B. The pooled gain, sum(B) / sum(A) - 1, lies between the two and is reported."""
    if a1 is None or b1 is None or b2 is None or a2 is None or not a1 or not a2:
        return {"kept": False, "gain": None, "pair_gains": None,
                "why": "not confirmed: a confirmation speed leg failed (not a stable config)"}
    gain = (b1 + b2) / (a1 + a2) - 1
    pairs = [round(b1 / a1 - 1, 4), round(b2 / a2 - 1, 4)]
    runs = f"ABBA {a1:.2f} / {b1:.2f} / {b2:.2f} / {a2:.2f} tok/s, pooled {100 * gain:+.1f}%, pairs " + \
        " and ".join(f"{100 * g:+.1f}%" for g in pairs)
    if min(pairs) > margin:
        return {"kept": True, "gain": round(gain, 4), "pair_gains": pairs, "why": f"confirmed ({runs})"}
    need = f"needs both pairs > +{100 * margin:.0f}%"
    return {"kept": False, "gain": round(gain, 4), "pair_gains": pairs,
            "why": f"no gain: not confirmed in reverse order ({runs}; {need})"}


def recheck_verdict(baseline: dict[str, Any], best: dict[str, Any], min_gain: float) -> dict[str, Any]:
    """Does the best still beat the baseline when both run back to back? Each kept step beat the best so far by
    more than the noise of two measurements minutes apart; on a machine whose load drifts, several such steps can
    add up to a "best" that is no faster at all. Same margin as a step: min_gain and the larger CV."""
    b, t = baseline.get("tps"), best.get("tps")
    if not b or not t:
        return {"confirmed": None, "verdict": "not re-measured: a recheck leg failed"}
    gain = t / b - 1
    margin = speed_margin(min_gain, baseline.get("tps_cv"), best.get("tps_cv"))
    if gain > margin:
        return {"confirmed": True, "verdict": f"confirmed: back to back the best is {100 * gain:+.1f}% over the "
                                              f"baseline (needs > +{100 * margin:.0f}%)"}
    return {"confirmed": False, "verdict": f"NOT confirmed: back to back the best is {100 * gain:+.1f}% vs the baseline "
                                           f"(needs > +{100 * margin:.0f}%); the kept steps were within drift, "
                                           "keep the baseline (--confirm tests each step in both orders)"}
