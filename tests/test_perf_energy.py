"""Energy metering with simulated GPUs: per-GPU and total joules, fallbacks, and 'not measured' ≠ 0."""

import time

import pytest

from brainbench.perf.energy import (
    EnergyMeter,
    NoSource,
    NvmlSource,
    SimulatedDevice,
    SimulatedSource,
    parse_gpu_selection,
    summarize_leg,
)
from brainbench.perf.legs import energy_block
from brainbench.perf.roofline import roofline


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_summarize_leg_sums_devices_from_counters_and_integrates_without():
    devs = [SimulatedDevice(0, 100.0, name="A"), SimulatedDevice(1, 300.0, name="B", counter=False)]
    samples = [(0.0, [100_000.0, 300_000.0]), (1.0, [100_000.0, 300_000.0]), (2.0, [100_000.0, 300_000.0])]
    r = summarize_leg(devs, 0.0, 2.0, [5_000.0, None], [205_000.0, None], samples)
    assert r.measured
    a, b = r.devices
    assert (a.method, a.joules, a.avg_watts) == ("counter", 200.0, 100.0)
    assert b.method == "power-integral" and b.joules == pytest.approx(600.0)
    assert r.joules == pytest.approx(800.0) and r.avg_watts == pytest.approx(400.0)
    assert r.per_token(400) == pytest.approx(2.0)
    assert r.tps_per_kw(100.0) == pytest.approx(250.0)  # 100 tok/s at 0.4 kW
    assert r.curve[0] == (0.0, 400.0)


def test_meter_with_simulated_multi_gpu_source_and_fake_clock():
    clock = FakeClock()
    devs = [SimulatedDevice(i, w, clock=clock) for i, w in enumerate([150.0, 250.0, 350.0, 450.0])]
    meter = EnergyMeter(SimulatedSource(devs), hz=50.0, clock=clock)
    with meter.measure() as leg:
        clock.t += 2.0  # the sampler sees a frozen clock; the counters see 2 s pass
    r = leg.reading
    assert r.measured and len(r.devices) == 4
    assert [d.joules for d in r.devices] == pytest.approx([300.0, 500.0, 700.0, 900.0], rel=1e-3)
    assert r.joules == pytest.approx(2400.0, rel=1e-3) and r.avg_watts == pytest.approx(1200.0, rel=1e-3)
    d = r.to_dict()
    assert d["joules"] == pytest.approx(2400.0, rel=1e-3) and len(d["devices"]) == 4


def test_meter_samples_power_at_ten_hz_or_more_in_real_time():
    meter = EnergyMeter(SimulatedSource([SimulatedDevice(0, 200.0), SimulatedDevice(1, 100.0)]), hz=20.0)
    with meter.measure() as leg:
        time.sleep(0.35)
    r = leg.reading
    assert r.sample_hz is not None and r.sample_hz >= 10
    assert r.joules == pytest.approx(300.0 * r.seconds, rel=0.05)
    with pytest.raises(ValueError):
        EnergyMeter(NoSource("x"), hz=5)


def test_without_a_gpu_energy_is_not_measured_never_zero():
    meter = EnergyMeter(NoSource("no NVIDIA GPU visible"))
    with meter.measure() as leg:
        pass
    r = leg.reading
    assert not r.measured and r.joules is None and r.avg_watts is None and r.per_token(100) is None
    block = energy_block(r, tokens=100, seconds=1.0, units=4, unit="turn")
    assert block == {"measured": False, "reason": "no NVIDIA GPU visible", "joules_per_token": None,
                     "tokens_per_s_per_kw": None, "joules_per_turn": None}
    assert meter.describe() == {"measured": False, "reason": "no NVIDIA GPU visible"}


def test_nvml_source_without_the_package_or_gpu_says_why(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pynvml(name, *a, **kw):
        if name == "pynvml":
            raise ImportError(name)
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_pynvml)
    devices, reason = NvmlSource().open()
    assert devices == [] and "nvidia-ml-py" in reason


def test_gpu_selection():
    assert parse_gpu_selection("0,2", env={}) == [0, 2]
    assert parse_gpu_selection(None, env={"CUDA_VISIBLE_DEVICES": "1,3"}) == [1, 3]
    assert parse_gpu_selection("all", env={"CUDA_VISIBLE_DEVICES": "GPU-abc"}) is None
    assert parse_gpu_selection(None, env={}) is None


def test_roofline():
    r = roofline(1e9, 100e9, 50.0)
    assert r["computed"] and r["bound_tps"] == 100.0 and r["fraction_of_bound"] == 0.5
    moe = roofline(10e9, 1000e9, None, active_fraction=0.1)
    assert moe["bound_tps"] == 1000.0 and moe["fraction_of_bound"] is None
    assert not roofline(None, 1e9, 1.0)["computed"]
