"""Visible tool failures in an agent's log, and the iceberg beneath them.

Counting failure lines is what `grep` does, and it sees only the tip: a model that never calls the
close-out tool (the card stays in progress) writes no line at all. Given the true outcomes (a brainbench
run of the same agent, or a CSV of cards and their final states), `iceberg` sets the visible failures
next to all failures.
"""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import LogInputError, iter_lines, strip_ansi_s

# (class, layer, pattern); the first class that matches a line wins, most specific first.
CLASSES: list[tuple[str, str, re.Pattern]] = [
    ("loading_model_503", "transport", re.compile(r"\b503\b.*Loading model|Loading model.*\b503\b", re.I)),
    ("connection_reset", "transport", re.compile(r"Connection reset by peer|ECONNRESET", re.I)),
    ("stream_failed", "transport", re.compile(r"Streaming failed before delivery", re.I)),
    ("dropped_tool_call", "tool", re.compile(r"Partial stream dropped tool call\(s\)\s*\[([^\]]*)\]")),
    ("repeated_failure", "tool", re.compile(r"repeated_exact_failure_warning")),
    ("tool_error", "tool", re.compile(r"\bTool ([\w.:-]+) returned error")),
]
LAYER = {name: layer for name, layer, _ in CLASSES}
CANDIDATE = re.compile(rb"503|Connection reset|ECONNRESET|Streaming failed|dropped tool call|"
                       rb"repeated_exact_failure_warning|returned error", re.I)
MODEL_RE = re.compile(r"""\bmodel(?:_name)?["']?\s*[=:]\s*["']?([A-Za-z0-9][\w.:/@+-]*)""")
REPEATED_TOOL_RE = re.compile(r"\b([\w.-]+) has failed")

SUCCESS_STATES = {"done", "completed", "complete", "closed", "success", "succeeded", "passed", "pass", "ok",
                  "resolved", "finished"}


@dataclass
class AgentScan:
    by_class: Counter = field(default_factory=Counter)
    by_model: dict = field(default_factory=lambda: defaultdict(Counter))
    by_tool: Counter = field(default_factory=Counter)
    models_seen: Counter = field(default_factory=Counter)
    lines: int = 0
    examples: dict = field(default_factory=dict)


def scan(paths: list[Path]) -> AgentScan:
    s = AgentScan()
    current_model: str | None = None
    trunc: list[str] = []
    for raw in iter_lines(paths, trunc):
        s.lines += 1
        has_model = b"model" in raw
        cand = CANDIDATE.search(raw)
        if not has_model and cand is None:
            continue
        text = strip_ansi_s(raw.decode("utf-8", "replace"))
        if has_model:
            m = MODEL_RE.search(text)
            if m:
                current_model = m.group(1).rstrip(".,;)")
                s.models_seen[current_model] += 1
        if cand is None:
            continue
        for name, _layer, pat in CLASSES:
            m = pat.search(text)
            if not m:
                continue
            s.by_class[name] += 1
            s.by_model[current_model or "(unnamed)"][name] += 1
            s.examples.setdefault(name, text.strip()[:240])
            if name == "tool_error":
                s.by_tool[m.group(1)] += 1
            elif name == "dropped_tool_call":
                for tool in re.findall(r"['\"]([^'\"]+)['\"]", m.group(1)) or ["?"]:
                    s.by_tool[tool] += 1
            elif name == "repeated_failure":
                r = REPEATED_TOOL_RE.search(text)
                s.by_tool[r.group(1) if r else "?"] += 1
            break
    return s


# -- the truth ------------------------------------------------------------------------------------------


@dataclass
class Truth:
    source: str
    items: int
    failed: int
    by_model: dict  # model -> (items, failed)
    states: Counter


def load_truth(path: Path) -> Truth:
    """A brainbench run directory (its `brainbench.sqlite`) or a CSV of cards and final states."""
    if path.is_dir():
        db = path / "brainbench.sqlite"
        if not db.exists():
            raise LogInputError(f"{path}: not a brainbench run directory (no brainbench.sqlite)")
        return _truth_from_run(db)
    if not path.exists():
        raise LogInputError(f"{path}: no such file")
    if path.name.endswith(".sqlite"):
        return _truth_from_run(path)
    return _truth_from_csv(path)


