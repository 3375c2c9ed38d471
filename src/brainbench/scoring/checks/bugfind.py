"""Bug-finding checks: the answer names the buggy line, describes the bug, and (optionally) fixes it."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from . import AttemptView, Outcome, Regex
from .answer import AnswerCheck


def reported_line(text: str) -> int | None:
    m = re.search(r"(?im)^[ \t*_#>-]*line[ \t*_]*(?:number)?[ \t*_]*[:=#][ \t*_]*(\d+)", text)
    if m:
        return int(m.group(1))
    m = re.search(r"(?i)\bline\s*#?\s*(\d+)\b", text)
    return int(m.group(1)) if m else None



class BugReport(AnswerCheck):
    """The answer names the buggy line (from a `LINE: n` line) and describes the bug (in its `BUG:` part, or the
    whole answer when it has none)."""

    type: Literal["bug_report"] = "bug_report"
    lines: list[int] = Field(default_factory=list)
    """Acceptable line numbers (empty: the line is not graded)."""
    keywords: list[Regex] = Field(default_factory=list)
    """Regular expressions; at least one must match the description of the bug."""
    fix_regex: Regex | None = None
    """Regular expression a correct fix matches."""

    def run(self, view: AttemptView) -> Outcome:
        text = self.answer(view)
        line = reported_line(text)
        if self.lines:
            if line is None:
                return "no 'LINE: n' in the answer"
            if line not in self.lines:
                return f"points at line {line}, the bug is on line {'/'.join(map(str, self.lines))}"
        m = re.search(r"(?is)\bBUG\W*[:=](.*?)(?:^\W*FIX\W*[:=]|\Z)", text, re.M)
        described = m.group(1) if m else text
        if self.keywords and not any(re.search(k, described, re.I | re.S) for k in self.keywords):
            return "the bug is not named (none of the expected keywords)"
        if self.fix_regex and not re.search(self.fix_regex, text, re.I | re.S):
            return "no correct fix given"
        return None
