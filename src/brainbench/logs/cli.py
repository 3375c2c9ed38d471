"""`brainbench logs ...` and `brainbench watch`: thin typer commands over the miners.

`logs_app` is mounted by the main CLI as `brainbench logs`; `watch_cmd` as `brainbench watch`.
Human output is rich tables on stdout; `--json` prints the same data as one JSON object. Bad input is
reported as one line on stderr with exit status 2, never a traceback.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ..console import err_console, out_console
from ..core.errors import BrainbenchError
from .common import LogInputError, check_inputs, order_inputs

logs_app = typer.Typer(
    help="Mine server and agent logs: throughput by concurrency (vLLM, llama-server, Ollama) and visible agent failures.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
)

out = out_console()
err = err_console()

FilesArg = Annotated[list[Path], typer.Argument(help="Log files (plain or .gz; rotated siblings are read oldest first).",
                                                show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Also store the result in this run directory "
                                                "(results kind logs.<source>), next to its runs and speed legs.")]


def _run(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except BrainbenchError as e:
        err.print(f"[red]error:[/] {e}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None
    except OSError as e:  # a file vanished or became unreadable while being read
        err.print(f"[red]error:[/] {e.filename or ''}: {e.strerror or e}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None


def _emit(result: dict[str, Any], json_out: bool, printer: Callable[[dict[str, Any], Console], None],
          store: tuple[Path | None, str, list[Path]] | None = None) -> None:
    if store and (run_dir := store[0]) is not None:
        from ..store import RunStore

        _, source, files = store
        with RunStore(run_dir, create=True) as st:
            st.put_result(f"logs.{source}", ",".join(str(f) for f in files), "", result)
        err.print(f"stored in {run_dir} (results kind logs.{source})")
    if json_out:
        sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    else:
        printer(result, out)


def _inputs(files: list[Path]) -> list[Path]:
    return check_inputs(order_inputs(files))


@logs_app.command("vllm")
def vllm_cmd(
    files: FilesArg,
    windows: Annotated[Path | None, typer.Option("--windows", help="CSV of start,end,label[,watts]: tag windows "
                                                    "(power limits, configs) so one table compares them.")] = None,
    engine: Annotated[str, typer.Option("--engine", help="'all', 'agg' (N Engines Aggregated lines) or an engine "
                                        "index (data-parallel Engine 00N lines).")] = "all",
    summary_running: Annotated[str, typer.Option("--summary-running", help="Running range of the summary table, "
                                                 "e.g. 1-3 (typical agent load) or 1-6; default: 1 and up.")] = "1-",
    workers: Annotated[int | None, typer.Option("--workers", help="Processes for big inputs (default: CPUs).")] = None,
    json_out: JsonOpt = False,
    out_dir: OutOpt = None,
) -> None:
    """vLLM: stats windows bucketed by `Running: N reqs` (gen/prefill tok/s, per-request tok/s, completions/min)."""
    from . import render, vllm
    from .windows import load_windows

    def go() -> dict[str, Any]:
        if engine not in ("all", "agg") and not engine.isdigit():
            raise LogInputError(f"--engine must be 'all', 'agg' or an engine number, not {engine!r}")
        m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d*)\s*|\s*(\d+)\s*", summary_running)
        if not m:
            raise LogInputError(f"--summary-running must look like 1-3, 2- or 4, not {summary_running!r}")
        rng = (int(m[3]), int(m[3])) if m[3] else (int(m[1]), int(m[2]) if m[2] else None)
        paths = _inputs(files)
        opts = vllm.Options(windows=load_windows(windows) if windows else None, engine=engine, summary_running=rng)
        return vllm.analyze(paths, opts, workers)

    _emit(_run(go), json_out, render.print_vllm, (out_dir, "vllm", files))


@logs_app.command("llama")
def llama_cmd(files: FilesArg, json_out: JsonOpt = False, out_dir: OutOpt = None) -> None:
    """llama-server: per-request slot timings (prompt eval / eval) bucketed by concurrent slots."""
    from . import llama, render

    _emit(_run(lambda: llama.analyze(_inputs(files))), json_out, render.print_llama, (out_dir, "llama", files))


@logs_app.command("ollama")
def ollama_cmd(files: FilesArg, json_out: JsonOpt = False, out_dir: OutOpt = None) -> None:
    """Ollama: GIN request lines (status, latency) bucketed by requests in flight."""
    from . import ollama, render

    _emit(_run(lambda: ollama.analyze(_inputs(files))), json_out, render.print_ollama, (out_dir, "ollama", files))


def _miners() -> dict[str, tuple[Callable[[list[Path]], dict[str, Any]], Callable[[dict[str, Any], Console], None]]]:
    """Each `brainbench logs` server miner by the name a server kind gives as its `log_miner`."""
    from . import llama, ollama, render, vllm

    return {"vllm": (lambda paths: vllm.analyze(paths, vllm.Options()), render.print_vllm),
            "llama": (llama.analyze, render.print_llama), "ollama": (ollama.analyze, render.print_ollama)}


def _recorded_kind(run_dir: Path) -> str:
    """The server kind a run directory recorded (any stored shape of the server record)."""
    from ..servers import ServerRecord
    from ..store import RunStore

    if not (run_dir / "brainbench.sqlite").is_file():
        raise LogInputError(f"{run_dir}: not a brainbench run directory (no brainbench.sqlite)")
    with RunStore(run_dir) as st:
        rec = ServerRecord.from_stored(st.get_meta("server") or st.get_meta("speed_server"))
    if rec is None:
        raise LogInputError(f"{run_dir}: no server recorded in this run directory")
    return rec.kind


@logs_app.command("server")
def server_cmd(run_dir: Annotated[Path, typer.Argument(help="A run directory with a server.log (run, speed, matrix leg).")],
               json_out: JsonOpt = False, out_dir: OutOpt = None) -> None:
    """A run directory's server.log, read by the miner of the server kind it recorded (vLLM, llama-server, Ollama)."""
    from ..servers import get_kind

    def go() -> tuple[dict[str, Any], str]:
        kind = get_kind(_recorded_kind(run_dir))
        if kind.log_miner not in _miners():
            raise LogInputError(f"{run_dir}: server kind {kind.name} has no log miner")
        analyze, _ = _miners()[kind.log_miner]
        return analyze(_inputs([run_dir / "server.log"])), kind.log_miner

    result, miner = _run(go)
    _emit(result, json_out, _miners()[miner][1], (out_dir, miner, [run_dir / "server.log"]))