def _truth_from_csv(path: Path) -> Truth:
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    except (OSError, UnicodeDecodeError) as e:
        raise LogInputError(f"{path}: cannot read ({e})") from None
    rows = [r for r in rows if r and any(c.strip() for c in r)]
    if not rows:
        raise LogInputError(f"{path}: empty outcomes file")
    head = [c.strip().lower() for c in rows[0]]
    state_cols = [i for i, c in enumerate(head) if c in ("state", "final_state", "status", "outcome", "result")]
    model_cols = [i for i, c in enumerate(head) if c in ("model", "brain", "model_name")]
    if state_cols:
        si, mi, body = state_cols[0], (model_cols[0] if model_cols else None), rows[1:]
    elif len(head) >= 2:  # no header: card,state[,model]
        si, mi, body = 1, (2 if len(head) >= 3 else None), rows
    else:
        raise LogInputError(f"{path}: expected columns card,state[,model] (or a header naming 'state')")
    states: Counter = Counter()
    by_model: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    failed = 0
    for r in body:
        if si >= len(r):
            continue
        state = r[si].strip().lower()
        states[state] += 1
        bad = state not in SUCCESS_STATES
        failed += bad
        if mi is not None and mi < len(r) and r[mi].strip():
            b = by_model[r[mi].strip()]
            b[0] += 1
            b[1] += bad
    items = sum(states.values())
    return Truth("csv", items, failed, {k: tuple(v) for k, v in by_model.items()}, states)


def _truth_from_run(db: Path) -> Truth:
    """Completed attempts of a brainbench run: failed when a scorer failed it, or (unscored) when a
    dispatch ended with an open obligation (the close-out never happened)."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        rows = conn.execute("SELECT key, model, record FROM attempts WHERE status='completed'").fetchall()
        try:
            verdicts = conn.execute("SELECT attempt_key, passed FROM verdicts").fetchall()
        except sqlite3.OperationalError:
            verdicts = []
        conn.close()
    except sqlite3.DatabaseError as e:
        raise LogInputError(f"{db}: cannot read the run database ({e})") from None
    passed: dict[str, bool] = {}
    for key, ok in verdicts:
        passed[key] = passed.get(key, True) and bool(ok)
    states: Counter = Counter()
    by_model: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    failed = 0
    for key, model, blob in rows:
        if key in passed:
            bad = not passed[key]
            states["failed" if bad else "passed"] += 1
        else:
            try:
                rec = json.loads(blob)
            except (TypeError, ValueError):
                continue
            bad = any(d.get("open_obligation") for d in rec.get("dispatches", []))
            states["violation" if bad else "closed"] += 1
        failed += bad
        b = by_model[model]
        b[0] += 1
        b[1] += bad
    return Truth("run", sum(states.values()), failed, {k: tuple(v) for k, v in by_model.items()}, states)


# -- report ---------------------------------------------------------------------------------------------


def report(s: AgentScan, truth: Truth | None, files: list[Path]) -> dict[str, Any]:
    tool_visible = sum(c for k, c in s.by_class.items() if LAYER[k] == "tool")
    transport = sum(c for k, c in s.by_class.items() if LAYER[k] == "transport")
    out: dict[str, Any] = {
        "source": "agent",
        "classes": [{"class": name, "layer": layer, "count": s.by_class.get(name, 0),
                     "example": s.examples.get(name)} for name, layer, _ in CLASSES],
        "by_model": {m: dict(c) for m, c in sorted(s.by_model.items())},
        "by_tool": dict(s.by_tool.most_common()),
        "visible_tool_failures": tool_visible,
        "visible_transport_failures": transport,
        "models_named": dict(s.models_seen.most_common()),
        "parse": {"files": [str(f) for f in files], "lines": s.lines},
        "iceberg": None,
    }
    if truth is not None:
        ice: dict[str, Any] = {
            "truth_source": truth.source,
            "items": truth.items,
            "failed": truth.failed,
            "final_states": dict(truth.states.most_common()),
            "visible": tool_visible,
            # a failure line cannot be tied to a card, and one card can log several: so these are bounds
            "invisible_min": max(0, truth.failed - tool_visible),
            "visible_share_max": round(min(1.0, tool_visible / truth.failed), 3) if truth.failed else None,
            "by_model": [],
        }
        for model, (items, failed) in sorted(truth.by_model.items()):
            vis = sum(c for k, c in s.by_model.get(model, {}).items() if LAYER[k] == "tool")
            ice["by_model"].append({"model": model, "items": items, "failed": failed, "visible": vis,
                                    "invisible_min": max(0, failed - vis),
                                    "visible_share_max": round(min(1.0, vis / failed), 3) if failed else None})
        out["iceberg"] = ice
    return out


def analyze(paths: list[Path], truth_path: Path | None = None) -> dict[str, Any]:
    truth = load_truth(truth_path) if truth_path is not None else None
    return report(scan(paths), truth, paths)
