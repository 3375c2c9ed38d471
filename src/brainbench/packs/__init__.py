"""Packs: scenarios as schema-validated YAML data files.

A pack is a folder with `pack.yaml` (name, description, defaults, optional inline `scenarios:`) and any
number of `scenarios/*.yaml` files (one scenario or a list each). The schema is the pydantic model
`Scenario`; `brainbench packs --schema` prints it as JSON Schema. A scenario is keyed by the hash of its
content, never by its position in a list, so editing or reordering a pack never mixes up stored results.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..core.errors import BrainbenchError

BUILTIN_DIR = Path(__file__).parent


class PackError(BrainbenchError):
    """A pack or scenario file is broken; the message names the file and the field."""


class Check(BaseModel):
    """One deterministic assertion over an attempt (see brainbench.scoring.checks for the types)."""

    model_config = ConfigDict(extra="allow")
    type: str
    """Check type, e.g. content_regex, tool_called, no_tool_calls, call_sequence, state."""


class Scenario(BaseModel):
    """One task for a brain: an environment, its initial state, the conversation, and how to grade it."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    """Stable id, unique within its pack."""
    pack: str = ""
    """Filled in from the pack that holds the scenario."""
    description: str = ""
    env: str = "chat"
    """Environment name (see `brainbench.envs.REGISTRY`)."""
    state: dict[str, Any] = Field(default_factory=dict)
    """The environment's initial state."""
    tools: list[str] | None = None
    """Tools offered to the model; None offers every tool of the environment, [] offers none."""
    system: str | None = None
    """System prompt."""
    messages: list[dict[str, Any]] = Field(min_length=1)
    """The opening conversation (usually one user message)."""
    max_turns: int = Field(default=8, ge=1, le=200)
    """Turn budget: model replies allowed per dispatch."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Sampling parameters (temperature, max_tokens, ...) sent with every request."""
    checks: list[Check] = Field(default_factory=list)
    """Deterministic pass conditions; all must hold."""
    hook: str | None = None
    """Optional `module:function` scoring hook, for behaviour a check cannot express."""
    difficulty: Literal["easy", "medium", "hard"] = "medium"
    tags: list[str] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)
    """Free-form data for environments and hooks (e.g. a card's expected outcome)."""

    @property
    def key(self) -> str:
        return f"{self.pack}/{self.id}"

    def content_hash(self) -> str:
        """sha256 of the canonical scenario content: the identity of the task, independent of file order."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Pack(BaseModel):
    name: str
    description: str = ""
    path: str = ""
    scenarios: list[Scenario] = Field(default_factory=list)


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise PackError(f"{path}:{where}: not valid YAML: {getattr(e, 'problem', e)}") from None
    except OSError as e:
        raise PackError(f"{path}: cannot read: {e.strerror}") from None


def _scenario(raw: Any, pack: str, defaults: dict, path: Path, index: int) -> Scenario:
    if not isinstance(raw, dict):
        raise PackError(f"{path}: scenario #{index + 1} must be a mapping, got {type(raw).__name__}")
    data = {**defaults, **raw, "pack": pack}
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "(root)"
        sid = raw.get("id", f"#{index + 1}")
        raise PackError(f"{path}: scenario {sid}: field {loc!r}: {err['msg']}") from None


def load_pack(folder: Path) -> Pack:
    """Load and validate one pack folder."""
    meta_path = folder / "pack.yaml"
    meta = _read_yaml(meta_path) or {}
    if not isinstance(meta, dict) or "name" not in meta:
        raise PackError(f"{meta_path}: must be a mapping with at least a 'name'")
    name, defaults = meta["name"], meta.get("defaults") or {}
    sources: list[tuple[Path, Any]] = [(meta_path, meta.get("scenarios") or [])]
    if meta.get("generator"):  # `module:function` returning scenario dicts (e.g. generated long-context cases)
        module, _, fn = str(meta["generator"]).partition(":")
        sources.append((meta_path, getattr(importlib.import_module(module), fn)(folder)))
    for f in sorted((folder / "scenarios").glob("*.y*ml")) if (folder / "scenarios").is_dir() else []:
        data = _read_yaml(f)
        sources.append((f, data if isinstance(data, list) else [data]))
    scenarios, seen = [], set()
    for path, items in sources:
        for i, raw in enumerate(items):
            s = _scenario(raw, name, defaults, path, i)
            if s.id in seen:
                raise PackError(f"{path}: duplicate scenario id {s.id!r} in pack {name!r}")
            seen.add(s.id)
            scenarios.append(s)
    return Pack(name=name, description=meta.get("description", ""), path=str(folder), scenarios=scenarios)


def pack_dirs(extra: list[Path] | None = None) -> list[Path]:
    """Built-in pack folders, then $BRAINBENCH_PACKS (os.pathsep-separated), then `extra`."""
    roots = [BUILTIN_DIR]
    roots += [Path(p) for p in os.environ.get("BRAINBENCH_PACKS", "").split(os.pathsep) if p]
    roots += extra or []
    found = []
    for root in roots:
        if (root / "pack.yaml").is_file():
            found.append(root)
        elif root.is_dir():
            found += sorted(p.parent for p in root.glob("*/pack.yaml"))
        else:
            raise PackError(f"{root}: pack folder does not exist")
    return found


SUITES: dict[str, list[str]] = {
    "agentic": ["kanban", "shell", "home", "refusal"],
    "quality": ["toolcall", "instruct", "structured", "extract", "math", "bugfind", "cli", "context", "stress"],
}


def discover(extra: list[Path] | None = None) -> dict[str, Pack]:
    """Every pack by name (a later folder with the same name overrides an earlier one)."""
    return {p.name: p for p in (load_pack(d) for d in pack_dirs(extra))}


def select(names: list[str], suites: list[str] | None = None, extra: list[Path] | None = None) -> list[Pack]:
    """The packs asked for by name or suite, with a clear error for an unknown one."""
    packs = discover(extra)
    wanted = list(names)
    for s in suites or []:
        if s not in SUITES:
            raise PackError(f"unknown suite {s!r}; known: {', '.join(sorted(SUITES))}")
        wanted += SUITES[s]
    missing = [n for n in wanted if n not in packs]
    if missing:
        raise PackError(f"unknown pack {missing[0]!r}; available: {', '.join(sorted(packs))}")
    return [packs[n] for n in dict.fromkeys(wanted)]
