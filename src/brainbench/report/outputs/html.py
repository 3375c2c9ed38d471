"""The HTML report: one self-contained file (CSS, a few lines of JavaScript and every SVG chart inline).

It opens offline, from a mail attachment or an issue, and loads nothing from anywhere.
"""

from __future__ import annotations

from pathlib import Path

from markupsafe import Markup

from ..model import Report
from ..render import charts, discipline_rows, jinja_env
from . import output

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@output("html", ".html", "self-contained HTML report (offline, charts inline)")
def render_html(rep: Report) -> str:
    return jinja_env().get_template("report.html.j2").render(
        r=rep, c=charts(rep), disc=discipline_rows(rep), css=Markup((TEMPLATES / "style.css").read_text()),
        js=Markup((TEMPLATES / "report.js").read_text()))
