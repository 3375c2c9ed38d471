"""Packs: scenarios as schema-validated YAML data files.

A pack is a folder with `pack.yaml` (name, description, defaults, optional inline `scenarios:`) and any
number of `scenarios/*.yaml` files (one scenario or a list each). The schema is the pydantic model
`Scenario`, its checks the typed check models of `brainbench.scoring.checks`; `brainbench packs --schema`
prints it as JSON Schema (also shipped as `scenario.schema.json`, for editors). Everything, checks included,
is validated when the pack loads, before any model call. A scenario is keyed by the hash of its content,
never by its position in a list, so editing or reordering a pack never mixes up stored results.
See README.md in this folder for how to add a pack, a scenario or a check type.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import importlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ..core.errors import BrainbenchError
from ..scoring.checks import CHECKS, AnyCheck
from .families import Family, expand

BUILTIN_DIR = Path(__file__).parent
SCHEMA_FILE = BUILTIN_DIR / "scenario.schema.json"
"""`file_schema()` as shipped, for editors (`# yaml-language-server: $schema=...`); a test keeps it current."""


class PackError(BrainbenchError):
    """A pack or scenario file is broken; the message names the file and the field."""


class Scenario(BaseModel):
    """One task for a brain: an environment, its initial state, the conversation, and how to grade it."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
    id: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    """Stable id, unique within its pack."""
    pack: str = ""
    """Filled in from the pack that holds the scenario."""
    description: str = ""
    """What the scenario tests, in a sentence."""
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
    checks: list[AnyCheck] = Field(default_factory=list)
    """Deterministic pass conditions; all must hold (the `type` field picks the check type)."""
    hook: str | None = None
    """Optional `module:function` scoring hook, for behaviour a check cannot express."""
    difficulty: Literal["easy", "medium", "hard"] = "medium"
    """Rough difficulty, for reports."""
    tags: list[str] = Field(default_factory=list)
    """Free-form labels, for reports and filtering."""
    meta: dict[str, Any] = Field(default_factory=dict)
    """Free-form data for environments and hooks (e.g. a card's expected outcome)."""
    validity_exempt: dict[str, str] = Field(default_factory=dict)
    """Trivial policies of the validity gate (`brainbench packs --check`) this scenario may pass, each with
    the reason, e.g. `{done: "a refusal: saying Done. without a call is a right answer"}`. Not part of the
    content hash (it changes no task)."""
    family: str = ""
    """The family a generated variant comes from (`brainbench.packs.families`); empty for a written scenario."""

    @property
    def key(self) -> str:
        return f"{self.pack}/{self.id}"

    def content_hash(self) -> str:
        """sha256 of the canonical scenario content: the identity of the task, independent of file order."""
        skip = {"validity_exempt"} | (set() if self.family else {"family"})  # hashes from before families hold
        blob = json.dumps(self.model_dump(mode="json", exclude=skip), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class PackFile(BaseModel):
    """A pack's `pack.yaml`. Keys starting with `x-` are free (e.g. to hold YAML anchors shared by scenarios)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True,
                              json_schema_extra={"patternProperties": {"^x-": {}}})
    name: str
    """The pack's name (what `--pack` selects)."""
    description: str = ""
    """What the pack measures, in a sentence or two."""
    defaults: dict[str, Any] = Field(default_factory=dict)
    """Scenario fields every scenario of the pack starts from (a scenario's own fields win)."""
    scenarios: list[Union[Scenario, Family]] = Field(default_factory=list)
    """Scenarios (and scenario families) written inline (more may live in `scenarios/*.yaml`)."""
    generator: str | None = None
    """Optional `module:function(folder)` returning more scenario dicts (e.g. generated long-context cases)."""


def file_schema() -> dict[str, Any]:
    """The JSON Schema of a pack YAML file: a `pack.yaml`, or a `scenarios/*.yaml` file (one scenario or a
    list), with every check type's arguments."""
    schema = TypeAdapter(Union[PackFile, list[Union[Scenario, Family]], Scenario, Family]).json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "brainbench pack file", **schema}


class Pack(BaseModel):
    name: str
    description: str = ""
    path: str = ""
    scenarios: list[Scenario] = Field(default_factory=list)


MAX_YAML_NODES = 200_000
"""A pack file may expand (aliases followed) to at most this many values: a 1 KB alias bomb would otherwise take
minutes and gigabytes once a scenario is hashed or stored."""


