"""`brainbench matrix PROFILE...`: every profile in turn (`--ray`: as Ray tasks, several at once), under one matrix directory.

    MATRIX/
      matrix.json            the manifest: profiles in order, each one's status, reason and leg states
      matrix.md              the summary table (also printed)
      <profile>/             an ordinary run directory per profile: brainbench.sqlite, server.log, profile.json

A profile whose server fails to start is recorded as failed and the matrix goes on. Running the same
command again (or `--resume MATRIX`) skips every leg already stored as done.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..profiles.schema import Profile, ProfileError, profile_from_data
from .execute import Executor, Local

MANIFEST = "matrix.json"


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def read_manifest(matrix_dir: Path) -> dict[str, Any]:
    path = Path(matrix_dir) / MANIFEST
    if not path.is_file():
        raise ProfileError(f"{matrix_dir}: not a matrix directory (no {MANIFEST})")
    return json.loads(path.read_text())


def stored_profiles(matrix_dir: Path) -> list[Profile]:
    """The profiles exactly as the matrix first ran them (for --resume)."""
    man = read_manifest(matrix_dir)
    out = []
    for entry in man["profiles"]:
        f = Path(matrix_dir) / entry["name"] / "profile.json"
        data = json.loads(f.read_text())
        source = data.pop("source", None) or str(f)
        p = profile_from_data(data, str(f), Path(source).parent if source else None)
        p.source = source
        out.append(p)
    return out


def run_matrix(profiles: list[Profile], matrix_dir: Path, log: Callable[[str], None] = lambda s: None,
               progress: Callable[[str, int, int], None] | None = None, executor: Executor | None = None) -> dict[str, Any]:
    """Every profile into its own run directory under `matrix_dir`, through `executor` (default: here, in turn)."""
    matrix_dir = Path(matrix_dir)
    matrix_dir.mkdir(parents=True, exist_ok=True)
    path = matrix_dir / MANIFEST
    man: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {"kind": "brainbench-matrix", "created": time.time()}
    entries = {e["name"]: e for e in man.get("profiles", [])}
    man["profiles"] = [entries.get(p.name, {"name": p.name, "status": "pending"}) for p in profiles] + \
        [e for n, e in entries.items() if n not in {p.name for p in profiles}]
    man["runs"] = man.get("runs", 0) + 1
    _write_json(path, man)
    jobs = []
    for p in profiles:
        d = matrix_dir / p.name
        d.mkdir(parents=True, exist_ok=True)
        _write_json(d / "profile.json", {**p.model_dump(mode="json"), "source": p.source})
        jobs.append((p, d))

    def started(i: int) -> None:
        p = profiles[i]
        man["profiles"][i] = {**man["profiles"][i], "status": "running", "source": p.source, "started": time.time()}
        _write_json(path, man)
        log(f"[{i + 1}/{len(profiles)}] {p.name} ({p.server.kind})")

    for i, rec in (executor or Local(log, progress)).run(jobs, started):
        man["profiles"][i] = {**man["profiles"][i], **rec, "dir": profiles[i].name, "ended": time.time()}
        _write_json(path, man)
    man["updated"] = time.time()
    _write_json(path, man)
    (matrix_dir / "matrix.md").write_text(summary_markdown(man))
    return man


# -- summary ----------------------------------------------------------------------------------------


def _pct(r: dict[str, Any] | None) -> str:
    if not r or r.get("rate") is None:
        return "–"
    lo, hi = r["ci95"]
    return f"{r['k']}/{r['n']} = {100 * r['rate']:.0f}% [{100 * lo:.0f}–{100 * hi:.0f}]"


def leg_cell(leg: dict[str, Any]) -> str:
    st = leg.get("status", "not_run")
    if st != "done":
        why = (leg.get("reason") or "")[:80]
        return f"{st}" + (f": {why}" if why else "")
    r = leg.get("result") or {}
    if "decode_tps_median" in r and "passed" not in r:
        cv = r.get("decode_tps_cv")
        return f"{r['decode_tps_median']:.1f} tok/s" + (f" (CV {100 * cv:.0f}%)" if cv is not None else "")
    if "pass" in r:
        extra = f", {r['infra_errors']} infra" if r.get("infra_errors") else ""
        return f"pass {_pct(r.get('pass'))}{extra}"
    if "passed" in r:
        ret = (r.get("tps_retention") or {}).get("value")
        c = (r.get("crashes") or {}).get("total", 0)
        mem = (r.get("memory") or {}).get("rss") or {}
        bits = [f"{r.get('sessions_complete')}/{r.get('sessions_run')} sessions", f"{c} crashes",
                f"{r.get('silent_empty', 0)} silent-empty", f"retention {ret:.0%}" if ret is not None else "retention –"]
        if mem:
            bits.append(f"RSS {mem['growth']:+.0%}")
        return ("PASS " if r["passed"] else "FAIL ") + ", ".join(bits)
    return "done"


def summary_rows(man: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    leg_names: list[str] = []
    for e in man["profiles"]:
        for n in (e.get("legs") or {}):
            if n not in leg_names:
                leg_names.append(n)
    header = ["profile", "status", *leg_names]
    rows = []
    for e in man["profiles"]:
        status = e.get("status", "pending")
        if e.get("reason") and status != "done":
            status += f" ({e['reason'][:60]})"
        legs = e.get("legs") or {}
        rows.append([e["name"], status, *[leg_cell(legs[n]) if n in legs else "" for n in leg_names]])
    return header, rows


def summary_markdown(man: dict[str, Any]) -> str:
    header, rows = summary_rows(man)
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"
