"""A scored attempt: what scoring hands to metrics, the store and reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Verdict:
    passed: bool
    clean: bool
    """Passed on the first dispatch with no turn-end nudge and no protocol violation."""
    failures: list[str] = field(default_factory=list)
    """Failure-taxonomy ids, one entry per occurrence (a class may repeat)."""
    details: dict[str, Any] = field(default_factory=dict)
