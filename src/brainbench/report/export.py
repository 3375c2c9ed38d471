"""Export a run: attempts (the export contract) and summaries, as JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from ..scoring import attempt_rows, summary
from ..store.db import RunStore

CSV_FIELDS = ["key", "pack", "scenario", "trial", "model", "status", "scored", "passed", "clean", "failures",
              "tool_calls", "tool_errors", "infra_events", "turns", "dispatches", "wall_s", "completion_tokens", "error",
              "replica"]


def export_data(store: RunStore) -> dict[str, Any]:
    rows = attempt_rows(store)
    return {
        "schema": "brainbench.export/1",
        "run": store.get_meta("run") or {},
        "attempts": rows,
        "summary": summary(rows),
        "results": store.results(),
        "infra_events": store.infra_events(),
    }


def to_json(store: RunStore) -> str:
    return json.dumps(export_data(store), indent=2)


def to_csv(store: RunStore) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    w.writeheader()
    for r in attempt_rows(store):
        w.writerow({**r, "failures": ";".join(r["failures"])})
    return buf.getvalue()
