"""`brainbench report` and `brainbench compare` (mounted in brainbench/cli.py; heavy imports stay inside)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from ..core.errors import BrainbenchError

console = Console(stderr=True)
out = Console()


def _sizes(items: list[str]) -> dict[str, float]:
    sizes: dict[str, float] = {}
    for it in items:
        name, sep, val = it.rpartition("=")
        try:
            size = float(val)
        except ValueError:
            size = 0.0
        if not sep or not name or size <= 0:
            raise BrainbenchError(f"--model-size wants NAME=GB (e.g. qwen3-27b=17.2), not {it!r}")
        sizes[name] = size
    return sizes


def _log_arg(text: str) -> tuple[str | None, Path]:
    label, sep, path = text.partition("=")
    return (label, Path(path)) if sep and not Path(text).exists() else (None, Path(text))


def report_cmd(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories; one point/column per brain in them.")],
    baseline: Annotated[Optional[Path], typer.Option("--baseline", help="Earlier run to show deltas against.")] = None,
    html: Annotated[Optional[Path], typer.Option("--html", help="Write the self-contained HTML report here.")] = None,
    md: Annotated[Optional[Path], typer.Option("--md", help="Write the Markdown report here.")] = None,
    at_concurrency: Annotated[Optional[int], typer.Option("--at-concurrency", help="Concurrency for the useful-throughput figure (default: the run's own).")] = None,
    model_size: Annotated[list[str], typer.Option("--model-size", help="NAME=GB model file size where the run does not know it (repeatable).")] = [],
    logs: Annotated[list[str], typer.Option("--logs", help="[BRAIN=]FILE.json from `brainbench logs vllm --json`: concurrency curves from a server log (repeatable).")] = [],
    pack: Annotated[list[str], typer.Option("--pack", "-p", help="Report only this pack (repeatable; default: all).")] = [],
    title: Annotated[Optional[str], typer.Option("--title", help="Report title.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Also print the report's data as JSON.")] = False,
) -> None:
    """Write an HTML (self-contained, offline) and/or Markdown report of one or more runs."""
    from .render import write_report

    if html is None and md is None:
        html = Path("report.html")
    rep = write_report(run_dirs, baseline=baseline, html=html, md=md, at_concurrency=at_concurrency,
                       model_sizes=_sizes(model_size), title=title, log_files=[_log_arg(x) for x in logs],
                       packs=pack or None)
    for path in (html, md):
        if path:
            console.print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
    if json_out:
        slim = {"title": rep["title"], "entries": [
            {k: v for k, v in e.items() if k not in ("rows", "failed", "scenario_hashes")} for e in rep["entries"]]}
        out.print_json(json.dumps(slim, default=str))


def compare_cmd(
    baseline: Annotated[Path, typer.Argument(help="The earlier (baseline) run directory.")],
    run_dir: Annotated[Path, typer.Argument(help="The run directory to compare against it.")],
    model_size: Annotated[list[str], typer.Option("--model-size", help="NAME=GB model file size (repeatable).")] = [],
    pack: Annotated[list[str], typer.Option("--pack", "-p", help="Compare only this pack (repeatable).")] = [],
) -> None:
    """Compare two runs in the terminal: per-pack rates with deltas, judged against run-to-run noise."""
    from .compare import compare_tables
    from .data import build_report

    rep = build_report([run_dir], baseline, model_sizes=_sizes(model_size), packs=pack or None)
    for t in compare_tables(rep):
        out.print(t)
    out.print("[dim]better/worse only where the 95% intervals of the two runs do not overlap; otherwise within noise[/]")