def _expanded_size(root: Any) -> int:
    """Values in `root` with aliases expanded, counted without expanding them (shared objects memoised)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if not isinstance(node, (dict, list)) or id(node) in sizes:
            continue
        kids = list(node.values()) if isinstance(node, dict) else node
        if done:
            sizes[id(node)] = 1 + sum(sizes.get(id(k), 1) for k in kids)
            if sizes[id(node)] > MAX_YAML_NODES:
                return sizes[id(node)]
        else:
            stack.append((node, True))
            stack.extend((k, False) for k in kids if isinstance(k, (dict, list)) and id(k) not in sizes)
    return sizes.get(id(root), 1)


def _read_yaml(path: Path) -> Any:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise PackError(f"{path}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})") from None
    except RecursionError:
        raise PackError(f"{path}: nested too deeply") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise PackError(f"{path}:{where}: not valid YAML: {getattr(e, 'problem', e)}") from None
    except OSError as e:
        raise PackError(f"{path}: cannot read: {e.strerror}") from None
    if _expanded_size(data) > MAX_YAML_NODES:
        raise PackError(f"{path}: expands to over {MAX_YAML_NODES:,} values through YAML aliases (an alias bomb?)")
    return data


def _split(loc: tuple[Any, ...]) -> tuple[str, str, str | None]:
    """A pydantic error location as (the checks it is in, `checks[0] (card): work[1] (file)`; the field path
    left, `calls[0].args`; the innermost check type)."""
    checks, rest, tag = [], "", None
    for i, part in enumerate(loc):
        if isinstance(part, int):
            rest += f"[{part}]"
        elif i and isinstance(loc[i - 1], int) and part in CHECKS:  # the tag pydantic puts after the index
            checks.append(f"{rest} ({part})")
            rest, tag = "", str(part)
        else:
            rest += ("." if rest else "") + str(part)
    return ": ".join(checks), rest, tag


def _unknown(name: str, allowed: list[str], what: str, otherwise: str = "") -> str:
    near = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    return f"unknown {what} {name!r}" + (f"; did you mean {near[0]!r}?" if near else otherwise)


def _names(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


_FIRST = {"extra_forbidden": 0, "union_tag_invalid": 1, "union_tag_not_found": 1}
"""The error shown when there are several: a typo first (it usually causes the others)."""


def _explain(errors: list[Any]) -> str:
    """One line for a validation error: where, then what ("checks[0] (content_regex): unknown field 'patern'")."""
    err = min(errors, key=lambda e: _FIRST.get(e["type"], 2))
    checks, rest, tag = _split(tuple(err["loc"]))
    if err["type"] == "extra_forbidden":
        fields = _names(CHECKS[tag] if tag else Scenario) if rest.isidentifier() else []  # not in a sub-model
        what = _unknown(rest, fields, "field")
    elif err["type"] == "missing":
        what = f"missing required field {rest!r}"
    elif err["type"] == "union_tag_invalid":
        what = ": ".join(filter(None, [rest, _unknown(str(err["ctx"]["tag"]), list(CHECKS), "check type",
                                                " (brainbench packs --schema lists them)")]))
    elif err["type"] == "union_tag_not_found":
        what = ": ".join(filter(None, [rest, "a check needs a 'type' (brainbench packs --schema lists them)"]))
    else:
        msg = err["msg"].removeprefix("Value error, ")
        what = f"field {rest!r}: {msg}" if rest else msg
    return ": ".join(filter(None, [checks, what]))


def _scenario(raw: Any, pack: str, defaults: dict, path: Path, index: int) -> Scenario:
    if not isinstance(raw, dict):
        raise PackError(f"{path}: scenario #{index + 1} must be a mapping, got {type(raw).__name__}")
    data = {**defaults, **raw, "pack": pack}
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        sid = raw.get("id", f"#{index + 1}")
        raise PackError(f"{path}: scenario {sid!r}: {_explain(e.errors())}") from None


def stored_scenario(data: dict[str, Any]) -> Scenario:
    """A scenario as stored with a run, validated again (a one-line error when it no longer validates)."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        raise PackError(f"stored scenario {data.get('pack')}/{data.get('id')}: {_explain(e.errors())}") from None


