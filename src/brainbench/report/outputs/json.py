"""The report's data as JSON: each brain's figures, without attempt rows and transcripts (`brainbench export` has those)."""

from __future__ import annotations

import json

from ..model import Report
from . import output

LEFT_OUT = {"rows", "failed", "scenario_hashes"}
"""Entry fields too big or too internal for this view."""


@output("json", ".json", "the report's figures as JSON (no attempt rows or transcripts)")
def render_json(rep: Report) -> str:
    slim = {"title": rep.title, "incomplete": rep.incomplete, "left_out": rep.left_out, "warnings": rep.warnings,
            "entries": [e.model_dump(exclude=LEFT_OUT) for e in rep.entries]}
    return json.dumps(slim, default=str)
