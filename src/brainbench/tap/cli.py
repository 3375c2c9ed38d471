"""`brainbench tap` (the proxy), `brainbench tap export-scenarios` (recorded conversations as draft scenarios) and
`brainbench tap rescore` (a recorded run judged again)."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..core.errors import BrainbenchError

tap_app = typer.Typer(
    help="Score a real agent's live traffic: a proxy between the agent and its OpenAI-compatible server.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
)

DEFAULT_LISTEN = "127.0.0.1:8788"


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise BrainbenchError(f"--listen wants HOST:PORT (e.g. {DEFAULT_LISTEN}), not {text!r}")
    return host.strip("[]"), int(port)


def _upstream(url: str) -> str:
    if not url.startswith(("http://", "https://")) or len(url.split("://", 1)[1]) == 0:
        raise BrainbenchError(f"--upstream wants http://HOST:PORT, not {url!r}")
    return url


async def _serve(upstream: str, host: str, port: int, rule_files: list[str], idle: float, out: Path,
                 otlp: str | None) -> None:
    from .proxy import Tap
    from .rescore import dump_rules
    from .rules import load_all
    from .storage import TapStore

    rules = load_all(list(rule_files))
    sys.setswitchinterval(0.0005)  # the store's thread must hand the GIL back to the relay within 0.5 ms, not 5
    otel = None
    if otlp:
        from .otel import OtelExport

        otel = OtelExport(otlp)
    store = TapStore(out, {"upstream": upstream, "rules": dump_rules(rules), "idle_s": idle})
    tap = Tap(upstream, store, rules, idle_s=idle, otel=otel)
    try:
        try:
            bound = await tap.start(host, port)
        except OSError as e:
            raise BrainbenchError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
        print(f"tap: listening on http://{host}:{bound} -> {tap.upstream}; rules: "
              f"{', '.join(r.id for r in rules) or 'none'}; storing in {out}", file=sys.stderr, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await tap.close()
        store.close()
        if otel is not None:
            otel.shutdown()
    print(f"tap: stopped; every conversation is stored in {out} (brainbench report {out})", file=sys.stderr)


@tap_app.callback(invoke_without_command=True)
def tap_cmd(
    ctx: typer.Context,
    upstream: Annotated[str | None, typer.Option("--upstream", "-u", help="The real server: http://HOST:PORT (a trailing /v1 is fine).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run directory to store the tap run in (created; reopened to add more).")] = None,
    listen: Annotated[str, typer.Option("--listen", help="HOST:PORT the agent connects to (port 0: any free port).")] = DEFAULT_LISTEN,
    rules: Annotated[list[str], typer.Option("--rules", "-r", help="Rules file (YAML), or a shipped set: kanban, shell, generic (repeatable; default: kanban and shell).")] = [],
    idle: Annotated[float, typer.Option("--idle", help="Seconds without a request after which a conversation is over and its obligations are judged.")] = 120.0,
    otlp: Annotated[str | None, typer.Option("--otlp", help="Also send one span per exchange over OTLP/HTTP to this URL (e.g. http://127.0.0.1:4318/v1/traces); needs the tap-otel extra.")] = None,
) -> None:
    """Relay an agent's traffic to --upstream, classify every reply live, store it in -o RUN_DIR.

    Point the agent's base URL at http://LISTEN/v1 (Ollama clients: http://LISTEN). Ctrl-C stops the tap and
    ends the open conversations; `brainbench report RUN_DIR` shows the run."""
    if ctx.invoked_subcommand is not None:
        return
    if upstream is None or out is None:
        raise BrainbenchError("brainbench tap needs --upstream URL and -o RUN_DIR")
    if idle <= 0:
        raise BrainbenchError(f"--idle must be a positive number of seconds, not {idle}")
    host, port = _listen(listen)
    asyncio.run(_serve(_upstream(upstream), host, port, rules, idle, out, otlp))


@tap_app.command("export-scenarios")
def export_scenarios_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by brainbench tap.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the draft scenario files (created).")],
    failed_only: Annotated[bool, typer.Option("--failed-only", help="Only conversations with a failure.")] = False,
) -> None:
    """Write recorded conversations as draft scenario YAML (tools, messages up to the first failure) to complete
    with checks."""
    from .scenarios import export_scenarios

    paths = export_scenarios(run_dir, out, failed_only=failed_only)
    print(f"wrote {len(paths)} draft scenario(s) to {out}", file=sys.stderr)


@tap_app.command("rescore")
def rescore_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by brainbench tap.")],
    rules: Annotated[list[str], typer.Option("--rules", "-r", help="Rules file (YAML) or shipped set to judge by instead of the recorded ones (repeatable); they become the run's rules.")] = [],
) -> None:
    """Judge a recorded tap run again from its store, no traffic needed: after a rules-file change (or a
    brainbench upgrade). `brainbench report RUN_DIR` then shows the new verdicts."""
    from .rescore import rescore_dir

    n = rescore_dir(run_dir, rules)
    print(f"re-scored {n} conversation(s) in {run_dir}", file=sys.stderr)
