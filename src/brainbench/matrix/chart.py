"""The sweep's progression chart as one self-contained SVG (no fonts, scripts or images from outside).

One bar per experiment in the order they ran, coloured by decision (baseline, kept, rejected for
discipline, rejected for no gain, crashed), and the best-so-far tok/s as a step line: the progression,
milestone by milestone, as seed 004 draws it.
"""

from __future__ import annotations

from html import escape
from typing import Any

COLORS = {"baseline": "#4e79a7", "kept": "#59a14f", "discipline": "#e15759", "rejected": "#bab0ac",
          "crashed": "#333333", "pending": "#dddddd"}


def _kind(e: dict[str, Any]) -> str:
    if e["status"] == "rejected" and e["reason"].startswith(("discipline", "no discipline")):
        return "discipline"
    return e["status"]


def progression_svg(data: dict[str, Any], width: int = 900, height: int = 460) -> str:
    exps = data.get("experiments", [])
    abba = any(((e.get("extra") or {}).get("abba") or {}).get("b2") for e in exps)
    left, right, top, bottom = 64, 20, 72 if abba else 56, 125
    plot_w, plot_h = width - left - right, height - top - bottom
    vals = [e["tps"] for e in exps if e.get("tps")]
    vmax = max(vals, default=1.0) * 1.15 or 1.0
    n = max(1, len(exps))
    slot = plot_w / n
    bar_w = max(4.0, min(48.0, slot * 0.6))

    def y(v: float) -> float:
        return top + plot_h - plot_h * v / vmax

    title = f"brainbench sweep: {data.get('profile', '')} — decode tok/s per experiment, best so far as a step line"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
           f'<text x="{left}" y="22" font-size="14" font-weight="bold">{escape(title)}</text>']
    # axis and grid
    steps = 5
    for i in range(steps + 1):
        v = vmax * i / steps
        yy = y(v)
        out.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{width - right}" y2="{yy:.1f}" stroke="#eeeeee"/>')
        out.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end" fill="#555">{v:.1f}</text>')
    out.append(f'<text x="14" y="{top + plot_h / 2:.0f}" transform="rotate(-90 14 {top + plot_h / 2:.0f})" '
               f'text-anchor="middle" fill="#555">tok/s</text>')
    step_pts = []
    for i, e in enumerate(exps):
        cx = left + slot * (i + 0.5)
        kind = _kind(e)
        color = COLORS.get(kind, "#999999")
        tip = escape(f"#{e['index']} {e['label']}: {e['status']} — {e['reason']}")
        if e.get("tps"):
            yy = y(e["tps"])
            out.append(f'<rect x="{cx - bar_w / 2:.1f}" y="{yy:.1f}" width="{bar_w:.1f}" height="{top + plot_h - yy:.1f}" '
                       f'fill="{color}"><title>{tip}</title></rect>')
            weight = "bold" if e.get("milestone") else "normal"
            out.append(f'<text x="{cx:.1f}" y="{yy - 4:.1f}" text-anchor="middle" font-weight="{weight}">{e["tps"]:.1f}</text>')
        else:
            out.append(f'<text x="{cx:.1f}" y="{top + plot_h - 6:.1f}" text-anchor="middle" fill="{color}" font-size="14">'
                       f'✗<title>{tip}</title></text>')
        rm = (e.get("extra") or {}).get("best_remeasured") or {}
        if rm.get("tps"):  # paired mode: what the candidate was actually compared with
            yy = y(rm["tps"])
            out.append(f'<line x1="{cx - bar_w / 2 - 5:.1f}" y1="{yy:.1f}" x2="{cx + bar_w / 2 + 5:.1f}" y2="{yy:.1f}" '
                       f'stroke="#222" stroke-width="2" stroke-dasharray="3,2"><title>best ({escape(str(rm.get("label")))}) '
                       f're-measured just before: {rm["tps"]:.2f} tok/s</title></line>')
        ab = (e.get("extra") or {}).get("abba") or {}
        if ab.get("b2"):  # --confirm: the candidate run again, after its discipline leg (B2 of A B B A)
            out.append(f'<circle cx="{cx:.1f}" cy="{y(ab["b2"]):.1f}" r="4" fill="#ffffff" stroke="#222" stroke-width="1.5">'
                       f'<title>confirmation (A B B A): {escape(str(ab.get("a1")))} / {escape(str(ab.get("b1")))} / '
                       f'{ab["b2"]:.2f} / {escape(str(ab.get("a2")))} tok/s</title></circle>')
        if kind == "discipline":
            out.append(f'<text x="{cx:.1f}" y="{top + plot_h - 6:.1f}" text-anchor="middle" fill="#ffffff" font-weight="bold">✗</text>')
        if e.get("best_tps_after"):
            step_pts.append((cx, y(e["best_tps_after"])))
        d = e.get("discipline") or {}
        if d.get("n"):
            out.append(f'<text x="{cx:.1f}" y="{top + plot_h + 13}" text-anchor="middle" fill="#555" font-size="10">'
                       f'{d["k"]}/{d["n"]}</text>')
        lab = escape(e["label"] if len(e["label"]) <= 28 else e["label"][:27] + "…")
        ly = top + plot_h + 27
        out.append(f'<text x="{cx:.1f}" y="{ly}" text-anchor="end" transform="rotate(-40 {cx:.1f} {ly})">{lab}</text>')
    if step_pts:  # one horizontal segment per experiment slot, joined vertically: a step line
        path = ""
        for cx, yy in step_pts:
            x0, x1 = cx - slot / 2, cx + slot / 2
            path += (f"M {x0:.1f} {yy:.1f} " if not path else f"V {yy:.1f} ") + f"H {x1:.1f} "
        out.append(f'<path d="{path.strip()}" fill="none" stroke="#f28e2b" stroke-width="2"/>')
    out.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#333"/>')
    # legend
    lx = left
    for key, text in (("baseline", "baseline"), ("kept", "kept (milestone)"), ("rejected", "rejected: no gain"),
                      ("discipline", "rejected: discipline"), ("crashed", "crashed")):
        out.append(f'<rect x="{lx}" y="32" width="10" height="10" fill="{COLORS[key]}"/>')
        out.append(f'<text x="{lx + 14}" y="41">{text}</text>')
        lx += 24 + 6 * len(text)
    out.append(f'<line x1="{lx}" y1="37" x2="{lx + 18}" y2="37" stroke="#f28e2b" stroke-width="2"/>')
    out.append(f'<text x="{lx + 22}" y="41">best so far</text>')
    if any(((e.get("extra") or {}).get("best_remeasured") or {}).get("tps") for e in exps):
        lx += 100
        out.append(f'<line x1="{lx}" y1="37" x2="{lx + 18}" y2="37" stroke="#222" stroke-width="2" stroke-dasharray="3,2"/>')
        out.append(f'<text x="{lx + 22}" y="41">best re-measured just before</text>')
    if abba:  # a second legend row
        out.append(f'<circle cx="{left + 5}" cy="53" r="4" fill="#ffffff" stroke="#222" stroke-width="1.5"/>')
        out.append(f'<text x="{left + 14}" y="57">candidate run again after its discipline leg (--confirm: A B B A; '
                   f'kept only when both pairs agree)</text>')
    out.append(f'<text x="{left - 6}" y="{top + plot_h + 13}" text-anchor="end" fill="#555" font-size="10">pass</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
