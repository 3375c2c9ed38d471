"""Run the speed legs against one backend and store them in a run directory (kind 'speed')."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from ..backend import BackendSpec, check_model_served, open_backend
from ..client import ChatClient, Endpoint
from ..core.errors import BrainbenchError
from . import crosscheck, legs
from .energy import EnergyMeter, make_source
from .legs import Driver, SpeedOptions
from .load import LoadWatch
from .measure import Sample
from .roofline import measure_memcpy_bandwidth, roofline
from .stream import RawStreamClient
from .wire import timed_http

SCHEMA = "brainbench.speed/1"
RESULT_KIND = "speed"


@dataclass
class SpeedSettings:
    """Everything about a speed run that is not a leg option."""

    energy: str = "auto"
    """auto (NVML when a GPU is visible, else 'not measured'), nvml (required), off."""
    gpus: str | None = None
    power_hz: float = 10.0
    bandwidth_gbs: float | None = None
    model_gb: float | None = None
    active_fraction: float = 1.0
    timeout: float = 600.0
    store_requests: bool = True
    client: str = "raw"
    """Timed calls: 'raw' (lean streaming client, OpenAI API only) or 'httpx' (the project's ChatClient)."""


def embedded_server_args(spec: BackendSpec, opt: SpeedOptions) -> BackendSpec:
    """Give the embedded server enough context for the legs, in one KV pool its slots share (unless the
    user set -c or the KV layout); open_backend gives it one slot per request in flight."""
    if not spec.brain or spec.engine != "llama":  # vLLM sizes its own KV cache (VLLM_CPU_KVCACHE_SPACE)
        return spec
    args = list(spec.server_args)
    if not any(a in ("-c", "--ctx-size", "-kvu", "--kv-unified", "-no-kvu", "--no-kv-unified") for a in args):
        args += ["-c", str(opt.ctx_total()), "--kv-unified"]
    return BackendSpec(**{**spec.__dict__, "server_args": args})


def _requests(samples: list[Sample]) -> list[dict[str, Any]]:
    return [s.to_dict() for s in samples]


async def run_legs(endpoint: Endpoint, opt: SpeedOptions, meter: EnergyMeter, settings: SpeedSettings,
                   log: Callable[[str], None]) -> tuple[dict[str, Any], dict[str, list[Sample]]]:
    """All chosen legs, in order: decode, prefill, sweep, agent. Returns (report, samples per leg)."""
    report: dict[str, Any] = {}
    samples: dict[str, list[Sample]] = {}
    if endpoint.api == "openai" and settings.client == "raw":
        timed: Any = RawStreamClient(endpoint.base_url, endpoint.model, api_key=endpoint.api_key,
                                     timeout=settings.timeout)
    else:
        timed = ChatClient(endpoint, timeout=settings.timeout, retries=0,
                           http=timed_http(endpoint.api_key, settings.timeout))
    async with timed, \
            ChatClient(endpoint, timeout=settings.timeout, retries=3, backoff=1.0) as setup:
        d = Driver(timed, setup, endpoint.api)
        report["probe"] = await d.probe(log)
        if not report["probe"]["fixed_length"]:
            log("the server does not hold the generation length (ignore_eos/min_tokens); actual lengths are reported")
        scrape = None
        headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
        http = httpx.AsyncClient(headers=headers)
        if endpoint.api == "openai" and await crosscheck.scrape(http, endpoint.base_url) is not None:
            async def scrape() -> dict[str, float] | None:
                return await crosscheck.scrape(http, endpoint.base_url)
            log("server /metrics found: server-side means are shown next to ours")
        if "decode" in opt.legs:
            log(f"decode: {opt.warmup} warm-up, then {opt.decode_runs}+ runs of {opt.gen_tokens} tokens")
            report["decode"], samples["decode"] = await _watched("decode", legs.decode_leg(d, opt, meter, log), log)
        if "prefill" in opt.legs:
            log(f"prefill at {opt.prefill_lengths} tokens, cache-busted and cache-warm")
            report["prefill"], samples["prefill"] = await _watched("prefill", legs.prefill_leg(d, opt, log), log)
        if "sweep" in opt.legs:
            if "decode" not in opt.legs:
                await d.request(legs.messages(d.cal.words_for(opt.prompt_tokens), legs.nonce()), opt.gen_tokens)
            log(f"sweep over concurrency {opt.concurrency}")
            report["sweep"], samples["sweep"] = await _watched("sweep", legs.sweep_leg(d, opt, meter, scrape, log), log)
        if "agent" in opt.legs:
            log(f"agent: {opt.agent_turns} turns, modes {opt.agent_modes}, concurrency {opt.agent_concurrency}")
            report["agent"], samples["agent"] = await _watched("agent", legs.agent_leg(d, opt, meter, log), log)
        await http.aclose()
    return report, samples


async def _watched(leg: str, work: Awaitable[tuple[dict[str, Any], list[Sample]]],
                   log: Callable[[str], None]) -> tuple[dict[str, Any], list[Sample]]:
    """Run one timed leg under a load watch; the leg's figures carry the load (`load`), a warning is logged."""
    async with LoadWatch(leg) as watch:
        data, samples = await work
    if watch.warning:
        log(f"warning: {watch.warning}")
    return {**data, "load": watch.result()}, samples


def load_warnings(report: dict[str, Any]) -> list[str]:
    """The legs' load warnings, one line each."""
    return [w for leg in ("decode", "prefill", "sweep", "agent")
            if (w := ((report.get(leg) or {}).get("load") or {}).get("warning"))]


def _bandwidth(settings: SpeedSettings, meter: EnergyMeter, local_cpu: bool) -> tuple[float | None, str]:
    if settings.bandwidth_gbs:
        return settings.bandwidth_gbs * 1e9, "given (--bandwidth-gbs)"
    bws = [d.bandwidth_bytes_per_s() for d in meter.devices if hasattr(d, "bandwidth_bytes_per_s")]
    if bws and all(bws):
        return sum(bws), f"NVML: bus width × max memory clock × 2, summed over {len(bws)} GPU(s)"
    if local_cpu:
        return measure_memcpy_bandwidth(), "measured: one-thread memcpy of 256 MiB (reads + writes)"
    return None, "unknown"


def _weights_bytes(spec: BackendSpec) -> int | None:
    """Bytes of the weights the embedded engine reads per token: the GGUF, or vLLM's bf16 safetensors."""
    from ..backend import MODELS

    if not spec.brain or spec.brain not in MODELS:
        return None
    if spec.engine == "vllm":
        from ..backend.vllm import weights_dir

        return sum(p.stat().st_size for p in weights_dir(spec.brain).glob("*.safetensors")) or None
    return MODELS[spec.brain].size


def run_speed(spec: BackendSpec, opt: SpeedOptions, run_dir: Path, settings: SpeedSettings | None = None,
              log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Start (or reach) the backend, run the legs, store every leg in `run_dir`; returns the report."""
    from ..store import RunStore

    settings = settings or SpeedSettings()
    if settings.energy not in ("auto", "nvml", "off"):
        raise BrainbenchError(f"--energy must be auto, nvml or off, not {settings.energy!r}")
    meter = EnergyMeter(make_source(settings.energy, settings.gpus), hz=settings.power_hz)
    if settings.energy == "nvml" and not meter.available:
        raise BrainbenchError(f"--energy nvml: {meter.reason}")
    log(f"energy: {'NVML on ' + str(len(meter.devices)) + ' GPU(s)' if meter.available else 'not measured: ' + str(meter.reason)}")
    spec = embedded_server_args(spec, opt)
    started = time.time()
    try:
        with open_backend(spec, run_dir, parallel=opt.max_parallel()) as (endpoint, profile, _server):
            if not spec.brain:
                check_model_served(endpoint)
            report, samples = asyncio.run(run_legs(endpoint, opt, meter, settings, log))
    finally:
        meter_info = meter.describe()
        bw, bw_source = _bandwidth(settings, meter, local_cpu=bool(spec.brain) and not meter.available)  # before NVML shuts
        meter.close()
    decode_median = (report.get("decode") or {}).get("decode_tps", {}).get("median")
    model_bytes = settings.model_gb * 1e9 if settings.model_gb else _weights_bytes(spec)
    roof = roofline(model_bytes, bw, decode_median, active_fraction=settings.active_fraction,
                    bandwidth_source=bw_source)
    out = {
        "schema": SCHEMA, "model": spec.label(), "backend": spec.public() | {"api_key_env": spec.api_key_env},
        "server": profile, "run_dir": str(run_dir), "started": started, "seconds": round(time.time() - started, 2),
        "options": asdict(opt), "energy": meter_info, **report,
        "sweep": (report.get("sweep") or {}).get("levels", []),
        "knee": (report.get("sweep") or {}).get("knee"),
        "knee_rule": (report.get("sweep") or {}).get("knee_rule"),
        "roofline": roof, "load_warnings": load_warnings(report),
    }
    with RunStore(run_dir, create=True) as store:
        store.set_meta("speed_server", profile)
        model = spec.label()
        if out["load_warnings"]:  # kept with the run: a report of it says so too
            store.set_meta("load_warnings", (store.get_meta("load_warnings") or [])
                           + [{"model": model, "at": started, "warning": w} for w in out["load_warnings"]])
        store.put_result(RESULT_KIND, "summary", model, {k: v for k, v in out.items()
                                                         if k not in ("decode", "prefill", "agent", "sweep")})
        for leg in ("decode", "prefill", "agent"):
            if leg in report:
                data = dict(report[leg])
                if settings.store_requests:
                    data["requests"] = _requests(samples[leg])
                store.put_result(RESULT_KIND, leg, model, data)
        if "sweep" in report:
            data = dict(report["sweep"])
            if settings.store_requests:
                data["requests"] = _requests(samples["sweep"])
            store.put_result(RESULT_KIND, "sweep", model, data)
    return out