@logs_app.command("agent")
def agent_cmd(
    files: FilesArg,
    truth: Annotated[Path | None, typer.Option("--truth", help="True outcomes: a brainbench run directory, or a "
                                                  "CSV of card,state[,model]. Prints the iceberg.")] = None,
    json_out: JsonOpt = False,
    out_dir: OutOpt = None,
) -> None:
    """Agent log: visible tool failures per class and model; with --truth, visible vs all failures."""
    from . import agent, render

    _emit(_run(lambda: agent.analyze(_inputs(files), truth)), json_out, render.print_agent, (out_dir, "agent", files))


def watch_cmd(
    metrics_url: Annotated[str | None, typer.Option("--metrics-url", help="Prometheus endpoint, e.g. "
                                                       "http://127.0.0.1:8000/metrics (vLLM) or llama-server "
                                                       "started with --metrics.")] = None,
    run_dir: Annotated[Path, typer.Option("--run-dir", help="Run directory; samples go to its brainbench.sqlite.")]
    = Path("runs/watch"),
    interval: Annotated[float, typer.Option("--interval", help="Seconds between scrapes.")] = 5.0,
    duration: Annotated[float, typer.Option("--duration", help="Seconds to record (0: until Ctrl-C).")] = 0.0,
    label: Annotated[str | None, typer.Option("--label", help="Tag this recording (power limit, config name).")]
    = None,
    watts: Annotated[float | None, typer.Option("--watts", help="Power the label runs at; adds tok/s per kW.")]
    = None,
    all_metrics: Annotated[bool, typer.Option("--all-metrics", help="Store every metric, not only the serving ones.")]
    = False,
    report_only: Annotated[bool, typer.Option("--report", help="Only print the tables from what is recorded.")]
    = False,
    session: Annotated[str | None, typer.Option("--session", help="Report one recording session only.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Record a Prometheus /metrics endpoint at an interval while a real workload runs, then print the
    same concurrency tables from its counters and gauges."""
    from . import render, watch

    def go() -> dict[str, Any]:
        sess = session
        if not report_only:
            if not metrics_url:
                raise LogInputError("give --metrics-url (or --report to print what is already recorded)")
            if interval <= 0:
                raise LogInputError("--interval must be positive")
            started = time.monotonic()

            def tick(n: int, ok: bool, error: str | None) -> None:
                if not json_out:
                    msg = "ok" if ok else f"[yellow]failed: {error}[/]"
                    err.print(f"[dim]scrape {n} at {time.monotonic() - started:6.1f} s: {msg}[/]")

            sess = watch.new_session_id()
            try:
                watch.record(metrics_url, run_dir, interval=interval, duration=duration, label=label,
                             watts=watts, all_metrics=all_metrics, on_scrape=tick, session=sess)
            except KeyboardInterrupt:
                err.print("[dim]stopped; reporting what was recorded[/]")
        return watch.report(run_dir, sess, max_gap=max(60.0, 3 * interval))

    _emit(_run(go), json_out, render.print_watch)
