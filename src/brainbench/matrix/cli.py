"""Commands: `brainbench matrix`, `brainbench soak`, `brainbench sweep` (mounted in brainbench.cli)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..console import err_console, out_console
from ..core.errors import BrainbenchError

console = err_console()
out = out_console()


@contextlib.contextmanager
def _ui() -> Iterator[tuple[Callable[[str], None], Callable[[str, int, int], None]]]:
    """(log, progress) callbacks over one rich Progress display."""
    prog = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False)
    tasks: dict[str, Any] = {}

    def log(msg: str) -> None:
        prog.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {msg}", highlight=False)

    def progress(name: str, done: int, total: int) -> None:
        if name not in tasks:
            tasks[name] = prog.add_task(name, total=total)
        prog.update(tasks[name], completed=done, total=total)

    hits = [0]

    def on_term(*_: Any) -> None:
        """Stop our servers first (whatever the interrupt then meets), then interrupt; twice: exit now."""
        from ..profiles.launch import stop_all

        hits[0] += 1
        stop_all()
        if hits[0] > 1:
            os._exit(143)
        raise KeyboardInterrupt()

    signal.signal(signal.SIGTERM, on_term)
    with prog:
        yield log, progress


RAY_HELP = ("Run each profile as a Ray task on a node with the resources it declares: auto (the cluster in RAY_ADDRESS "
            "or on this machine), HOST:PORT, ray://HOST:10001, or local (start Ray here). Needs brainbench[ray].")
SWEEP_RAY_HELP = ("Run each experiment as a Ray task on a node with the profile's resources, one at a time, kept on the "
                  "first experiment's node (speeds compare on one machine). ADDRESS as for matrix --ray.")


@contextlib.contextmanager
def _executor(ray: str | None, log: Callable[[str], None], progress: Callable[[str, int, int], None],
              pin: bool = False) -> Iterator[Any]:
    """Where profiles run (brainbench.matrix.execute); a Ray connection this command opened is closed after."""
    from .execute import make_executor

    ex = make_executor(ray, log, progress, pin)
    try:
        yield ex
    finally:
        ex.close()


def _default_dir(prefix: str, name: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name)[:40]
    return Path("runs") / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{safe}"


def _report(matrix_dir: Path) -> Path | None:
    """One HTML report (and its Markdown twin) for the whole matrix, through brainbench.report."""
    from ..report.render import write_report
    from ..store import RunStore

    dirs = []
    for e in _manifest(matrix_dir)["profiles"]:  # profiles with scored attempts (a failed server has none)
        d = Path(matrix_dir) / (e.get("dir") or e["name"])
        if (d / "brainbench.sqlite").exists():
            with RunStore(d) as store:
                if store.count().get("completed"):
                    dirs.append(d)
    if not dirs:
        return None
    html = Path(matrix_dir) / "report.html"
    try:
        write_report(dirs, html=html, md=Path(matrix_dir) / "report.md", title=f"brainbench matrix: {Path(matrix_dir).name}")
    except Exception as e:  # noqa: BLE001 - the report is a convenience: never lose a finished matrix over it
        console.print(f"[yellow]report not written[/]: {e}")
        return None
    return html


def _manifest(matrix_dir: Path) -> dict[str, Any]:
    from .run import read_manifest

    return read_manifest(matrix_dir)


def _print_matrix(man: dict[str, Any], title: str) -> None:
    from rich.table import Table

    from .run import summary_rows

    header, rows = summary_rows(man)
    t = Table(title=title)
    for h in header:
        t.add_column(h)
    for r in rows:
        t.add_row(*r)
    out.print(t)


def matrix_cmd(
    profiles: Annotated[list[Path] | None, typer.Argument(help="Profile YAML files, run in this order.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Matrix directory (default runs/matrix-<time>); an existing one is resumed.")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Finish a matrix directory with its stored profiles.")] = None,
    check: Annotated[bool, typer.Option("--check", help="Validate the profiles and print each server command line; run nothing.")] = False,
    schema: Annotated[bool, typer.Option("--schema", help="Print the profile JSON Schema.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
    ray: Annotated[str | None, typer.Option("--ray", metavar="ADDRESS", help=RAY_HELP)] = None,
) -> None:
    """Start each profile's server, wait until healthy, run its legs, stop it; all under one matrix directory."""
    from ..profiles import load_profiles
    from ..profiles.schema import profile_json_schema
    from .run import run_matrix, stored_profiles

    if schema:
        out.print_json(data=profile_json_schema())
        return
    if resume:
        plist, mdir = stored_profiles(resume), resume
    else:
        if not profiles:
            raise BrainbenchError("give one or more profile files (see profiles/ for examples), or --resume DIR")
        plist = load_profiles(profiles)
        mdir = out_dir or _default_dir("matrix", "-".join(p.name for p in plist))
    if check:
        from ..profiles.launch import ServerHandle

        for p in plist:
            legs = ", ".join(f"{lg.name} ({lg.type})" for lg in p.legs)
            cmd = ServerHandle(p, Path("server.log")).command_line()
            out.print(f"[bold]{p.name}[/] ({p.server.kind}): legs {legs}\n  {cmd}", highlight=False, soft_wrap=True)
        return
    with _ui() as (log, progress), _executor(ray, log, progress) as ex:
        log(f"matrix of {len(plist)} profile(s) in {mdir}" + (f" on Ray ({ray})" if ray else ""))
        man = run_matrix(plist, mdir, log, progress, ex)
    rep = _report(mdir)
    if json_out:
        out.print_json(data=man)
    else:
        _print_matrix(man, f"brainbench matrix: {mdir}")
        console.print(f"stored: {mdir}/  (summary {mdir}/matrix.md" + (f", report {rep}" if rep else "") + ")")


