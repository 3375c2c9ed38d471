"""The `brainbench` command line. Commands stay thin: each parses options and calls one module."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .core.errors import BrainbenchError

app = typer.Typer(
    help="Which local LLM can you trust as the brain of an agent? Speed and discipline, on the same run.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
)
console = Console(stderr=True)
out = Console(width=None if sys.stdout.isatty() else 160)  # piped tables stay readable

DEFAULT_RUNS = Path("runs")


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False)


def _setup_brain(name: str) -> Path:
    """Build and fetch with a progress bar per step (the build takes minutes on a small machine)."""
    from .backend import ensure_brain

    with _progress() as prog:
        tasks: dict[str, int] = {}

        def cb(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = prog.add_task(step, total=total)
            prog.update(tasks[step], completed=done)

        path = ensure_brain(name, cb)
    return path


# -- setup & inventory ------------------------------------------------------------------------------


@app.command()
def setup(brain: Annotated[list[str], typer.Option("--brain", "-b", help="Embedded brain(s) to fetch.")] = ["brain-small"]) -> None:
    """Build llama-server from source and fetch the embedded brains (once; cached after)."""
    for b in brain:
        path = _setup_brain(b)
        console.print(f"[green]ready[/] {b}: {path}")


@app.command()
def brains(json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """List the embedded brains and whether they are cached."""
    from .backend import MODELS, binary

    rows = [{"name": m.name, "model": m.title, "bytes": m.size, "sha256": m.sha256,
             "cached": m.path().exists(), "path": str(m.path())} for m in MODELS.values()]
    if json_out:
        out.print_json(data={"llama_server": str(binary() or ""), "brains": rows})
        return
    from rich.table import Table

    t = Table(title=f"embedded brains (llama-server: {binary() or 'not built; run brainbench setup'})")
    for c in ("name", "model", "size", "cached"):
        t.add_column(c)
    for r in rows:
        t.add_row(r["name"], r["model"], f"{r['bytes'] / 2**20:.0f} MiB", "yes" if r["cached"] else "no")
    out.print(t)


@app.command()
def packs(
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    pack_dir: Annotated[list[Path], typer.Option("--pack-dir", help="Extra folder of packs.")] = [],
    schema: Annotated[bool, typer.Option("--schema", help="Print the scenario JSON Schema.")] = False,
) -> None:
    """List the packs with their scenario counts."""
    from .packs import Scenario, discover

    if schema:
        out.print_json(data=Scenario.model_json_schema())
        return
    found = discover(pack_dir)
    rows = [{"name": p.name, "scenarios": len(p.scenarios), "description": p.description, "path": p.path}
            for p in found.values()]
    if json_out:
        out.print_json(data={"packs": rows})
        return
    from rich.table import Table

    t = Table(title="packs")
    for c in ("name", "scenarios", "description"):
        t.add_column(c)
    for r in rows:
        t.add_row(r["name"], str(r["scenarios"]), r["description"])
    out.print(t)


# -- run --------------------------------------------------------------------------------------------


def _plan_config(spec, profile: dict) -> dict:
    return {"backend": spec.public() | {"api_key_env": None}, "server": profile}


def _resume_options(run_dir: Path) -> dict:
    from .store import RunStore

    with RunStore(run_dir) as store:
        opts = store.get_meta("run")
    if not opts:
        raise BrainbenchError(f"{run_dir}: this run directory has no run options to resume from")
    return opts


async def _execute(opts: dict, run_dir: Path, json_out: bool) -> dict:
    from .backend import BackendSpec, check_model_served, open_backend
    from .client import ChatClient
    from .packs import select
    from .report.host import host_info
    from .runner.run import RunPlan, execute, prepare
    from .scoring import attempt_rows, summary
    from .store import RunStore

    chosen = select(opts["packs"], opts.get("suites"), [Path(p) for p in opts.get("pack_dirs", [])])
    spec = BackendSpec(**opts["backend"])
    store = RunStore(run_dir, create=True)
    try:
        if not store.get_meta("run"):
            store.set_meta("run", opts)
        with open_backend(spec, run_dir, parallel=opts["concurrency"]) as (endpoint, profile):
            if not spec.brain:
                check_model_served(endpoint)
            from .packs.haystack import fit_packs  # long-context cases that fit the server's context
            chosen = fit_packs(chosen, endpoint.base_url, endpoint.api, console.print)
            from .think import think_config, think_label, with_think

            mode = opts.get("think_mode")
            plan = RunPlan(packs=chosen, model=think_label(spec.label(), mode),
                           config={**_plan_config(spec, profile), **think_config(mode)},
                           trials=opts["trials"], concurrency=opts["concurrency"], retries=opts["retries"])
            store.set_meta("server", profile)
            store.set_meta("host", host_info())
            todo = prepare(plan, store)
            total = len(plan.items())
            console.print(f"[bold]{spec.label()}[/] on {endpoint.base_url}: {total} attempts "
                          f"({total - len(todo)} already stored), concurrency {plan.concurrency}; run dir {run_dir}")
            async with ChatClient(endpoint, timeout=opts.get("timeout", 300.0)) as client:
                with _progress() as prog:
                    task = prog.add_task("attempts", total=total, completed=total - len(todo))
                    await execute(plan, with_think(client, mode), store, todo, on_done=lambda r: prog.advance(task))
        return summary(attempt_rows(store))
    finally:
        store.close()


def _sigterm_as_interrupt() -> None:
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))


@app.command()
def run(
    pack: Annotated[list[str], typer.Option("--pack", "-p", help="Pack to run (repeatable).")] = [],
    suite: Annotated[list[str], typer.Option("--suite", help="Named group of packs, e.g. 'agentic'.")] = [],
    brain: Annotated[Optional[str], typer.Option("--brain", "-b", help="Embedded brain (default brain-small when no --endpoint).")] = None,
    endpoint: Annotated[Optional[str], typer.Option("--endpoint", help="OpenAI-compatible base URL, e.g. http://host:8000/v1.")] = None,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Model name the endpoint serves.")] = None,
    api: Annotated[str, typer.Option("--api", help="openai (chat completions) or ollama (native /api/chat).")] = "openai",
    api_key_env: Annotated[Optional[str], typer.Option("--api-key-env", help="Environment variable holding the API key.")] = None,
    trials: Annotated[int, typer.Option("--trials", "-k", min=1, help="Trials per scenario (for pass^k).")] = 1,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, help="Attempts in flight at once.")] = 1,
    retries: Annotated[int, typer.Option("--retries", min=0, help="Re-dispatches after a protocol violation.")] = 1,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per request before it counts as an infrastructure timeout.")] = 300.0,
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run directory (default runs/<time>-<brain>).")] = None,
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Finish an interrupted run directory.")] = None,
    pack_dir: Annotated[list[Path], typer.Option("--pack-dir", help="Extra folder of packs.")] = [],
    server_arg: Annotated[list[str], typer.Option("--server-arg", help="Extra llama-server flag for an embedded brain (repeatable).")] = [],
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    think: Annotated[Optional[str], typer.Option("--think", help="on|off|both: reasoning switch via chat_template_kwargs.enable_thinking (both: each pack twice).")] = None,
) -> None:
    """Run packs against a brain; every attempt is stored the moment it ends."""
    from .report.tables import summary_table
    from .runner.run import run_dir_default

    if resume:
        opts = _resume_options(resume)
        opts["concurrency"] = concurrency if concurrency != 1 else opts["concurrency"]
        run_dir = resume
    else:
        if api not in ("openai", "ollama"):
            raise BrainbenchError(f"--api must be openai or ollama, not {api!r}")
        if endpoint and brain:
            raise BrainbenchError("give --brain or --endpoint, not both")
        backend = {"endpoint": endpoint, "model": model, "api": api, "api_key_env": api_key_env} if endpoint else \
            {"brain": brain or "brain-small", "server_args": [a for s in server_arg for a in s.split()]}
        opts = {"packs": pack or ([] if suite else ["smoke"]), "suites": suite, "backend": backend,
                "trials": trials, "concurrency": concurrency, "retries": retries, "timeout": timeout,
                "pack_dirs": [str(p) for p in pack_dir], "think": think}
        run_dir = out_dir or run_dir_default(DEFAULT_RUNS, endpoint and model or backend.get("brain") or "brain")
    _sigterm_as_interrupt()
    from .think import think_modes

    for mode in think_modes(opts.get("think")):  # one pass per thinking mode (a single pass without --think)
        result = asyncio.run(_execute({**opts, "think_mode": mode}, run_dir, json_out))
    if opts.get("think"):  # thinking is counted apart from the graded answer
        from .store import RunStore
        from .think import reasoning_stats

        with RunStore(run_dir) as st:
            for label, r in reasoning_stats(st).items():
                console.print(f"{label}: {r['thinking_turns']}/{r['turns']} turns thought; reasoning tokens "
                              f"{r['reasoning_tokens']} (server-reported), ~{r['reasoning_words']} words; "
                              f"{r['cut_while_thinking']} cut off while thinking")
    if json_out:
        out.print_json(data={"run_dir": str(run_dir), "summary": result})
    else:
        out.print(summary_table(result))
        console.print(f"stored: {run_dir}  (brainbench export {run_dir} --format json)")


@app.command()
def demo(brain: Annotated[str, typer.Option("--brain", "-b")] = "brain-small",
         out_dir: Annotated[Optional[Path], typer.Option("--out", "-o")] = None) -> None:
    """Set up everything, start the embedded brain, run the smoke pack, print the results."""
    from .report.tables import summary_table
    from .runner.run import run_dir_default

    _setup_brain(brain)
    run_dir = out_dir or run_dir_default(DEFAULT_RUNS, f"demo-{brain}")
    opts = {"packs": ["smoke"], "suites": [], "backend": {"brain": brain}, "trials": 1, "concurrency": 1,
            "retries": 1, "timeout": 300.0, "pack_dirs": []}
    _sigterm_as_interrupt()
    t0 = time.monotonic()
    result = asyncio.run(_execute(opts, run_dir, False))
    out.print(summary_table(result, title=f"brainbench demo: {brain} on the smoke pack ({time.monotonic() - t0:.0f}s)"))
    console.print(f"stored results: {run_dir}/brainbench.sqlite   server log: {run_dir}/server.log")
    console.print(f"next: brainbench export {run_dir} --format json   |   brainbench score {run_dir}")


# -- after the run ----------------------------------------------------------------------------------


@app.command()
def score(run_dir: Path, json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
          markdown: Annotated[bool, typer.Option("--markdown", help="Print Markdown tables (discipline per pack; errors per 100 calls by class).")] = False,
          judge_endpoint: Annotated[Optional[str], typer.Option("--judge-endpoint", help="OpenAI-compatible URL of an LLM judge (a separate pass; verdicts stored as judge:<version>).")] = None,
          judge_model: Annotated[Optional[str], typer.Option("--judge-model", help="Model name the judge endpoint serves.")] = None,
          judge_all: Annotated[bool, typer.Option("--judge-all", help="Judge every attempt, not only open-ended cases (meta.judge).")] = False,
          judge_api_key_env: Annotated[Optional[str], typer.Option("--judge-api-key-env", help="Environment variable holding the judge's API key.")] = None) -> None:
    """Re-score stored transcripts (no model is called) and print the summary; optionally add LLM-judge verdicts."""
    from .report.tables import summary_table
    from .scoring import attempt_rows, rescore, summary
    from .store import RunStore

    with RunStore(run_dir) as store:
        n = rescore(store)
        result = summary(attempt_rows(store))
        judged = _judge(store, judge_endpoint, judge_model, judge_all, judge_api_key_env) if judge_endpoint else None
    if json_out:
        out.print_json(data={"rescored": n, "summary": result, **({"judge": judged} if judged else {})})
    elif markdown:
        from .scoring.markdown import class_table, discipline_table

        sys.stdout.write(discipline_table(result) + "\n\n" + class_table(result) + "\n")
    else:
        console.print(f"re-scored {n} attempts from {run_dir}")
        out.print(summary_table(result))


def _judge(store, url: str, model: Optional[str], judge_all: bool, key_env: Optional[str]) -> dict:
    import os

    from .scoring.judge import judge_run, scorer_name

    if not model:
        raise BrainbenchError("--judge-endpoint needs --judge-model NAME")
    st = judge_run(store, url, model, api_key=os.environ.get(key_env) if key_env else None, judge_all=judge_all)
    console.print(f"judge {model} ({scorer_name()}): {st.passed}/{st.judged} passed, {st.unparseable} unparseable, "
                  f"{st.skipped} not open-ended (skipped)")
    for e in st.errors[:5]:
        console.print(f"  [yellow]{e}[/]")
    return {"scorer": scorer_name(), "judged": st.judged, "passed": st.passed, "unparseable": st.unparseable}


@app.command()
def export(
    run_dir: Path,
    fmt: Annotated[str, typer.Option("--format", "-f", help="json or csv.")] = "json",
    dest: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write to a file instead of stdout.")] = None,
) -> None:
    """Export attempts and summaries (schema in the README)."""
    from .store import RunStore
    from .report.export import to_csv, to_json

    if fmt not in ("json", "csv"):
        raise BrainbenchError(f"--format must be json or csv, not {fmt!r}")
    with RunStore(run_dir) as store:
        text = to_json(store) if fmt == "json" else to_csv(store)
    if dest:
        dest.write_text(text)
        console.print(f"wrote {dest}")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


@app.command()
def serve(brain: Annotated[str, typer.Option("--brain", "-b")] = "brain-small",
          parallel: Annotated[int, typer.Option("--parallel", help="Server slots.")] = 1,
          log: Annotated[Path, typer.Option("--log")] = Path("runs/serve.log")) -> None:
    """Start the embedded brain on 127.0.0.1 and keep it up until Ctrl-C (for other tools to use)."""
    from .backend import LlamaServer

    path = _setup_brain(brain)
    _sigterm_as_interrupt()
    with LlamaServer(path, log_path=log, parallel=parallel) as srv:
        console.print(f"[green]serving[/] {brain} at {srv.base_url} (model name: {brain}); Ctrl-C to stop")
        while srv.alive():
            time.sleep(1)
        raise BrainbenchError(f"llama-server exited; log: {log}")


# -- commands that live with their modules (each module keeps heavy imports inside its functions) ----
# Add one line per command group here, e.g.:
#   from .logs.cli import logs_app; app.add_typer(logs_app, name="logs")
#   from .perf.cli import speed_cmd; app.command("speed")(speed_cmd)
from .importers.cli import import_app; app.add_typer(import_app, name="import")  # noqa: E402,E702
from .matrix.cli import matrix_cmd; app.command("matrix")(matrix_cmd)  # noqa: E402,E702
from .matrix.cli import soak_cmd; app.command("soak")(soak_cmd)  # noqa: E402,E702
from .matrix.cli import sweep_cmd; app.command("sweep")(sweep_cmd)  # noqa: E402,E702
from .report.cli import compare_cmd, report_cmd; app.command("report")(report_cmd); app.command("compare")(compare_cmd)  # noqa: E402,E702
from .perf.cli import speed_cmd; app.command("speed")(speed_cmd)  # noqa: E402,E702
from .logs.cli import logs_app, watch_cmd; app.add_typer(logs_app, name="logs"); app.command("watch")(watch_cmd)  # noqa: E402,E702
from .tap.cli import tap_app; app.add_typer(tap_app, name="tap")  # noqa: E402,E702


def main() -> None:
    """Entry point: one clear line for every expected failure, never a traceback."""
    try:
        app()
    except BrainbenchError as e:
        console.print(f"[red]error:[/] {e}")
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: every finished attempt is stored; continue with --resume RUN_DIR")
        sys.exit(130)
