"""Markdown tables of a summary (for READMEs and issues): discipline per pack, and errors per 100 tool
calls by failure class, one column per brain (the layout of seed 001's table).

    from brainbench.scoring.markdown import discipline_table, class_table
    print(discipline_table(summary)); print(class_table(summary))
"""

from __future__ import annotations

from typing import Any

from ..core.taxonomy import TAXONOMY, layer


def _pct(r: dict[str, Any] | None, ci: bool = True) -> str:
    if not r or r.get("rate") is None:
        return "–"
    lo, hi = r["ci95"]
    return f"{100 * r['rate']:.0f}%" + (f" [{100 * lo:.0f}–{100 * hi:.0f}]" if ci else "")


def _phk(s: dict[str, Any]) -> str:
    ks = sorted(int(k) for k in s.get("pass_hat_k", {}))
    if not ks:
        return "–"
    k = ks[-1]
    v = s["pass_hat_k"][str(k)]
    ci = (s.get("pass_hat_k_ci95") or {}).get(str(k))
    if v is None:
        return "–"
    return f"{v:.2f} (k={k})" + (f" [{ci[0]:.2f}–{ci[1]:.2f}]" if ci else "")


def _ice(s: dict[str, Any]) -> str:
    ice = s["iceberg"]
    return (f"{ice['error_line']} / {ice['silent']} · {ice['failed_without_error_line']} of "
            f"{ice['failed_attempts']} failed")


def discipline_table(summary: dict[str, Any]) -> str:
    head = ("| brain | pack | n | pass | clean | after retry | pass^k | strict pass | omission | recovery | "
            "calls | err/100 calls | iceberg: log / silent · failed with no error line |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for model, m in summary.items():
        for pack, s in [*m["packs"].items(), ("**all**", m["overall"])]:
            err100 = f"{100 * s['error_rate_per_call']:.1f}" if s["error_rate_per_call"] is not None else "–"
            lines.append(
                f"| {model} | {pack} | {s['attempts']} | {_pct(s['pass'])} | {_pct(s['clean'])} | "
                f"{_pct(s['passed_after_retry'], False)} | {_phk(s)} | {_pct(s['strict_pass'], False)} | "
                f"{_pct(s['omission'])} | {_pct(s['recovery'], False)} "
                f"({s['recovery']['k']}/{s['recovery']['n']}) | {s['tool_calls']} | {err100} | {_ice(s)} |")
        if m.get("infra_errors"):
            lines.append(f"| {model} | (infra) | {m['infra_errors']} | not scored | | | | | | | | | |")
    return "\n".join(lines)


def class_table(summary: dict[str, Any], pack: str | None = None) -> str:
    """Failures per 100 tool calls by class, brains as columns (overall, or one pack)."""
    models = list(summary)
    stats = {m: (summary[m]["packs"].get(pack) if pack else summary[m]["overall"]) for m in models}
    classes = sorted({c for s in stats.values() if s for c in s["failures_by_class"]},
                     key=lambda c: ({"error_line": 0, "silent": 1, "discipline": 2}[layer(c)], c))
    lines = ["| failure class | layer | " + " | ".join(models) + " |", "|---|---|" + "---|" * len(models)]
    for c in classes:
        cells = []
        for m in models:
            s = stats[m]
            if not s:
                cells.append("–")
                continue
            per100 = s["errors_per_100_calls"].get(c)
            n = s["failures_by_class"].get(c, 0)
            cells.append(f"{per100:.2f} ({n})" if per100 is not None and n else "0")
        lines.append(f"| `{c}` | {layer(c)} | " + " | ".join(cells) + " |")
    totals = []
    for m in models:
        s = stats[m]
        totals.append(f"{s['tool_calls']} calls, {s['tool_errors']} errors" if s else "–")
    lines.append("| tool calls / errors | | " + " | ".join(totals) + " |")
    return "\n".join(lines)


def taxonomy_table() -> str:
    lines = ["| id | layer | definition |", "|---|---|---|"]
    for fc in TAXONOMY.values():
        lines.append(f"| `{fc.id}` | {fc.layer} | {fc.definition.replace(chr(124), chr(92) + chr(124))} |")
    return "\n".join(lines)
