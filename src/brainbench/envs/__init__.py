"""Simulated environments. Each name maps to a class; modules load only when a scenario needs them."""

from __future__ import annotations

import importlib

from .base import Environment, ToolError, ToolOutcome, tool

REGISTRY: dict[str, str] = {
    "chat": "brainbench.envs.toy:ChatEnv",
    "toy": "brainbench.envs.toy:ToyEnv",
    "kanban": "brainbench.envs.kanban:KanbanEnv",
    "shell": "brainbench.envs.shell:ShellEnv",
    "home": "brainbench.envs.home:HomeEnv",
    "refusal": "brainbench.envs.refusal:RefusalEnv",
    "schema_tools": "brainbench.envs.schema_tools:SchemaToolsEnv",
}


def get_env(name: str) -> type[Environment]:
    """The Environment class for `name` (KeyError with the known names when unknown)."""
    if name not in REGISTRY:
        raise KeyError(f"unknown environment {name!r}; known: {', '.join(sorted(REGISTRY))}")
    module, _, cls = REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), cls)


__all__ = ["Environment", "REGISTRY", "ToolError", "ToolOutcome", "get_env", "tool"]
