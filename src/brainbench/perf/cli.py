"""`brainbench speed`: decode, prefill, latency percentiles, concurrency sweep, agent turns, energy."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..core.errors import BrainbenchError

LEGS = ("decode", "prefill", "sweep", "agent")


def int_list(text: str, name: str) -> list[int]:
    try:
        vals = [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise BrainbenchError(f"{name} takes comma-separated integers, e.g. 1,2,4,8 (got {text!r})") from None
    if not vals or any(v < 1 for v in vals):
        raise BrainbenchError(f"{name} takes positive integers (got {text!r})")
    return vals


def speed_cmd(
    brain: Annotated[str | None, typer.Option("--brain", "-b", help="Embedded brain (default brain-small when no --endpoint).")] = None,
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="OpenAI-compatible base URL, e.g. http://host:8000/v1.")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model name the endpoint serves.")] = None,
    api: Annotated[str, typer.Option("--api", help="openai (chat completions) or ollama (native /api/chat).")] = "openai",
    api_key_env: Annotated[str | None, typer.Option("--api-key-env", help="Environment variable holding the API key.")] = None,
    legs: Annotated[str, typer.Option("--legs", help=f"Which legs, comma-separated: {','.join(LEGS)}.")] = ",".join(LEGS),
    concurrency: Annotated[str, typer.Option("--concurrency", "-c", help="Sweep levels, e.g. 1,2,4,8,16,32,64.")] = "1,2,4,8",
    gen_tokens: Annotated[int, typer.Option("--gen-tokens", min=2, help="Tokens generated per request (held with ignore_eos/min_tokens where accepted).")] = 128,
    prompt_tokens: Annotated[int, typer.Option("--prompt-tokens", min=16, help="Prompt size for decode and the sweep.")] = 128,
    requests_per_level: Annotated[int | None, typer.Option("--requests-per-level", min=1, help="Requests per sweep level (default max(8, 2 x concurrency)).")] = None,
    runs: Annotated[int, typer.Option("--runs", min=2, help="Measured single-stream decode runs (the CV window).")] = 5,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Warm-up runs before measuring.")] = 1,
    cv_max: Annotated[float, typer.Option("--cv-max", help="Repeat gate: add runs until the CV of the last --runs is at most this.")] = 0.05,
    max_runs: Annotated[int, typer.Option("--max-runs", min=2, help="Cap on runs for the repeat gate.")] = 15,
    prefill_lengths: Annotated[str, typer.Option("--prefill-lengths", help="Prompt lengths (tokens) for the prefill leg.")] = "128,512,2048",
    prefill_runs: Annotated[int, typer.Option("--prefill-runs", min=2, help="Measured runs per prefill length and cache state.")] = 3,
    agent_turns: Annotated[int, typer.Option("--agent-turns", min=1, help="Turns per agent conversation.")] = 3,
    agent_concurrency: Annotated[str, typer.Option("--agent-concurrency", help="Agent conversations in flight, e.g. 1,4.")] = "1",
    agent_gen_tokens: Annotated[int, typer.Option("--agent-gen-tokens", min=1, help="Max tokens per agent turn.")] = 64,
    energy: Annotated[str, typer.Option("--energy", help="auto (NVML when a GPU is visible), nvml (required) or off.")] = "auto",
    gpus: Annotated[str | None, typer.Option("--gpus", help="NVML indices to meter, e.g. 0,1 (default: CUDA_VISIBLE_DEVICES, else all).")] = None,
    power_hz: Annotated[float, typer.Option("--power-hz", min=10.0, help="Power sampling rate (>= 10 Hz).")] = 10.0,
    bandwidth_gbs: Annotated[float | None, typer.Option("--bandwidth-gbs", help="Memory bandwidth for the decode roofline (GB/s).")] = None,
    model_gb: Annotated[float | None, typer.Option("--model-gb", help="Weight bytes read per token (GB) for the roofline (default: the GGUF size).")] = None,
    active_fraction: Annotated[float, typer.Option("--active-fraction", help="Active share of the weights per token (MoE), for the roofline.")] = 1.0,
    threads: Annotated[int | None, typer.Option("--threads", help="llama-server threads for an embedded brain.")] = None,
    server_arg: Annotated[list[str], typer.Option("--server-arg", help="Extra server flag for an embedded brain (repeatable).")] = [],
    engine: Annotated[str, typer.Option("--engine", help="Embedded engine: llama (llama-server, the GGUF) or vllm (brainbench's own vLLM, bf16 from the same GGUF).")] = "llama",
    client: Annotated[str, typer.Option("--client", help="Timed calls through 'raw' (lean, stamps each read; OpenAI API) or 'httpx' (ChatClient).")] = "raw",
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per request before it counts as an error.")] = 600.0,
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Run directory to store into (default runs/<time>-speed-<model>); may already hold a discipline run.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object (with `sweep`).")] = False,
) -> None:
    """Measure speed: single-stream decode, prefill, latency percentiles, a concurrency sweep, agent turns, energy."""
    from rich.console import Console

    from ..backend import BackendSpec
    from ..console import out_console
    from ..runner.run import run_dir_default
    from .legs import SpeedOptions
    from .report import render
    from .run import SpeedSettings, run_speed

    err = Console(stderr=True, soft_wrap=True)  # a progress line is one line
    if api not in ("openai", "ollama"):
        raise BrainbenchError(f"--api must be openai or ollama, not {api!r}")
    if endpoint and brain:
        raise BrainbenchError("give --brain or --endpoint, not both")
    if endpoint and not model:
        raise BrainbenchError("--endpoint needs --model NAME")
    chosen = [x.strip() for x in legs.split(",") if x.strip()]
    bad = [x for x in chosen if x not in LEGS]
    if bad or not chosen:
        raise BrainbenchError(f"--legs takes {', '.join(LEGS)} (got {legs!r})")
    from ..backend import check_engine
    from ..cli import prepare_engine

    check_engine(engine, endpoint)
    spec = BackendSpec(endpoint=endpoint, model=model, api=api, api_key_env=api_key_env) if endpoint else \
        BackendSpec(brain=brain or "brain-small", server_args=[a for s in server_arg for a in s.split()], threads=threads,
                    engine=engine)
    opt = SpeedOptions(
        legs=chosen, gen_tokens=gen_tokens, prompt_tokens=prompt_tokens, warmup=warmup, decode_runs=runs,
        cv_max=cv_max, max_runs=max_runs, prefill_lengths=int_list(prefill_lengths, "--prefill-lengths"),
        prefill_runs=prefill_runs, concurrency=int_list(concurrency, "--concurrency"),
        requests_per_level=requests_per_level, agent_concurrency=int_list(agent_concurrency, "--agent-concurrency"),
        agent_turns=agent_turns, agent_gen_tokens=agent_gen_tokens,
    )
    settings = SpeedSettings(energy=energy, gpus=gpus, power_hz=power_hz, bandwidth_gbs=bandwidth_gbs,
                             model_gb=model_gb, active_fraction=active_fraction, timeout=timeout, client=client)
    if client not in ("raw", "httpx"):
        raise BrainbenchError(f"--client must be raw or httpx, not {client!r}")
    if spec.brain and engine == "vllm":
        prepare_engine(spec.brain, engine)
    elif spec.brain:
        from ..backend import ensure_brain

        ensure_brain(spec.brain)
    run_dir = out_dir or run_dir_default(Path("runs"), f"speed-{spec.label()}")
    report = run_speed(spec, opt, run_dir, settings, log=lambda m: err.print(m, style="dim", markup=False, highlight=False))
    if json_out:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        out_console().print(render(report))  # piped or captured: sized for a pipe
        err.print(f"stored: {run_dir}  (brainbench export {run_dir} --format json)")
