"""The report in the terminal (`brainbench compare A B`): each brain against its baseline match, noise judged
from the CIs; without a baseline, the summary table of each brain."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console
from rich.table import Table

from ...scoring.metrics import CONVENTION
from ..model import Entry, Figure, Report
from ..render import engine_verdict, harness_verdict, mdd, ms, num, pct, per100, phk, pp, separable_text, speed
from ..tables import ONE_TRIAL, summary_table
from . import output

NOISE_NOTE = "[dim]judged: better/worse only where the 95% intervals of the two runs do not overlap; otherwise within " \
             "noise. verdict: A is the baseline, B this run; separable when the clean-rate difference reaches the MDD[/]"

STYLE = {"better": "green", "worse": "red", "within noise": "dim", "n/a": "dim", "no CI": "yellow",
         "not judged: different concurrency": "yellow"}


def _v(verdict: str | None) -> str:
    v = verdict or "n/a"
    return f"[{STYLE.get(v, 'white')}]{v}[/]"


def _k(s: dict[str, Any]) -> str:
    return phk(s).replace(" (k=", " k=").rstrip(")") if phk(s) not in ("–", ONE_TRIAL) else phk(s)


@output("terminal", "", "rich tables: each brain against its baseline (brainbench compare), else its summary")
def render_terminal(rep: Report, width: int = 100, styled: bool = False) -> str:
    """The tables as text `width` columns wide (with ANSI styles where `styled`)."""
    con = Console(file=io.StringIO(), width=width, force_terminal=styled, record=True)
    for line in rep.incomplete:
        con.print(f"[bold yellow]{line}[/]", soft_wrap=True)
    for line in rep.warnings:
        con.print(f"[yellow]warning: {line}[/]", soft_wrap=True)
    if rep.baseline:
        for line in rep.left_out:
            con.print(f"[yellow]{line}[/]", soft_wrap=True)
        for t in compare_tables(rep):
            con.print(t)
        con.print(NOISE_NOTE)
    else:
        con.print(summary_table({e.label: e.summary for e in rep.discipline_entries}, title=rep.title))
    if rep.discipline_entries:
        con.print(noise_table(rep.discipline_entries + [b for b in rep.baseline if not b.speed_only]))
        con.print(f"[dim]MDD: the smallest clean-rate difference this run size can detect ({CONVENTION}); "
                  "flip rate: the share of scenarios whose verdict changed between trials[/]")
    if rep.realism:
        con.print(realism_table(rep))
    if rep.has_replicas:
        con.print(replica_table(rep))
        for e in rep.entries:
            for x in e.replicas:
                for why in x["flags"]:
                    con.print(f"[red]flagged[/] {e.label} replica {x['url']}: {why}")
    for g in rep.engines:
        for t in engine_tables(g):
            con.print(t)
    return con.export_text(styles=styled)


def replica_table(rep: Report) -> Table:
    """Per replica of a run over several endpoints: attempts, rates, speed, and whether it is flagged (the
    reasons follow the table)."""
    t = Table(title="replicas (flagged: answers differently from the other replicas beyond noise)")
    for col in ("brain", "replica", "attempts", "re-run here", "clean", "decode tok/s", "flagged"):
        t.add_column(col, justify="right" if col in ("attempts", "re-run here") else "left",
                     overflow="fold", min_width=26 if col == "replica" else None)
    for e in rep.entries:
        for x in e.replicas:
            t.add_row(e.label, x["url"] + (" [yellow](dead)[/]" if x["dead"] else ""), str(x["attempts"]),
                      str(x["reran_here"]), pct(x["clean"]), speed(x["decode"]), "[red]yes[/]" if x["flags"] else "–")
    return t


def noise_table(entries: list[Entry]) -> Table:
    """Per brain and pack: attempts, trials, clean rate, its MDD and the flip rate across trials."""
    t = Table(title="noise floor")
    for col in ("brain", "pack", "attempts", "trials", "clean", "MDD", "flip rate"):
        t.add_column(col, justify="right" if col in ("attempts", "trials") else "left")
    for e in entries:
        for p, n in e.noise.items():
            t.add_row(e.label, f"[bold]{p}[/]" if p == "ALL" else p, str(n["attempts"]), str(n["trials"]),
                      pct(n["clean"]), mdd(n["mdd"]), pct(n["flip"]) if n["flip"] else "n/a (one trial)")
    return t


def realism_table(rep: Report) -> Table:
    """Per brain run under both harnesses: pass, clean, errors and calls as text per 100 calls, and the gap."""
    t = Table(title="realism gap: minimal against agent harness")
    for col in ("brain", "harness", "attempts", "pass", "clean", "errors / 100 calls", "as text / 100 calls"):
        t.add_column(col)
    for g in rep.realism:
        for h in ("minimal", "agent"):
            x = g[h]
            t.add_row(g["model"], h, str(x["attempts"]), pct(x["pass"]), pct(x["clean"]),
                      per100(x["errors_per_100"]), per100(x["in_text_per_100"]))
        t.add_row(g["model"], "[bold]gap[/]", "", pp(g["delta"]["pass"]), pp(g["delta"]["clean"]),
                  harness_verdict(g["verdict"]), "")
    return t


def _at(b: Figure | None, e: Figure | None) -> str:
    """` (concurrency 1 vs 4)` where the two decode figures were measured at different concurrency."""
    cb, ce = (b or {}).get("concurrency"), (e or {}).get("concurrency")
    return f" (concurrency {cb} vs {ce})" if b and e and cb != ce else ""


def _levels_left_out(levels: dict[str, Any]) -> str | None:
    """One line naming the concurrency levels only one run measured (compared at none)."""
    parts = [f"{', '.join(map(str, levels[k]))} (only {who})"
             for k, who in (("only_base", "the baseline"), ("only_cur", "this run")) if levels.get(k)]
    return f"concurrency levels left out: {'; '.join(parts)}" if parts else None
def engine_tables(g: dict[str, Any]) -> list[Table]:
    """The same brain on two engines: per pack pass (strict, recovered), clean, errors and text calls per 100
    calls, the verdict; then speed by concurrency side by side."""
    a, b = g["a"]["engine"], g["b"]["engine"]
    t = Table(title=f"same weights, two engines: {g['brain']} on {a} ({g['a']['weights']}) and {b} ({g['b']['weights']})")
    for col in ("pack", "engine", "attempts", "pass", "strict", "recovered", "clean", "errors / 100 calls",
                "as text / 100 calls"):
        t.add_column(col)
    for row in g["packs"]:
        for side in ("a", "b"):
            x = row[side]
            t.add_row(row["pack"], g[side]["engine"], str(x["attempts"]), pct(x["pass"]), pct(x["strict_pass"]),
                      pct(x["recovered_pass"]), pct(x["clean"]), per100(x["errors_per_100"]), per100(x["in_text_per_100"]))
        d = row["delta"]
        t.add_row(row["pack"], "[bold]difference[/]", "", pp(d["pass"]), pp(d["strict_pass"]), pp(d["recovered_pass"]),
                  pp(d["clean"]), engine_verdict(row["verdict"], a, b), "")
    s = Table(title=f"{g['brain']}: speed by concurrency, {a} | {b}")
    for col in ("concurrency", "decode tok/s", "aggregate tok/s", "TTFT", "ITL"):
        s.add_column(col)
    for p in g["speed"]:
        x, y = p["a"] or {}, p["b"] or {}
        s.add_row(str(p["concurrency"]), f"{num(x.get('decode_tps'))} | {num(y.get('decode_tps'))}",
                  f"{num(x.get('aggregate_tps'))} | {num(y.get('aggregate_tps'))}",
                  f"{ms(x.get('ttft_ms'))} | {ms(y.get('ttft_ms'))}", f"{ms(x.get('itl_ms'))} | {ms(y.get('itl_ms'))}")
    return [t, s] if g["packs"] else [s]


def compare_tables(rep: Report) -> list[Table]:
    """Tables for each current brain against its baseline match (see `data.build_report`)."""
    tables: list[Table] = []
    base_by_label = {b.label: b for b in rep.baseline}
    for e in rep.entries:
        d = e.delta
        if d is None:
            t = Table(title=f"{e.label}: no comparable brain in the baseline")
            tables.append(t)
            continue
        b = base_by_label.get(d["baseline_label"]) or rep.baseline[0]
        t = Table(title=f"{e.label} ({e.run_name})  vs  {b.label} ({b.run_name})")
        for col in ("pack", "n", "pass", "clean (baseline)", "clean (this)", "Δ clean", "judged", "verdict", "pass^k"):
            t.add_column(col, justify="right" if col == "n" else "left")
        only_speed = [who for who, x in (("the baseline", b), ("this run", e)) if x.speed_only]
        if only_speed:  # a speed-only side has no rates: say so, never show 0%
            t.add_row("ALL", "", f"[dim]discipline not measured in {' and '.join(only_speed)} (speed legs only)[/]",
                      pct(b.summary["overall"]["clean"]) if not b.speed_only else "not measured",
                      pct(e.summary["overall"]["clean"]) if not e.speed_only else "not measured",
                      "–", _v(None), "", "")
        for p, pd in ({} if only_speed else d["packs"]).items():
            cs = e.summary["overall"] if p == "ALL" else e.summary["packs"].get(p)
            bs = b.summary["overall"] if p == "ALL" else b.summary["packs"].get(p)
            if not cs or not bs:
                t.add_row(p, "", "only in " + ("this run" if cs else "the baseline"), "", "", "", "", "", "")
                continue
            judged = _v(pd["clean"]["verdict"] if pd["clean"] else None)
            if pd.get("scenarios_changed"):
                judged += " [yellow](pack changed)[/]"
            t.add_row(
                f"[bold]{p}[/]" if p == "ALL" else p, f"{pd['attempts'][1]} → {pd['attempts'][0]}",
                f"{pct(bs['pass'], False)} → {pct(cs['pass'], False)}", pct(bs["clean"]), pct(cs["clean"]),
                pp(pd["clean"]["delta"]) if pd["clean"] else "–", judged, separable_text(pd.get("separable")),
                f"{_k(bs)} → {_k(cs)}",
            )
        tables.append(t)

        s = Table(title="speed, size, useful throughput")
        for col in ("figure", "baseline", "this", "Δ", "judged"):
            s.add_column(col)
        sd = d["decode"]
        s.add_row("decode tok/s" + _at(b.decode, e.decode), speed(b.decode), speed(e.decode),
                  f"{100 * sd['rel']:+.0f}%" if sd and sd.get("rel") is not None else "–", _v(sd["verdict"] if sd else None))
        levels = d.get("levels") or {}
        for lv in levels.get("common", []):
            s.add_row(f"aggregate tok/s at concurrency {lv['concurrency']}", num(lv["base"], 1), num(lv["cur"], 1),
                      f"{100 * lv['rel']:+.0f}%" if lv["rel"] is not None else "–", _v("no CI"))
        s.caption, s.caption_justify = _levels_left_out(levels), "left"

        def useful(x: Entry) -> str:
            u = (x.useful or {}).get("chosen") or (x.useful or {}).get("own")
            if not u:
                return "not measured"
            at = f" at concurrency {u['concurrency']}" if u.get("concurrency") else ""
            return num(u["clean_tasks_per_hour"], 0) + at

        def per_gb(x: Entry) -> str:
            return "not measured" if x.speed_only else num(x.efficiency["clean_pct_per_gb"], 1)

        def jpt(x: Entry) -> str:
            vals = [en["joules_per_token"] for en in x.energy if en.get("joules_per_token")]
            return num(min(vals), 3) if vals else "not measured"

        s.add_row("clean tasks / h", useful(b), useful(e), "", "")
        s.add_row("lowest J / token", jpt(b), jpt(e), "", "")
        s.add_row("model file GB", num(b.efficiency["gb"], 2), num(e.efficiency["gb"], 2), "", "")
        s.add_row("clean % per GB", per_gb(b), per_gb(e), "", "")
        s.add_row("tok/s per GB", num(b.efficiency["tps_per_gb"], 1), num(e.efficiency["tps_per_gb"], 1), "", "")
        tables.append(s)

        classes = sorted(set(b.summary["overall"]["failures_by_class"]) | set(e.summary["overall"]["failures_by_class"]))
        if classes:
            f = Table(title="failures per 100 tool calls (count)")
            for col in ("class", "baseline", "this"):
                f.add_column(col)

            def cell(x: Entry, c: str) -> str:
                if x.speed_only:
                    return "not measured"
                o = x.summary["overall"]
                n = o["failures_by_class"].get(c, 0)
                per = o["errors_per_100_calls"].get(c)
                return f"{per:.1f} ({n})" if per is not None and n else str(n)

            for c in classes:
                f.add_row(c, cell(b, c), cell(e, c))
            tables.append(f)
    return tables
