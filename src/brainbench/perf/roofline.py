"""Decode roofline: single-stream decode reads (about) every weight once per token, so
memory bandwidth ÷ bytes read per token is an upper bound on decode tok/s.

bytes per token = model weight bytes (× the active fraction for a mixture-of-experts) + KV-cache bytes
read at the context length. Bandwidth is given (`--bandwidth-gbs`), read from NVML (bus width × max
memory clock × 2) or measured here with a large memcpy (a CPU figure, read + write bytes counted).
"""

from __future__ import annotations

import ctypes
import time
from typing import Any


def measure_memcpy_bandwidth(size_mib: int = 256, repeats: int = 3) -> float:
    """Bytes per second moved by one memcpy of `size_mib` MiB (best of `repeats`), reads + writes.

    One thread only: a lower bound on what several cores can pull."""
    n = size_mib * 2**20
    src = (ctypes.c_char * n)()
    dst = (ctypes.c_char * n)()
    ctypes.memset(src, 1, n)
    ctypes.memset(dst, 0, n)  # touch the pages first
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        ctypes.memmove(dst, src, n)
        best = min(best, time.perf_counter() - t0)
    return 2 * n / best


def roofline(model_bytes: float | None, bandwidth_bytes_per_s: float | None, measured_tps: float | None, *,
             active_fraction: float = 1.0, kv_bytes: float = 0.0, bandwidth_source: str = "given") -> dict[str, Any]:
    """The bound and how close the measured single-stream decode comes to it."""
    if not model_bytes or not bandwidth_bytes_per_s:
        missing = [n for n, v in (("model size (--model-gb)", model_bytes),
                                  ("bandwidth (--bandwidth-gbs)", bandwidth_bytes_per_s)) if not v]
        return {"computed": False, "reason": "needs " + " and ".join(missing)}
    per_token = model_bytes * active_fraction + kv_bytes
    bound = bandwidth_bytes_per_s / per_token
    return {
        "computed": True,
        "model_gb": round(model_bytes / 1e9, 4), "active_fraction": active_fraction,
        "kv_gb_per_token": round(kv_bytes / 1e9, 6),
        "bytes_per_token_gb": round(per_token / 1e9, 4),
        "bandwidth_gbs": round(bandwidth_bytes_per_s / 1e9, 2), "bandwidth_source": bandwidth_source,
        "bound_tps": round(bound, 2),
        "measured_tps": None if measured_tps is None else round(measured_tps, 2),
        "fraction_of_bound": None if measured_tps is None else round(measured_tps / bound, 4),
    }
