"""Inline SVG charts, drawn here in Python: no JavaScript, no fonts, no network; they print and scale.

Each function returns markup for one `<svg>` (wrapped in `Markup`, so templates insert it as is). Every
label passes through `esc`; links inside charts point at anchors of the same page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from markupsafe import Markup

FONT = 'font-family="system-ui,-apple-system,Segoe UI,Roboto,sans-serif"'


def esc(s: Any) -> str:
    return escape(str(s), quote=True)


def nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp


def ticks(top: float, n: int = 5) -> list[float]:
    return [top * i / n for i in range(n + 1)]


def nice_axis(v: float, target: int = 5) -> tuple[float, list[float]]:
    """An axis top at or above `v` and round tick values (steps of 1, 2, 2.5 or 5 × 10^k)."""
    if v <= 0:
        return 1.0, [0.0, 0.5, 1.0]
    raw = v / target
    exp = 10 ** math.floor(math.log10(raw))
    step = next(m * exp for m in (1, 2, 2.5, 5, 10) if m * exp >= raw)
    top = step * math.ceil(v / step - 1e-9)
    return top, [step * i for i in range(int(round(top / step)) + 1)]


def fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.0f}" if v == int(v) else f"{v:.1f}"
    return f"{v:.2g}" if abs(v) < 1 else (f"{v:.0f}" if v == int(v) else f"{v:.1f}")


def _svg(w: int, h: int, body: list[str], label: str) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" style="max-width:{w}px" '
        f'role="img" aria-label="{esc(label)}" {FONT} font-size="12">' + "".join(body) + "</svg>"
    )


def empty(message: str, w: int = 640, h: int = 60) -> Markup:
    return _svg(w, h, [f'<text x="{w / 2}" y="{h / 2 + 4}" text-anchor="middle" fill="#777">{esc(message)}</text>'],
                message)


def scatter(points: Sequence[dict[str, Any]], x_label: str, y_label: str, w: int = 680, h: int = 420) -> Markup:
    """One point per brain: x = speed, y = a rate in [0,1] with its CI as a vertical whisker."""
    pts = [p for p in points if p.get("x") is not None and p.get("y") is not None]
    missing = [p for p in points if p not in pts]
    left, right, top, bottom = 60, 24, 20, 56
    pw, ph = w - left - right, h - top - bottom
    xmax, xticks = nice_axis(max((max(p["x"], p.get("x_hi") or 0) for p in pts), default=1.0) * 1.08)

    def X(v: float) -> float:
        return left + pw * v / xmax

    def Y(v: float) -> float:
        return top + ph * (1 - v)

    body = [f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ddd"/>']
    # quadrant hint: top-right is where you want to be
    body.append(f'<text x="{left + pw - 6}" y="{top + 14}" text-anchor="end" fill="#2a7" font-size="11">'
                f'fast and disciplined ↗</text>')
    for t in ticks(1.0, 5):
        body.append(f'<line x1="{left}" x2="{left + pw}" y1="{Y(t):.1f}" y2="{Y(t):.1f}" stroke="#e6e6e6"/>')
        body.append(f'<text x="{left - 6}" y="{Y(t) + 4:.1f}" text-anchor="end" fill="#555">{100 * t:.0f}%</text>')
    for t in xticks:
        body.append(f'<line y1="{top}" y2="{top + ph}" x1="{X(t):.1f}" x2="{X(t):.1f}" stroke="#eee"/>')
        body.append(f'<text x="{X(t):.1f}" y="{top + ph + 16}" text-anchor="middle" fill="#555">{fmt(t)}</text>')
    body.append(f'<text x="{left + pw / 2}" y="{h - 12}" text-anchor="middle" fill="#222">{esc(x_label)}</text>')
    body.append(f'<text transform="translate(16 {top + ph / 2}) rotate(-90)" text-anchor="middle" fill="#222">'
                f'{esc(y_label)}</text>')
    for p in pts:
        cx, cy = X(p["x"]), Y(p["y"])
        color = esc(p.get("color", "#333"))
        tip = esc(p.get("tip") or p["label"])
        g = [f'<a href="{esc(p["href"])}">' if p.get("href") else "", f'<g class="pt"><title>{tip}</title>']
        if p.get("y_lo") is not None and p.get("y_hi") is not None:
            y1, y2 = Y(p["y_lo"]), Y(p["y_hi"])
            g.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y1:.1f}" y2="{y2:.1f}" stroke="{color}" stroke-width="2"/>')
            for yy in (y1, y2):
                g.append(f'<line x1="{cx - 5:.1f}" x2="{cx + 5:.1f}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="{color}" stroke-width="2"/>')
        if p.get("x_lo") is not None and p.get("x_hi") is not None and p["x_hi"] > p["x_lo"]:
            x1, x2 = X(p["x_lo"]), X(p["x_hi"])
            g.append(f'<line x1="{x1:.1f}" x2="{x2:.1f}" y1="{cy:.1f}" y2="{cy:.1f}" stroke="{color}" stroke-width="1.5" '
                     f'stroke-dasharray="3 2"/>')
        g.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="7" fill="{color}" stroke="#fff" stroke-width="2"/>')
        anchor = "end" if cx > left + pw * 0.75 else "start"
        dx = -11 if anchor == "end" else 11
        g.append(f'<text x="{cx + dx:.1f}" y="{cy - 8:.1f}" text-anchor="{anchor}" fill="#111" font-weight="600">'
                 f'{esc(p["label"])}</text>')
        g.append("</g>" + ("</a>" if p.get("href") else ""))
        body.append("".join(g))
    why: dict[str, list[str]] = {}
    for p in missing:  # each point may say why it is missing (default: no speed figure)
        why.setdefault(p.get("why") or ("speed not measured" if p.get("x") is None else "rate not measured"),
                       []).append(str(p["label"]))
    for i, (reason, names) in enumerate(why.items()):
        body.append(f'<text x="{left + 6}" y="{top + ph - 8 - 14 * i}" fill="#a00" font-size="11">'
                    f'not plotted ({esc(reason)}): {esc(", ".join(names))}</text>')
    return _svg(w, h, body, f"{y_label} against {x_label}")


def hbars(rows: Sequence[dict[str, Any]], w: int = 390, bar_h: int = 14, label_w: int = 110,
          value_fmt: str = "pct") -> Markup:
    """Horizontal bars in [0,1] with CI whiskers; rows: {group, label, color, value, lo, hi, note}."""
    if not rows:
        return empty("nothing to show")
    right = 96
    pw = w - label_w - right
    gap_group = 10
    y = 8
    body: list[str] = []
    last_group = None
    for r in rows:
        if r.get("group") != last_group:
            if last_group is not None:
                y += gap_group
            body.append(f'<text x="4" y="{y + 12}" font-weight="600" fill="#222">{esc(r.get("group", ""))}</text>')
            y += 18
            last_group = r.get("group")
        body.append(f'<text x="{label_w - 8}" y="{y + bar_h - 4}" text-anchor="end" fill="#333">{esc(r["label"])}</text>')
        body.append(f'<rect x="{label_w}" y="{y}" width="{pw}" height="{bar_h}" fill="#f1f1f1"/>')
        v = r.get("value")
        if v is None:
            body.append(f'<text x="{label_w + 6}" y="{y + bar_h - 4}" fill="#888">{esc(r.get("note") or "not measured")}</text>')
        else:
            color = esc(r.get("color", "#468"))
            tip = esc(r.get("tip") or f'{r["label"]}: {100 * v:.0f}%')
            body.append(f'<g><title>{tip}</title><rect x="{label_w}" y="{y}" width="{pw * v:.1f}" height="{bar_h}" '
                        f'fill="{color}" opacity="0.85"/></g>')
            if r.get("lo") is not None and r.get("hi") is not None:
                x1, x2 = label_w + pw * r["lo"], label_w + pw * r["hi"]
                cy = y + bar_h / 2
                body.append(f'<line x1="{x1:.1f}" x2="{x2:.1f}" y1="{cy}" y2="{cy}" stroke="#111" stroke-width="1.5"/>')
                for xx in (x1, x2):
                    body.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{y + 3}" y2="{y + bar_h - 3}" stroke="#111" stroke-width="1.5"/>')
            text = f"{100 * v:.0f}%" if value_fmt == "pct" else f"{v:.2f}"
            if r.get("extra"):
                text += f' {r["extra"]}'
            body.append(f'<text x="{label_w + pw + 6}" y="{y + bar_h - 4}" fill="#222">{esc(text)}</text>')
        y += bar_h + 4
    return _svg(w, int(y + 8), body, "bar chart")


def lines(series: Sequence[dict[str, Any]], x_label: str, y_label: str, w: int = 460, h: int = 280) -> Markup:
    """Line chart; series: {label, color, points: [(x, y)]}; a log2 x axis when x spans 8× or more."""
    series = [dict(s, points=[(x, y) for x, y in s["points"] if x is not None and y is not None]) for s in series]
    series = [s for s in series if s["points"]]
    if not series:
        return empty("not measured", w, 60)
    left, right, top, bottom = 56, 16, 16, 64
    pw, ph = w - left - right, h - top - bottom
    xs = sorted({x for s in series for x, _ in s["points"]})
    ymax, yticks = nice_axis(max(y for s in series for _, y in s["points"]) * 1.05, 4)
    logx = xs[0] > 0 and xs[-1] / xs[0] >= 8
    if logx:
        lo, hi = math.log2(xs[0]), math.log2(xs[-1])
    else:
        lo, hi = 0.0, float(xs[-1])
    span = (hi - lo) or 1.0

    def X(v: float) -> float:
        return left + pw * (((math.log2(v) if logx else v) - lo) / span)

    def Y(v: float) -> float:
        return top + ph * (1 - v / ymax)

    body = [f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ddd"/>']
    for t in yticks:
        body.append(f'<line x1="{left}" x2="{left + pw}" y1="{Y(t):.1f}" y2="{Y(t):.1f}" stroke="#e6e6e6"/>')
        body.append(f'<text x="{left - 6}" y="{Y(t) + 4:.1f}" text-anchor="end" fill="#555">{fmt(t)}</text>')
    for x in xs:
        body.append(f'<text x="{X(x):.1f}" y="{top + ph + 16}" text-anchor="middle" fill="#555">{fmt(x)}</text>')
    body.append(f'<text x="{left + pw / 2}" y="{top + ph + 34}" text-anchor="middle" fill="#222">{esc(x_label)}'
                f'{" (log scale)" if logx else ""}</text>')
    body.append(f'<text x="{left}" y="{top - 4}" fill="#222" font-weight="600">{esc(y_label)}</text>')
    lx = left
    for s in series:
        color = esc(s.get("color", "#333"))
        dash = ' stroke-dasharray="5 3"' if s.get("dash") else ""
        d = " ".join(f"{'M' if i == 0 else 'L'}{X(x):.1f},{Y(y):.1f}" for i, (x, y) in enumerate(s["points"]))
        body.append(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        for x, y in s["points"]:
            body.append(f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="3.5" fill="{color}"><title>{esc(s["label"])}: '
                        f'{fmt(y)} at {fmt(x)}</title></circle>')
        body.append(f'<rect x="{lx}" y="{h - 16}" width="10" height="10" fill="{color}"/>'
                    f'<text x="{lx + 14}" y="{h - 7}" fill="#333">{esc(s["label"])}</text>')
        lx += 22 + 7 * len(str(s["label"]))
    return _svg(w, h, body, f"{y_label} against {x_label}")


CHAR_W = 0.62
"""Average glyph width as a share of the font size (system-ui digits and lower case, rounded up), so a label's
box is known before a browser draws it."""


@dataclass
class Label:
    """One text label of a chart, with the box it takes (for laying labels out so none overlaps another)."""

    x: float
    y: float
    text: str
    anchor: str = "start"
    fill: str = "#111"
    size: int = 12
    bold: bool = False

    @property
    def width(self) -> float:
        return len(self.text) * self.size * (CHAR_W + (0.05 if self.bold else 0.0))

    def box(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1): the text's extent, ascent above the baseline and descent below it."""
        x0 = self.x - {"middle": self.width / 2, "end": self.width}.get(self.anchor, 0.0)
        return x0, self.y - 0.8 * self.size, x0 + self.width, self.y + 0.25 * self.size

    def svg(self) -> str:
        weight = ' font-weight="600"' if self.bold else ""
        return (f'<text x="{self.x:.1f}" y="{self.y:.1f}" text-anchor="{self.anchor}" fill="{self.fill}" '
                f'font-size="{self.size}"{weight}>{esc(self.text)}</text>')


def overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _short(label: str, n: int = 24) -> str:
    return label if len(label) <= n else label[: n - 1] + "…"


ICE_COLORS = {"visible": "#d9534f", "invisible": "#7a4fa3", "retry": "#e0a030"}
GAP = 10.0
"""Room kept between neighbouring labels (px)."""


def iceberg_layout(cols: Sequence[dict[str, Any]], w: int = 680, h: int = 320) -> dict[str, Any]:
    """Where every bar and label of the iceberg goes: each column is made as wide as its widest label needs
    (the chart widens rather than letting labels overlap; long names are shortened, the full name in the
    tooltip). Returns the width, the waterline, bars [(x, y, w, h, colour, tooltip)] and labels."""
    left, right, top = 10, 10, 54
    water = top + (h - top - 30) * 0.38
    below_h, above_h = h - 30 - water, water - top
    peak_up = max((c["visible"] for c in cols), default=0)
    peak_down = max((c["invisible"] + c["retry"] for c in cols), default=0)
    scale = min(above_h / peak_up if peak_up else 1e9, below_h / peak_down if peak_down else 1e9)
    scale = 1.0 if scale == 1e9 else scale
    texts = [_col_labels(c, h, water) for c in cols]
    colw = (w - left - right) / len(cols)
    for t in texts:  # centred labels fit the column; a side label fits between its bar and the next bar
        centred = max(x.width for x in (t.top, t.name, t.up) if x) + GAP
        side = max(x.width for x in t.side) + 4 + GAP
        colw = max(colw, centred, side / 0.7)  # the bar takes at most 30% of the column
    bw = min(90.0, colw * 0.3)
    bars: list[tuple[float, float, float, float, str, str]] = []
    labels = _legend()
    for i, (c, t) in enumerate(zip(cols, texts, strict=True)):
        cx = left + colw * i + colw / 2
        x0 = cx - bw / 2
        up, inv, ret = c["visible"] * scale, c["invisible"] * scale, c["retry"] * scale
        name = esc(c["label"])
        bars += [(x0, water - up, bw, up, ICE_COLORS["visible"], f'{name}: {c["visible"]} failures with an error line'),
                 (x0, water, bw, inv, ICE_COLORS["invisible"], f'{name}: {c["invisible"]} silent failures (no error line)'),
                 (x0, water + inv, bw, ret, ICE_COLORS["retry"], f'{name}: {c["retry"]} passes only after a protocol violation')]
        t.top.x = t.name.x = cx
        if t.up:
            t.up.x, t.up.y = cx, water - up - 4
        for lab in t.side:
            lab.x = cx + bw / 2 + 4
        labels += [t.top, t.name, *([t.up] if t.up else []), *t.side]
    width = max(w, int(math.ceil(max(lab.box()[2] for lab in labels) + right)), int(left + right + colw * len(cols)))
    return {"width": width, "water": water, "bars": bars, "labels": labels}


