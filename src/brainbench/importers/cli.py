"""`brainbench import ...`: turn external suites into packs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from ..console import err_console

import_app = typer.Typer(help="Import external benchmark suites as packs.", no_args_is_help=True)
console = err_console()


@import_app.command("bfcl")
def bfcl_cmd(
    category: Annotated[list[str], typer.Option("--category", "-c", help="BFCL category (repeatable); default: all supported.")] = [],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the packs into (use it as --pack-dir).")] = Path("packs-bfcl"),
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="At most N cases per category (a seeded sample).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the --limit sample.")] = 0,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="bfcl_eval/data folder (default: the installed package's).")] = None,
) -> None:
    """Convert Berkeley Function Calling Leaderboard categories (from the bfcl-eval package) into packs."""
    from .bfcl import BFCL_VERSION, CATEGORIES, import_categories, installed_version

    have = installed_version()
    if data_dir is None and have and have != BFCL_VERSION:
        console.print(f"[yellow]warning[/]: bfcl-eval {have} is installed; brainbench is pinned to {BFCL_VERSION}")
    done = import_categories(category or list(CATEGORIES), out, data_dir, limit, seed)
    for name, folder, n in done:
        console.print(f"[green]wrote[/] {name}: {n} cases -> {folder}/pack.yaml")
    names = " ".join(f"-p {name}" for name, _, _ in done)
    console.print(f"run them: brainbench run --pack-dir {out} {names} --brain brain-small")
