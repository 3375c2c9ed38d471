"""Rich tables for the terminal: the short summary a person reads after a run."""

from __future__ import annotations

from typing import Any

from rich.table import Table

ONE_TRIAL = "= pass (1 trial)"
"""pass^k shown for a run of one trial: it says nothing the pass column does not (run --trials 3 for pass^3)."""


def pct(r: dict[str, Any] | None) -> str:
    """`62% [41–79]`: a rate with its 95% interval, so noise is never hidden."""
    if not r or r.get("rate") is None:
        return "–"
    lo, hi = r["ci95"]
    return f"{100 * r['rate']:.0f}% [{100 * lo:.0f}–{100 * hi:.0f}]"


def _top_failures(s: dict[str, Any], n: int = 3) -> str:
    per100 = s.get("errors_per_100_calls", {})
    items = list(s.get("failures_by_class", {}).items())[:n]
    return ", ".join(f"{k}×{v}" + (f" ({per100[k]:.0f}/100)" if k in per100 else "") for k, v in items) or "–"


def _iceberg(s: dict[str, Any]) -> str:
    """`2 log / 9 silent`: failures a log's error lines show vs failures that leave no trace."""
    ice = s.get("iceberg")
    if not ice or not (ice["error_line"] or ice["silent"]):
        return "–"
    return f"{ice['error_line']} log / {ice['silent']} silent"


def summary_table(summary: dict[str, Any], title: str = "brainbench results") -> Table:
    t = Table(title=title, show_lines=False)
    for col in ("brain", "pack", "n", "pass", "clean", "pass^k", "calls", "err/call", "omitted", "iceberg",
                "top failures"):
        t.add_column(col, justify="right" if col in ("n", "calls", "err/call") else "left")
    for model, m in summary.items():
        rows = [*m["packs"].items(), ("ALL", m["overall"])]
        for pack, s in rows:
            k = max((int(x) for x in s["pass_hat_k"]), default=0)
            phk = s["pass_hat_k"].get(str(k))
            t.add_row(
                model, pack, str(s["attempts"]), pct(s["pass"]), pct(s["clean"]),
                "–" if phk is None else ONE_TRIAL if k == 1 else f"k={k}: {phk:.2f}", str(s["tool_calls"]),
                f"{s['error_rate_per_call']:.2f}" if s["error_rate_per_call"] is not None else "–",
                pct(s.get("omission")), _iceberg(s), _top_failures(s),
            )
        if m.get("infra_errors"):
            t.add_row(model, "infra", str(m["infra_errors"]), "not scored", "", "", "", "", "", "",
                      "infrastructure errors")
        if m.get("superseded"):
            t.add_row(model, "edited", str(m["superseded"]), "not counted", "", "", "", "", "", "",
                      "attempts of an earlier version of an edited scenario")
    t.caption = LEGEND
    t.caption_justify = "left"
    return t


LEGEND = (
    "pass: attempts that passed every check, with the 95% interval · clean: passed on the first dispatch with no "
    "nudge or violation · pass^k: chance all k trials of a scenario pass (one trial: pass itself; run -k 3) · err/call: tool calls that errored · "
    "omitted: attempts that ended with the task still open · iceberg: failures an agent log shows (log) vs "
    "failures no log line shows (silent) · infra: attempts lost to the server, never counted against the brain"
)
"""The terminal summary's legend: every column in a line or two (the HTML report explains them at length)."""
