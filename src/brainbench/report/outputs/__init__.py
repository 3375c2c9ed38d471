"""Report outputs, registered by name: each module here registers one with `@output(...)`.

An output renders the typed report (`report.model.Report`) to text. Adding one is adding one module to
this package (see ../README.md); `get_output` imports every module here once, so nothing else lists them.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...core.errors import BrainbenchError
from ..model import Report

Render = Callable[..., str]


@dataclass(frozen=True)
class Output:
    """One registered output."""

    name: str
    """What `get_output` and the CLI call it (html, md, terminal, json)."""
    suffix: str
    """File suffix when written to a file (".html"); "" for one meant for the terminal."""
    description: str
    """One line for help texts."""
    render: Render
    """Report (plus output-specific keyword options) -> text."""


OUTPUTS: dict[str, Output] = {}
"""Every registered output by name (filled as the modules of this package are imported)."""


def output(name: str, suffix: str, description: str) -> Callable[[Render], Render]:
    """Register the decorated `render(rep: Report, **options) -> str` as output `name`."""
    def register(fn: Render) -> Render:
        OUTPUTS[name] = Output(name, suffix, description, fn)
        return fn
    return register


def _load_all() -> None:
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")


def get_output(name: str) -> Output:
    """The output called `name` (a one-line error naming the known ones otherwise)."""
    if name not in OUTPUTS:
        _load_all()
    if name not in OUTPUTS:
        raise BrainbenchError(f"unknown report output {name!r}; known: {', '.join(sorted(OUTPUTS))}")
    return OUTPUTS[name]


def render(rep: Report, name: str, **options: Any) -> str:
    """Render `rep` with the output called `name`."""
    return get_output(name).render(rep, **options)


__all__ = ["OUTPUTS", "Output", "get_output", "output", "render"]
