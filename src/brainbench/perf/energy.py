"""GPU energy around a leg: cumulative energy counters plus a sampled power curve, per GPU and in total.

The device source is pluggable: `NvmlSource` reads NVIDIA GPUs through NVML (`nvidia-ml-py`, imported
only when asked for), `SimulatedSource` feeds made-up devices to the same meter so multi-GPU aggregation
is testable without a GPU. Without a device the reading says "not measured" (with the reason), never 0.

Joules come from each GPU's cumulative energy counter (`nvmlDeviceGetTotalEnergyConsumption`, mJ since
the driver loaded) read at the start and end of the leg; where a GPU has no counter (pre-Volta), from
the trapezoid integral of the sampled power instead, and the reading says which method it used.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class PowerDevice(Protocol):
    index: int
    name: str

    def energy_mj(self) -> float | None:
        """Cumulative energy in millijoules (monotonic), or None when the device has no counter."""

    def power_mw(self) -> float | None:
        """Current power draw in milliwatts, or None when unavailable."""


class DeviceSource(Protocol):
    def open(self) -> tuple[list[PowerDevice], str | None]:
        """(devices, reason): the devices to meter, or [] and why none can be."""

    def close(self) -> None: ...


# -- NVML -------------------------------------------------------------------------------------------


def parse_gpu_selection(spec: str | None, env: Mapping[str, str] | None = None) -> list[int] | None:
    """'all' / None → the GPUs CUDA_VISIBLE_DEVICES names (if numeric), else every GPU (None);
    '0,2' → those NVML indices."""
    env = os.environ if env is None else env
    if spec and spec.strip().lower() != "all":
        return [int(x) for x in spec.split(",") if x.strip()]
    cvd = env.get("CUDA_VISIBLE_DEVICES", "").strip()
    if cvd and all(p.strip().isdigit() for p in cvd.split(",")):
        return [int(p) for p in cvd.split(",")]
    return None


class _NvmlDevice:
    def __init__(self, nvml: Any, index: int):
        self._nvml = nvml
        self.index = index
        self._h = nvml.nvmlDeviceGetHandleByIndex(index)
        name = nvml.nvmlDeviceGetName(self._h)
        self.name = name.decode() if isinstance(name, bytes) else str(name)
        try:
            nvml.nvmlDeviceGetTotalEnergyConsumption(self._h)
            self._has_counter = True
        except Exception:  # NVMLError_NotSupported on pre-Volta GPUs
            self._has_counter = False

    def energy_mj(self) -> float | None:
        if not self._has_counter:
            return None
        return float(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._h))

    def power_mw(self) -> float | None:
        try:
            return float(self._nvml.nvmlDeviceGetPowerUsage(self._h))
        except Exception:
            return None

    def bandwidth_bytes_per_s(self) -> float | None:
        """Peak memory bandwidth from bus width × max memory clock × 2 (double data rate)."""
        try:
            bits = self._nvml.nvmlDeviceGetMemoryBusWidth(self._h)
            mhz = self._nvml.nvmlDeviceGetMaxClockInfo(self._h, self._nvml.NVML_CLOCK_MEM)
            return bits / 8 * mhz * 1e6 * 2
        except Exception:
            return None

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "name": self.name}
        try:
            out["power_limit_w"] = self._nvml.nvmlDeviceGetEnforcedPowerLimit(self._h) / 1000
        except Exception:
            pass
        bw = self.bandwidth_bytes_per_s()
        if bw:
            out["bandwidth_gbs"] = round(bw / 1e9, 1)
        return out


class NvmlSource:
    """Every GPU NVML sees (or the ones `indices` names). nvidia-ml-py is imported here, lazily."""

    def __init__(self, indices: Sequence[int] | None = None):
        self.indices = list(indices) if indices is not None else None
        self._nvml: Any = None

    def open(self) -> tuple[list[PowerDevice], str | None]:
        try:
            import pynvml  # provided by nvidia-ml-py
        except ImportError:
            return [], "nvidia-ml-py is not installed; pip install 'brainbench[energy]'"
        try:
            pynvml.nvmlInit()
        except Exception as e:
            return [], f"no NVIDIA GPU visible (NVML: {e})"
        self._nvml = pynvml
        try:
            count = pynvml.nvmlDeviceGetCount()
            wanted = self.indices if self.indices is not None else list(range(count))
            bad = [i for i in wanted if i >= count]
            if bad:
                return [], f"GPU index {bad[0]} not present (NVML sees {count})"
            devices = [_NvmlDevice(pynvml, i) for i in wanted]
        except Exception as e:
            return [], f"NVML error: {e}"
        if not devices:
            return [], "NVML sees no GPU"
        return devices, None  # type: ignore[return-value]

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass
            self._nvml = None


# -- simulated devices (tests, demos) ---------------------------------------------------------------


class SimulatedDevice:
    """A device drawing `watts(t)` (t = seconds since creation); its counter integrates that exactly
    for a constant draw, and to within the integration step otherwise."""

    def __init__(self, index: int, watts: float | Callable[[float], float], *, name: str = "SimGPU",
                 counter: bool = True, clock: Callable[[], float] = time.monotonic, start_mj: float = 1e9):
        self.index, self.name = index, name
        self._watts = watts if callable(watts) else (lambda t, w=float(watts): w)
        self._counter = counter
        self._clock = clock
        self._t0 = clock()
        self._start_mj = start_mj

    def _integral_j(self, t: float) -> float:
        steps = max(1, int(t / 0.001))
        dt = t / steps
        return sum(self._watts((i + 0.5) * dt) for i in range(steps)) * dt

    def energy_mj(self) -> float | None:
        if not self._counter:
            return None
        return self._start_mj + self._integral_j(self._clock() - self._t0) * 1000

    def power_mw(self) -> float | None:
        return self._watts(self._clock() - self._t0) * 1000


class SimulatedSource:
    def __init__(self, devices: list[Any], reason: str | None = None):
        self.devices, self.reason = devices, reason

    def open(self) -> tuple[list[PowerDevice], str | None]:
        return (list(self.devices), None) if self.devices else ([], self.reason or "no simulated devices")

    def close(self) -> None:
        pass


class NoSource:
    def __init__(self, reason: str):
        self.reason = reason

    def open(self) -> tuple[list[PowerDevice], str | None]:
        return [], self.reason

    def close(self) -> None:
        pass


# -- the meter --------------------------------------------------------------------------------------


@dataclass
class DeviceEnergy:
    index: int
    name: str
    joules: float
    avg_watts: float
    peak_watts: float | None
    samples: int
    method: str
    """'counter' (energy counter delta) or 'power-integral' (trapezoid over the sampled power)."""

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "joules": round(self.joules, 3),
                "avg_watts": round(self.avg_watts, 2),
                "peak_watts": None if self.peak_watts is None else round(self.peak_watts, 2),
                "samples": self.samples, "method": self.method}


@dataclass
class EnergyReading:
    """Energy over one leg; `measured` False means the numbers are unknown (not zero)."""

    measured: bool
    reason: str | None = None
    seconds: float = 0.0
    devices: list[DeviceEnergy] = field(default_factory=list)
    curve: list[tuple[float, float]] = field(default_factory=list)
    """(seconds since start, total watts over all devices) at the sampling rate."""
    sample_hz: float | None = None

    @property
    def joules(self) -> float | None:
        return sum(d.joules for d in self.devices) if self.measured else None

    @property
    def avg_watts(self) -> float | None:
        if not self.measured or self.seconds <= 0:
            return None
        return self.joules / self.seconds  # type: ignore[operator]

    def per_token(self, tokens: int | None) -> float | None:
        """Joules per generated token."""
        if not self.measured or not tokens:
            return None
        return self.joules / tokens  # type: ignore[operator]

    def tps_per_kw(self, tokens_per_s: float | None) -> float | None:
        """Generation tok/s per kW of average draw (= tokens per kJ)."""
        w = self.avg_watts
        if w is None or not w or tokens_per_s is None:
            return None
        return tokens_per_s / (w / 1000)

    def to_dict(self, curve_points: int = 200) -> dict[str, Any]:
        if not self.measured:
            return {"measured": False, "reason": self.reason}
        step = max(1, len(self.curve) // curve_points)
        return {
            "measured": True, "seconds": round(self.seconds, 4), "joules": round(self.joules or 0.0, 3),
            "avg_watts": None if self.avg_watts is None else round(self.avg_watts, 2),
            "sample_hz": None if self.sample_hz is None else round(self.sample_hz, 1),
            "devices": [d.to_dict() for d in self.devices],
            "curve": [(round(t, 3), round(w, 1)) for t, w in self.curve[::step]],
        }


def not_measured(reason: str) -> EnergyReading:
    return EnergyReading(measured=False, reason=reason)


class EnergyMeter:
    """Open once per run; `measure()` wraps each leg:

        meter = EnergyMeter(NvmlSource())
        with meter.measure() as leg:
            ...                       # the timed work
        leg.reading.joules           # None when not measured
    """

    def __init__(self, source: DeviceSource | None, hz: float = 10.0, clock: Callable[[], float] = time.monotonic):
        if hz < 10:
            raise ValueError("power sampling must run at >= 10 Hz")
        self.source = source or NoSource("energy metering is off")
        self.hz = hz
        self.clock = clock
        self.devices, self.reason = self.source.open()

    @property
    def available(self) -> bool:
        return bool(self.devices)

    def describe(self) -> dict[str, Any]:
        if not self.devices:
            return {"measured": False, "reason": self.reason}
        return {"measured": True, "gpus": [d.info() if hasattr(d, "info") else {"index": d.index, "name": d.name}
                                          for d in self.devices]}

    def close(self) -> None:
        self.source.close()

    def measure(self) -> _Leg:
        return _Leg(self)


class _Leg:
    def __init__(self, meter: EnergyMeter):
        self.meter = meter
        self.reading: EnergyReading = not_measured(meter.reason or "not measured")
        self._stop = threading.Event()
        self._samples: list[tuple[float, list[float | None]]] = []
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        t = self.meter.clock()
        self._samples.append((t, [d.power_mw() for d in self.meter.devices]))

    def _loop(self) -> None:
        period = 1.0 / self.meter.hz
        next_t = self.meter.clock()
        while not self._stop.is_set():
            self._sample()
            next_t += period
            self._stop.wait(max(0.0, next_t - self.meter.clock()))

    def __enter__(self) -> _Leg:
        if not self.meter.devices:
            return self
        self._e0 = [d.energy_mj() for d in self.meter.devices]
        self._t0 = self.meter.clock()
        self._thread = threading.Thread(target=self._loop, name="brainbench-power", daemon=True)
        self._thread.start()
        return self

    async def __aenter__(self) -> _Leg:
        return self.__enter__()

    async def __aexit__(self, *exc: Any) -> None:
        self.__exit__(*exc)

    def __exit__(self, *exc: Any) -> None:
        if not self.meter.devices or self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._sample()
        t1 = self.meter.clock()
        e1 = [d.energy_mj() for d in self.meter.devices]
        self.reading = summarize_leg(self.meter.devices, self._t0, t1, self._e0, e1, self._samples)


def summarize_leg(devices: Sequence[PowerDevice], t0: float, t1: float, e0: Sequence[float | None],
                  e1: Sequence[float | None], samples: Sequence[tuple[float, Sequence[float | None]]]) -> EnergyReading:
    """Per-device and total energy from counter readings and power samples (pure; unit-tested)."""
    seconds = max(t1 - t0, 1e-9)
    out: list[DeviceEnergy] = []
    for k, dev in enumerate(devices):
        series = [(t, w / 1000) for t, p in samples if (w := p[k]) is not None]
        peak = max((w for _, w in series), default=None)
        if e0[k] is not None and e1[k] is not None:
            joules, method = (e1[k] - e0[k]) / 1000, "counter"  # type: ignore[operator]
        elif len(series) >= 2:
            joules = sum((b[0] - a[0]) * (a[1] + b[1]) / 2 for a, b in zip(series, series[1:]))
            joules *= seconds / max(series[-1][0] - series[0][0], 1e-9)  # stretch to the leg's span
            method = "power-integral"
        else:
            return not_measured(f"GPU {dev.index} has neither an energy counter nor power readings")
        out.append(DeviceEnergy(dev.index, dev.name, joules, joules / seconds, peak, len(series), method))
    curve = [(t - t0, sum(w for w in p if w is not None) / 1000) for t, p in samples]
    hz = (len(samples) - 1) / (samples[-1][0] - samples[0][0]) if len(samples) > 1 and samples[-1][0] > samples[0][0] else None
    return EnergyReading(measured=True, seconds=seconds, devices=out, curve=curve, sample_hz=hz)


def make_source(mode: str, gpus: str | None = None) -> DeviceSource:
    """`--energy auto|nvml|off` → a source."""
    if mode == "off":
        return NoSource("energy metering switched off (--energy off)")
    return NvmlSource(parse_gpu_selection(gpus))
