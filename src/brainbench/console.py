"""Consoles sized for where the output goes: a terminal's own width, else a wide one for a pipe or a file,
so `brainbench ... | less` or `> out.txt` never wraps a 160-column table at 80 columns."""

from __future__ import annotations

import os
import sys
from typing import TextIO

from rich.console import Console

PIPE_WIDTH = 200
"""Columns for output that goes to a pipe or a file (COLUMNS, when set, wins)."""


def width_for(stream: TextIO) -> int | None:
    """None (rich measures the terminal, or reads COLUMNS) for a terminal or a set COLUMNS; else PIPE_WIDTH."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    return None if tty or os.environ.get("COLUMNS", "").isdigit() else PIPE_WIDTH


def out_console() -> Console:
    """The console for results (stdout)."""
    return Console(width=width_for(sys.stdout))


def err_console() -> Console:
    """The console for messages (stderr); a message is one line, whatever the width."""
    return Console(stderr=True, soft_wrap=True, width=width_for(sys.stderr))