def soak_cmd(
    profile: Annotated[Path | None, typer.Argument(help="A profile (its server; its soak leg if it has one).")] = None,
    brain: Annotated[str | None, typer.Option("--brain", "-b", help="Embedded brain (default brain-small when no profile/endpoint).")] = None,
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="An already running OpenAI-compatible server.")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m")] = None,
    pid: Annotated[int | None, typer.Option("--pid", help="With --endpoint: the server's process, for memory and death.")] = None,
    sessions: Annotated[int | None, typer.Option("--sessions", "-s", min=1, help="Sessions (default 10).")] = None,
    turns: Annotated[int | None, typer.Option("--turns", "-t", min=1, help="Turns per session (default 5).")] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-c", min=1, help="Sessions at once (default 1).")] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", min=2)] = None,
    duration: Annotated[float | None, typer.Option("--duration", help="Bound in seconds (default 1800).")] = None,
    restart: Annotated[str | None, typer.Option("--restart", help="never or on_crash.")] = None,
    engine: Annotated[str, typer.Option("--engine", help="Embedded engine for --brain: llama (llama-server) or vllm (brainbench's own vLLM).")] = "llama",
    out_dir: Annotated[Path | None, typer.Option("--out", "-o")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Soak a server: S sessions × T turns; crashes, silent-empty turns, TPS retention, memory growth."""
    from ..profiles import load_profile
    from ..profiles.schema import Profile, SoakLeg, profile_from_data
    from .engine import ProfileRun

    if (profile or endpoint) and engine != "llama":
        raise BrainbenchError("--engine picks the embedded engine for --brain; a profile or endpoint names its own server")
    if profile:
        base = load_profile(profile)
    elif endpoint:
        if not model:
            raise BrainbenchError("--endpoint needs --model")
        base = profile_from_data({"name": model.replace("/", "-").replace(":", "-"),
                                  "server": {"kind": "endpoint", "base_url": endpoint, "model": model, "pid": pid}}, "--endpoint")
    else:
        from ..backend import check_engine
        from ..cli import prepare_engine

        b = brain or "brain-small"
        check_engine(engine, None)
        prepare_engine(b, engine)
        kind, name = ("vllm", f"{b}-vllm") if engine == "vllm" else ("llama-server", b)
        base = profile_from_data({"name": name, "server": {"kind": kind, "brain": b}}, "--brain")
    leg = next((lg for lg in base.legs if isinstance(lg, SoakLeg)), SoakLeg(type="soak"))
    over = {k: v for k, v in {"sessions": sessions, "turns": turns, "concurrency": concurrency, "max_tokens": max_tokens,
                              "duration_s": duration, "restart": restart}.items() if v is not None}
    data = base.model_dump(mode="json")
    data["legs"] = [{**leg.model_dump(mode="json"), **over, "name": "soak"}]
    try:
        p = Profile.model_validate(data)
    except Exception as e:
        raise BrainbenchError(f"soak options: {str(e).splitlines()[-1] if str(e) else e}") from None
    p.source = base.source
    run_dir = out_dir or _default_dir("soak", p.name)
    with _ui() as (log, progress):
        rec = ProfileRun(p, run_dir, log, progress).run()
    from ..store import RunStore

    with RunStore(run_dir) as store:
        rows = store.results("soak")
    result = rows[-1]["data"] if rows else None
    if json_out:
        out.print_json(data={"run_dir": str(run_dir), "status": rec["status"], "reason": rec["reason"], "soak": result})
    else:
        _print_soak(rec, result)
        console.print(f"stored: {run_dir}")
    if rec["status"] == "failed":
        raise BrainbenchError(f"soak: server failed: {rec['reason']}")
    if result is None or not result["passed"]:
        raise typer.Exit(1)


def _print_soak(rec: dict[str, Any], r: dict[str, Any] | None) -> None:
    if r is None:
        out.print(f"[red]no soak result[/]: {rec.get('reason')}")
        return
    ret = r["tps_retention"]
    mem = r["memory"].get("rss") or {}
    lines = [
        f"{'[green]PASS[/]' if r['passed'] else '[red]FAIL[/]'}  {r['sessions_complete']}/{r['sessions_planned']} sessions "
        f"complete × {r['turns_per_session']} turns in {r['duration_s']:.0f}s" + (" (cut at the duration bound)" if r["truncated"] else ""),
        f"crashes {r['crashes']['total']} (process deaths {r['crashes']['process_death']}, 503 loading "
        f"{r['crashes']['loading_model']}, resets {r['crashes']['stream_reset']}), restarts {r['restarts']}",
        f"silent-empty turns {r['silent_empty']}, failed turns {r['turns_failed']}",
        f"decode tok/s median {r['decode_tps_median'] or 0:.2f}; TPS retention "
        + (f"{ret['value']:.0%} (last {ret['k']} {ret['last']} / first {ret['k']} {ret['first']})" if ret["value"] is not None else "n/a"),
        "server RSS " + (f"{mem['first_mb']:.0f} → {mem['last_mb']:.0f} MiB ({mem['growth']:+.0%})" if mem else "n/a"),
    ]
    lines += [f"[red]✗[/] {x}" for x in r["reasons"]]
    for ln in lines:
        out.print(ln, highlight=False)


def sweep_cmd(
    profile: Annotated[Path, typer.Argument(help="The profile whose server settings are swept.")],
    param: Annotated[list[str], typer.Option("--param", "-p", help="NAME=v1,v2,... (repeatable): threads, ubatch, kv, -fa, chat_template_file, env.X, ...")] = [],
    mode: Annotated[str, typer.Option("--mode", help="one-at-a-time (from the current best) or grid.")] = "one-at-a-time",
    min_gain: Annotated[float, typer.Option("--min-gain", help="Fraction faster than the best so far to keep a config.")] = 0.03,
    requests: Annotated[int | None, typer.Option("--requests", help="Measured decode runs per config.")] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", help="Tokens per speed request.")] = None,
    pack: Annotated[list[str], typer.Option("--pack", help="Discipline pack(s) (default: the fixed agentic subset, else smoke).")] = [],
    limit_per_pack: Annotated[int | None, typer.Option("--limit-per-pack", min=1, help="First N scenarios of each pack.")] = None,
    trials: Annotated[int | None, typer.Option("--trials", "-k", min=1, help="Discipline trials per scenario.")] = None,
    paired: Annotated[bool, typer.Option("--paired", help="Re-measure the current best's speed just before each candidate and compare with that.")] = False,
    confirm: Annotated[bool, typer.Option("--confirm", help="Measure a would-be keep again in reverse order (best, candidate, candidate, best) and keep it only when both pairs agree; implies --paired.")] = False,
    recheck: Annotated[bool, typer.Option("--recheck", help="At the end, re-measure baseline and best speed back to back (drift on a shared machine).")] = False,
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Sweep directory; an existing one is resumed.")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
    ray: Annotated[str | None, typer.Option("--ray", metavar="ADDRESS", help=SWEEP_RAY_HELP)] = None,
) -> None:
    """Sweep server settings: each config gets the speed leg and the discipline gate; faster-but-broken is rejected."""
    from ..profiles import load_profile
    from ..profiles.schema import AgenticLeg, SpeedLeg, parse_param
    from .sweep import Sweep, SweepOptions

    if mode not in ("one-at-a-time", "grid"):
        raise BrainbenchError(f"--mode must be one-at-a-time or grid, not {mode!r}")
    if not param:
        raise BrainbenchError("give at least one --param NAME=v1,v2,... (e.g. --param ubatch=128,512)")
    base = load_profile(profile)
    params = [parse_param(p) for p in param]
    speed = next((lg for lg in base.legs if isinstance(lg, SpeedLeg)), SpeedLeg(type="speed"))
    disc = next((lg for lg in base.legs if isinstance(lg, AgenticLeg)), AgenticLeg(type="agentic"))
    speed = speed.model_copy(update={k: v for k, v in {"requests": requests, "max_tokens": max_tokens}.items() if v})
    disc = disc.model_copy(update={k: v for k, v in {"packs": pack or None, "limit_per_pack": limit_per_pack,
                                                     "trials": trials}.items() if v})
    opts = SweepOptions(params=params, mode=mode, min_gain=min_gain, speed=speed, discipline=disc, recheck=recheck,
                        paired=paired, confirm=confirm)
    sdir = out_dir or _default_dir("sweep", base.name)
    with _ui() as (log, progress), _executor(ray, log, progress, pin=True) as ex:
        log(f"sweep of {base.name} in {sdir}: " + "; ".join(f"{n}={','.join(v)}" for n, v in params))
        sw = Sweep(base, sdir, opts, log, progress, ex)
        data = sw.run()
    if json_out:
        out.print_json(data=data)
        return
    from rich.table import Table

    from .sweep import _pct

    t = Table(title=f"brainbench sweep: {base.name} ({mode})")
    for c in ("#", "config", "status", "tok/s", "discipline", "reason"):
        t.add_column(c)
    for e in data["experiments"]:
        st = {"kept": "[green]kept[/]", "rejected": "[yellow]rejected[/]", "crashed": "[red]crashed[/]"}.get(e["status"], e["status"])
        t.add_row(str(e["index"]), e["label"], st, "–" if e["tps"] is None else f"{e['tps']:.2f}", _pct(e["discipline"]),
                  e["reason"])
    out.print(t)
    b = data["best"]
    out.print(f"best: [bold]{b['label']}[/] at {b['tps']:.2f} tok/s, discipline {_pct(b['discipline'])}", highlight=False)
    out.print(b["command_line"], highlight=False, soft_wrap=True)
    rc = data.get("recheck") or {}
    for key in ("baseline", "best"):
        if rc.get(key) and rc[key].get("tps"):
            out.print(f"recheck {key} ({rc[key]['label']}): {rc[key]['tps']:.2f} tok/s", highlight=False)
    if rc.get("verdict"):
        out.print(("[green]" if rc.get("confirmed") else "[yellow]") + f"recheck {rc['verdict']}[/]", highlight=False)
    console.print(f"stored: {sdir}/sweep.json, {sdir}/sweep.md, chart {sdir}/progression.svg")