@dataclass
class _ColLabels:
    top: Label
    name: Label
    up: Label | None
    side: list[Label]


def _col_labels(c: dict[str, Any], h: int, water: float) -> _ColLabels:
    """One column's labels, placed across once the column width is known."""
    side = [Label(0, water + 14, f'{c["invisible"]} silent', fill="#4b2d6b")]
    if c["retry"]:
        side.append(Label(0, water + 28, f'{c["retry"]} after retry', fill="#8a5a00"))
    return _ColLabels(top=Label(0, 32, f'{c["attempts"]} attempts, {c["clean"]} clean', "middle", "#555"),
                      name=Label(0, h - 10, _short(str(c["label"])), "middle", "#111", bold=True),
                      up=Label(0, 0, f'{c["visible"]} error lines', "middle", "#a33") if c["visible"] else None,
                      side=side)


def _legend() -> list[Label]:
    """The waterline and the three colours, in one row above the chart."""
    out = [Label(30, 13, "waterline: what a log or error count shows", fill="#3b82c4", size=11)]
    x = out[0].box()[2] + 16
    for text in ("error line", "silent failure", "won after retry"):  # in the order of ICE_COLORS
        out.append(Label(x + 14, 13, text, fill="#333", size=11))
        x = out[-1].box()[2] + 12
    return out


