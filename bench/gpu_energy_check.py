"""Energy self-check on a machine with NVIDIA GPUs: NVML energy counters vs the sampled power curve.

    python bench/gpu_energy_check.py [--seconds 5] [--hz 20]

Meters every visible GPU (brainbench.perf.energy, NvmlSource) over an idle window and, when torch
is installed, a matmul load window; prints per-GPU and total joules from the energy counter next to
the trapezoid integral of the >= 10 Hz power samples. The two should agree within a few percent
(NVML's power reading is itself a short average, so the integral lags steps slightly).
Runs without brainbench's dependencies: energy.py needs only the standard library and nvidia-ml-py.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path


def load_energy():
    try:
        from brainbench.perf import energy  # type: ignore
        return energy
    except ImportError:
        path = Path(__file__).resolve().parent.parent / "src" / "brainbench" / "perf" / "energy.py"
        spec = importlib.util.spec_from_file_location("bb_energy", path)
        mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules["bb_energy"] = mod
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
        return mod


def integral(curve: list[tuple[float, float]]) -> float:
    return sum((b[0] - a[0]) * (a[1] + b[1]) / 2 for a, b in zip(curve, curve[1:]))


def report(name: str, reading) -> None:
    if not reading.measured:
        print(f"{name}: not measured ({reading.reason})")
        return
    curve_j = integral(reading.curve)
    print(f"{name}: {reading.seconds:.2f}s, {reading.sample_hz:.1f} Hz sampling; total {reading.joules:.1f} J "
          f"(counter), {reading.avg_watts:.1f} W average; sampled-power integral {curve_j:.1f} J "
          f"({(curve_j / reading.joules - 1) * 100 if reading.joules else 0:+.1f}% vs counter)")
    for d in reading.devices:
        print(f"  GPU{d.index} {d.name}: {d.joules:.1f} J via {d.method}, avg {d.avg_watts:.1f} W, "
              f"peak {d.peak_watts if d.peak_watts is None else round(d.peak_watts, 1)} W, {d.samples} samples")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--hz", type=float, default=20.0)
    a = ap.parse_args()
    energy = load_energy()
    meter = energy.EnergyMeter(energy.NvmlSource(), hz=a.hz)
    print("devices:", meter.describe())
    with meter.measure() as idle:
        time.sleep(a.seconds)
    report("idle", idle.reading)
    try:
        import torch  # type: ignore
    except ImportError:
        print("load: skipped (no torch)")
        meter.close()
        return 0
    x = torch.randn(8192, 8192, device="cuda", dtype=torch.float16)
    torch.cuda.synchronize()
    with meter.measure() as load:
        t_end = time.monotonic() + a.seconds
        n = 0
        while time.monotonic() < t_end:
            for _ in range(20):
                y = x @ x
            torch.cuda.synchronize()
            n += 20
    report(f"load ({n} fp16 8192² matmuls, {n * 2 * 8192 ** 3 / a.seconds / 1e12:.0f} TFLOP/s)", load.reading)
    meter.close()
    del y
    return 0


if __name__ == "__main__":
    sys.exit(main())