def load_pack(folder: Path) -> Pack:
    """Load and validate one pack folder."""
    meta_path = folder / "pack.yaml"
    meta = _read_yaml(meta_path) or {}
    if not isinstance(meta, dict) or "name" not in meta:
        raise PackError(f"{meta_path}: must be a mapping with at least a 'name'")
    for key in meta:
        if key not in PackFile.model_fields and not str(key).startswith("x-"):
            raise PackError(f"{meta_path}: {_unknown(str(key), list(PackFile.model_fields), 'field')}")
    head = _pack_head(meta, meta_path)
    sources: list[tuple[Path, Any]] = [(meta_path, meta.get("scenarios") or [])]
    if head.generator:
        sources.append((meta_path, _generated(head.generator, folder, meta_path)))
    for f in sorted((folder / "scenarios").glob("*.y*ml")) if (folder / "scenarios").is_dir() else []:
        data = _read_yaml(f)
        sources.append((f, data if isinstance(data, list) else [data]))
    scenarios: list[Scenario] = []
    seen: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="bb-pack-") as tmp:
        for path, items in sources:
            if not isinstance(items, list):
                raise PackError(f"{path}: 'scenarios' must be a list, got {type(items).__name__}")
            for i, raw in enumerate(_variants(items, path)):
                s = _scenario(raw, head.name, head.defaults, path, i)
                if s.id in seen:
                    raise PackError(f"{path}: duplicate scenario id {s.id!r} in pack {head.name!r}")
                _check_env(s, path, Path(tmp) / str(len(seen)))
                seen.add(s.id)
                scenarios.append(s)
    return Pack(name=head.name, description=head.description, path=str(folder), scenarios=scenarios)


def _variants(items: list[Any], path: Path) -> list[Any]:
    """The items with every family (`family:` instead of `id:`) expanded into its variants."""
    out: list[Any] = []
    for raw in items:
        if not (isinstance(raw, dict) and "family" in raw and "id" not in raw):
            out.append(raw)
            continue
        try:
            out += expand(Family.model_validate(raw))
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(x) for x in err["loc"])
            raise PackError(f"{path}: family {raw.get('family')!r}: field {where!r}: "
                            f"{err['msg'].removeprefix('Value error, ')}") from None
        except KeyError as e:
            raise PackError(f"{path}: family {raw.get('family')!r}: {e.args[0]}") from None
    return out


def _pack_head(meta: dict[str, Any], path: Path) -> PackFile:
    """pack.yaml's own fields, typed (its scenarios are validated one by one, with the defaults applied)."""
    fields = {k: v for k, v in meta.items() if k in PackFile.model_fields and k != "scenarios"}
    try:
        return PackFile.model_validate(fields)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise PackError(f"{path}: field {where!r}: {err['msg']}") from None


def _generated(spec: str, folder: Path, path: Path) -> Any:
    """Scenario dicts from a pack's `module:function` generator; one line when it cannot be loaded or fails."""
    module, _, fn = spec.partition(":")
    try:
        func = getattr(importlib.import_module(module), fn)
    except (ImportError, AttributeError, ValueError) as e:
        raise PackError(f"{path}: generator {spec!r} cannot be loaded: {e}") from None
    try:
        return func(folder)
    except BrainbenchError:
        raise
    except Exception as e:  # a pack's own code: its failure is one line naming it
        raise PackError(f"{path}: generator {spec!r} failed: {type(e).__name__}: {e}") from None


_RESERVED_PARAMS = ("model", "messages", "stream", "stream_options", "tools", "tool_choice")


def _check_env(s: Scenario, path: Path, workdir: Path) -> None:
    """The scenario's environment exists and accepts its state (set up once, in a scratch folder): a bad card
    status or a file outside the workspace is one line at load, not a crash mid-run."""
    where = f"{path}: scenario {s.id!r}"
    reserved = [k for k in _RESERVED_PARAMS if k in s.params]
    if reserved:
        raise PackError(f"{where}: params may not set {reserved[0]!r} (brainbench sends it; use the scenario's "
                        "own fields)")
    from ..envs import REGISTRY, get_env

    if s.env not in REGISTRY:
        raise PackError(f"{where}: {_unknown(s.env, list(REGISTRY), 'environment', '; known: ' + ', '.join(sorted(REGISTRY)))}")
    workdir.mkdir(parents=True)
    try:
        get_env(s.env)(copy.deepcopy(s.state), workdir)
    except Exception as e:  # the environment's own validation, whatever it raises
        raise PackError(f"{where}: state: {type(e).__name__}: {e}"[:400]) from None


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


def limit(packs: list[Pack], n: int | None) -> list[Pack]:
    """At most `n` scenarios of each pack, evenly spaced over its order (the same ones every time, written
    scenarios and family variants alike); None keeps them all."""
    if n is None:
        return packs
    return [p.model_copy(update={"scenarios": [p.scenarios[i * len(p.scenarios) // n] for i in range(n)]})
            if len(p.scenarios) > n else p for p in packs]


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
        raise PackError(f"{_unknown(missing[0], sorted(packs), 'pack')}; available: {', '.join(sorted(packs))}")
    return [packs[n] for n in dict.fromkeys(wanted)]
