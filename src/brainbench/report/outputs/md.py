"""The Markdown report: the HTML report's tables, for an issue, a pull request or a wiki page."""

from __future__ import annotations

from ..model import Report
from ..render import discipline_rows, jinja_env
from . import output


@output("md", ".md", "Markdown report (tables)")
def render_markdown(rep: Report) -> str:
    env = jinja_env()
    env.autoescape = False
    return env.get_template("report.md.j2").render(r=rep, disc=discipline_rows(rep))