def iceberg(cols: Sequence[dict[str, Any]], w: int = 680, h: int = 320) -> Markup:
    """Per brain: failures a log shows (above the waterline) and those nothing shows (below it)."""
    if not cols:
        return empty("nothing to show")
    lay = iceberg_layout(cols, w, h)
    width, water = lay["width"], lay["water"]
    body = [f'<rect x="0" y="{water:.1f}" width="{width}" height="{h - water:.1f}" fill="#e3f0fb"/>',
            f'<line x1="0" x2="{width}" y1="{water:.1f}" y2="{water:.1f}" stroke="#3b82c4" stroke-width="2"/>',
            '<line x1="6" x2="26" y1="9" y2="9" stroke="#3b82c4" stroke-width="2"/>']
    for lab, color in zip(lay["labels"][1:4], ICE_COLORS.values(), strict=True):  # the legend's swatches
        body.append(f'<rect x="{lab.x - 14:.1f}" y="4" width="10" height="10" fill="{color}"/>')
    for x, y, bw, bh, color, tip in lay["bars"]:
        body.append(f'<g><title>{tip}</title><rect x="{x:.1f}" y="{y:.1f}" width="{bw:.1f}" height="{bh:.1f}" '
                    f'fill="{color}"/></g>')
    body += [lab.svg() for lab in lay["labels"]]
    return _svg(width, h, body, "failure iceberg")
