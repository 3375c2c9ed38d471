"""Speed: decode and prefill, latency percentiles, concurrency sweeps, agent turns, energy, server cross-checks.

Definitions of every figure live in `definitions.py` (and the README's speed section). Heavy or optional imports
(NVML) happen inside functions, so importing this package is cheap.
"""

from .definitions import DEFINITIONS, MAPPING
from .measure import Sample, sample_from_result
from .stats import percentile, summarize

__all__ = ["DEFINITIONS", "MAPPING", "Sample", "percentile", "sample_from_result", "summarize"]
