"""The tap's Prometheus metrics, in the Prometheus text exposition format (version 0.0.4), served at /metrics.

No client library: a handful of counters and histograms rendered by hand, so the tap needs no extra
dependency. Label values are escaped as the format requires.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Iterable

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Seconds: from a cached short reply to a long generation."""

_HELP = {
    "brainbench_tap_requests_total": ("counter", "Requests relayed, by route (chat, other), stream mode and HTTP status."),
    "brainbench_tap_tool_calls_total": ("counter", "Tool calls in relayed replies, by channel (structured, text)."),
    "brainbench_tap_failures_total": ("counter", "Classified failures, by failure-taxonomy id (kind)."),
    "brainbench_tap_infra_events_total": ("counter", "Infrastructure events (never model failures), by kind."),
    "brainbench_tap_conversations_total": ("counter", "Conversations opened."),
    "brainbench_tap_request_duration_seconds": ("histogram", "Chat request wall time at the tap, request in to last byte out."),
    "brainbench_tap_time_to_first_byte_seconds": ("histogram", "Chat request: request in to the first response byte out."),
}


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{_esc(str(v))}"' for k, v in pairs)
    return "{" + inner + "}" if inner else ""


class Metrics:
    """Counters and histograms keyed by (name, sorted labels)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the store's thread counts failures; the event loop the rest
        self.counters: dict[str, dict[tuple, float]] = defaultdict(lambda: defaultdict(float))
        self.hists: dict[str, dict[tuple, list]] = defaultdict(dict)

    def inc(self, name: str, by: float = 1.0, **labels: str) -> None:
        with self._lock:
            self.counters[name][tuple(sorted(labels.items()))] += by

    def observe(self, name: str, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._observe(name, key, value)

    def _observe(self, name: str, key: tuple, value: float) -> None:
        h = self.hists[name].setdefault(key, [[0] * (len(LATENCY_BUCKETS) + 1), 0.0, 0])
        h[0][bisect.bisect_left(LATENCY_BUCKETS, value)] += 1
        h[1] += value
        h[2] += 1

    def render(self) -> str:
        """The text format: HELP and TYPE for every family, then its samples."""
        with self._lock:
            return self._render()

    def _render(self) -> str:
        lines: list[str] = []
        for name, (kind, help_) in _HELP.items():
            lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
            if kind == "counter":
                for key, v in sorted(self.counters.get(name, {}).items()):
                    lines.append(f"{name}{_labels(key)} {v:g}")
                continue
            for key, (buckets, total, count) in sorted(self.hists.get(name, {}).items()):
                cum = 0
                for le, n in zip((*LATENCY_BUCKETS, float("inf")), buckets):
                    cum += n
                    lines.append(f"{name}_bucket{_labels((*key, ('le', '+Inf' if le == float('inf') else f'{le:g}')))} {cum}")
                lines.append(f"{name}_sum{_labels(key)} {total:.6f}")
                lines.append(f"{name}_count{_labels(key)} {count}")
        return "\n".join(lines) + "\n"
