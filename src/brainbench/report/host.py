"""What a run ran on: CPU, cores, memory, GPU, software versions (stored as run meta 'host').

Everything here is best effort and fast: a missing tool or file leaves a field out, never fails a run.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from typing import Any


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        out = _cmd(["sysctl", "-n", "machdep.cpu.brand_string"])
        if out:
            return out
    return platform.processor() or None


def _ram_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if sys.platform == "darwin":
        out = _cmd(["sysctl", "-n", "hw.memsize"])
        if out and out.isdigit():
            return int(out)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _cmd(argv: list[str], timeout: float = 5.0) -> str | None:
    if not shutil.which(argv[0]):
        return None
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


def _gpus() -> list[dict[str, Any]]:
    out = _cmd(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader,nounits"])
    gpus = []
    for line in (out or "").splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2:
            g: dict[str, Any] = {"name": parts[0]}
            try:
                g["memory_bytes"] = int(float(parts[1]) * 2**20)
            except ValueError:
                pass
            if len(parts) > 2:
                g["driver"] = parts[2]
            gpus.append(g)
    return gpus


def host_info() -> dict[str, Any]:
    """The machine and software a run ran on."""
    from .. import __version__

    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_bytes": _ram_bytes(),
        "gpus": _gpus(),
        "os": f"{platform.system()} {platform.release()}",
        "arch": platform.machine(),
        "python": platform.python_version(),
        "brainbench": __version__,
    }
    try:
        from ..backend.build import LLAMA_CPP_PYTHON

        info["llama_cpp"] = LLAMA_CPP_PYTHON.split("==")[-1]
    except Exception:  # noqa: BLE001 - provenance must never break a run
        pass
    return {k: v for k, v in info.items() if v not in (None, "")}
