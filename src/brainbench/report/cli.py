"""`brainbench report` and `brainbench compare` (mounted in brainbench/cli.py; heavy imports stay inside)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from ..console import err_console, out_console
from ..core.errors import BrainbenchError

console = err_console()
out = out_console()


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


def _output_arg(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise BrainbenchError(f"--output wants NAME=PATH (e.g. json=report.json), not {text!r}")
    return name, Path(path)


def report_cmd(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories; one point/column per brain in them.")],
    baseline: Annotated[Path | None, typer.Option("--baseline", help="Earlier run to show deltas against.")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Write the self-contained HTML report here.")] = None,
    md: Annotated[Path | None, typer.Option("--md", help="Write the Markdown report here.")] = None,
    at_concurrency: Annotated[int | None, typer.Option("--at-concurrency", help="Concurrency for the useful-throughput figure (default: the run's own).")] = None,
    model_size: Annotated[list[str], typer.Option("--model-size", help="NAME=GB model file size where the run does not know it (repeatable).")] = [],
    logs: Annotated[list[str], typer.Option("--logs", help="[BRAIN=]FILE.json from `brainbench logs vllm --json`: concurrency curves from a server log (repeatable).")] = [],
    pack: Annotated[list[str], typer.Option("--pack", "-p", help="Report only this pack (repeatable; default: all).")] = [],
    title: Annotated[str | None, typer.Option("--title", help="Report title.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Also print the report's data as JSON.")] = False,
    output: Annotated[list[str], typer.Option("--output", help="NAME=PATH: write a registered output (html, md, json, terminal) to PATH (repeatable).")] = [],
) -> None:
    """Write an HTML (self-contained, offline) and/or Markdown report of one or more runs."""
    from .outputs import get_output
    from .render import write_report

    files = dict(_output_arg(x) for x in output)
    for name in files:
        get_output(name)  # an unknown name fails before anything is built
    if html is None and md is None and not files:
        html = Path("report.html")
    rep = write_report(run_dirs, baseline=baseline, html=html, md=md, at_concurrency=at_concurrency,
                       model_sizes=_sizes(model_size), title=title, log_files=[_log_arg(x) for x in logs],
                       packs=pack or None, files=files)
    for path in (html, md, *files.values()):
        if path:
            console.print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
    if json_out:
        out.print_json(get_output("json").render(rep))


def compare_cmd(
    baseline: Annotated[Path, typer.Argument(help="The earlier (baseline) run directory.")],
    run_dir: Annotated[Path, typer.Argument(help="The run directory to compare against it.")],
    model_size: Annotated[list[str], typer.Option("--model-size", help="NAME=GB model file size (repeatable).")] = [],
    pack: Annotated[list[str], typer.Option("--pack", "-p", help="Compare only this pack (repeatable).")] = [],
) -> None:
    """Compare two runs in the terminal: per-pack rates with deltas, judged against run-to-run noise.

    Like with like only: the packs both runs ran (ALL over those) and speed at the concurrency levels both
    measured; what is left out is named in one line."""
    from .data import build_report
    from .outputs import get_output

    rep = build_report([run_dir], baseline, model_sizes=_sizes(model_size), packs=pack or None, common_packs=True)
    sys.stdout.write(get_output("terminal").render(rep, width=out.width, styled=out.is_terminal))
