"""The profile schema (pydantic, strict) and loading with one-line errors that name the file and field."""

from __future__ import annotations

import difflib
import hashlib
import re
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from ..core.errors import BrainbenchError
from ..core.run_config import DEFAULTS, RunConfig
from ..servers import ServerConfig, UnknownKind, get_kind, kinds
from ..servers.handle import command_words  # noqa: F401 - re-exported for callers of the old home


class ProfileError(BrainbenchError):
    """A profile file is broken; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


ServerSpec = ServerConfig
"""A profile's `server:` section: validated as the config model of the kind it names (see brainbench.servers)."""

LEGACY_SERVER_DEFAULTS: dict[str, Any] = {"brain": None, "model_path": None, "binary": None, "base_url": None,
                                          "threads": None, "parallel": 1, "ctx_per_slot": 8192, "pid": None}
"""The fields every kind had while `server:` was one flat model, at their defaults. Profiles stored then carry
them all; a kind without the field drops them on load, and identity() adds them back so stored matrices resume."""


def server_config(data: Any) -> ServerConfig:
    """Validate a `server:` mapping as the config model of the kind it names."""
    if isinstance(data, ServerConfig) or not isinstance(data, dict):
        return data
    kind = get_kind(str(data.get("kind", "llama-server")))
    fields = kind.config.model_fields
    data = {k: v for k, v in data.items() if k in fields or LEGACY_SERVER_DEFAULTS.get(k, ...) != v}
    return kind.config.model_validate(data)


class Warmup(_Strict):
    """Requests sent once the server is healthy, before any leg (they load weights and fill caches)."""

    requests: int = Field(default=1, ge=0)
    max_tokens: int = Field(default=8, ge=1)
    prompt: str = "Say hello in one word."
    timeout_s: float = Field(default=300.0, gt=0)


class SpeedLeg(_Strict):
    """Decode speed through brainbench.perf: single-stream decode tok/s (median, CV), optional concurrency levels."""

    type: Literal["speed"]
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.\-]+$")
    requests: int = Field(default=5, ge=2)
    """Measured single-stream decode runs (cache-busted prompts)."""
    max_tokens: int = Field(default=128, ge=2)
    """Tokens generated per request (held fixed with ignore_eos where the server accepts it)."""
    prompt_tokens: int = Field(default=128, ge=1)
    warmup: int = Field(default=1, ge=0)
    """Unmeasured requests first."""
    cv_max: float = Field(default=0.05, gt=0)
    """Keep measuring (up to max_runs) until the decode tok/s CV of the last `requests` runs is at most this."""
    max_runs: int | None = Field(default=None, ge=1)
    """Default: `requests` (no extra runs)."""
    concurrency: list[int] = Field(default_factory=lambda: [1])
    """Levels above 1 add a concurrency sweep (aggregate and per-request tok/s per level)."""
    requests_per_level: int | None = Field(default=None, ge=1)
    timeout_s: float = Field(default=300.0, gt=0)


class AgenticLeg(_Strict):
    """Discipline: packs run as in `brainbench run` (default: the fixed agentic subset, else the smoke pack)."""

    type: Literal["agentic"]
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.\-]+$")
    packs: list[str] = Field(default_factory=list)
    suites: list[str] = Field(default_factory=list)
    pack_dirs: list[str] = Field(default_factory=list)
    limit_per_pack: int | None = Field(default=None, ge=1)
    """Only the first N scenarios of each pack (by id): a fixed subset, the same for every config."""
    trials: int = Field(default=DEFAULTS.trials, ge=1)
    concurrency: int = Field(default=DEFAULTS.concurrency, ge=1)
    retries: int = Field(default=DEFAULTS.retries, ge=0)
    timeout_s: float = Field(default=DEFAULTS.timeout, gt=0)
    harness: Literal["minimal", "agent"] = DEFAULTS.harness
    """How each scenario is wrapped (`brainbench run --harness`): minimal, or agent-framework shaped."""

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        """minimal is left out of the dump (leg ids and attempt keys hash it), so legs without it keep theirs."""
        data = handler(self)
        if data.get("harness") == "minimal":
            data.pop("harness")
        return data

    def run_config(self, packs: list[str], suites: list[str]) -> RunConfig:
        """The run options this leg stands for, with the packs it resolved to (`matrix.legs.discipline_packs`)."""
        return RunConfig(packs=packs, suites=suites, pack_dirs=self.pack_dirs, trials=self.trials,
                         concurrency=self.concurrency, retries=self.retries, timeout=self.timeout_s,
                         harness=self.harness)


class SoakLeg(_Strict):
    """S sessions × T turns with bounded duration; crashes, silent-empty turns, TPS retention, memory growth."""

    type: Literal["soak"]
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.\-]+$")
    sessions: int = Field(default=10, ge=1)
    turns: int = Field(default=5, ge=1)
    concurrency: int = Field(default=1, ge=1)
    """Sessions in flight at once."""
    max_tokens: int = Field(default=128, ge=2)
    duration_s: float = Field(default=1800.0, gt=0)
    """Hard bound: no session starts after it and in-flight ones are cut (the verdict says so)."""
    min_retention: float = Field(default=0.80, ge=0, le=1)
    """TPS retention (median decode tok/s of the last 5 sessions ÷ the first 5) below this fails."""
    max_mem_growth: float = Field(default=0.25, ge=0)
    """Server RSS (or VRAM) growth, as a fraction of the post-warm-up value, above this fails."""
    mem_growth_floor_mb: float = Field(default=64.0, ge=0)
    """Growth below this many MiB never fails (allocator noise on small models)."""
    silent_empty_min_s: float = Field(default=1.0, ge=0)
    """A 200 reply with no decoded token counts as silent-empty when it took at least this long."""
    timeout_s: float = Field(default=300.0, gt=0)
    restart: Literal["never", "on_crash"] = "never"
    """on_crash: restart a dead server and go on (each death is still counted as a crash)."""
    max_restarts: int = Field(default=2, ge=0)


Leg = Annotated[SpeedLeg | AgenticLeg | SoakLeg, Field(discriminator="type")]
LEG_TYPES: dict[str, type[BaseModel]] = {"speed": SpeedLeg, "agentic": AgenticLeg, "soak": SoakLeg}


def leg_name(leg: SpeedLeg | AgenticLeg | SoakLeg) -> str:
    """The name of a leg of a validated Profile (`Profile._name_legs` names every leg it holds)."""
    assert leg.name is not None, "a leg outside a Profile has no name yet"
    return leg.name


RESOURCE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]*")
"""A profile's resource name (Ray's custom resource names; `gpus`, `cpus`, `memory_gb` are Ray's own)."""


def _default_legs() -> list[Leg]:
    return [SpeedLeg(type="speed")]


class Profile(_Strict):
    """One server configuration and the legs to run against it."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    server: SerializeAsAny[ServerConfig]
    """How to start (or find) the server: its `kind` picks the fields it takes."""
    warmup: Warmup = Field(default_factory=Warmup)
    legs: list[Leg] = Field(default_factory=_default_legs)
    restart: Literal["never", "on_crash"] = "never"
    """When the server dies mid-leg: never (the profile's remaining legs are skipped) or on_crash (restart)."""
    max_restarts: int = Field(default=1, ge=0)
    resources: dict[str, float] = Field(default_factory=dict)
    """What a node needs to run this profile under `--ray` (not part of its identity): `gpus`, `cpus`,
    `memory_gb`, or any custom resource name the cluster's nodes declare (e.g. `{gpus: 1}`, `{a100: 1}`)."""
    source: str | None = Field(default=None, exclude=True)
    """The file it came from (not part of its identity)."""

    @field_validator("server", mode="before")
    @classmethod
    def _server_kind(cls, v: Any) -> Any:
        try:
            return server_config(v)
        except UnknownKind as e:
            raise ValueError(str(e)) from None

    @model_validator(mode="after")
    def _name_legs(self) -> Profile:
        seen: dict[str, int] = {}
        for leg in self.legs:
            base = leg.name or leg.type
            seen[base] = seen.get(base, 0) + 1
            if leg.name and seen[base] > 1:
                raise ValueError(f"two legs named {leg.name!r}")
            if not leg.name:
                leg.name = base if seen[base] == 1 else f"{base}-{seen[base]}"
        return self

    @field_validator("resources")
    @classmethod
    def _resources(cls, v: dict[str, float]) -> dict[str, float]:
        for name, amount in v.items():
            if not RESOURCE_NAME.fullmatch(name):
                raise ValueError(f"resource name {name!r}: letters, digits, _ . - (starting with a letter)")
            if not amount > 0:
                raise ValueError(f"resource {name!r}: the amount must be > 0, not {amount}")
        return v

    def leg(self, name: str) -> Any:
        return next(lg for lg in self.legs if lg.name == name)

    def identity(self) -> str:
        """Hash of everything that changes results (a chat template counts by its content)."""
        data = self.model_dump(mode="json", exclude={"description", "legs", "resources"})
        data["server"] = {**LEGACY_SERVER_DEFAULTS, **data["server"]}
        tf = self.server.chat_template_file
        if tf and Path(tf).is_file():
            data["server"]["chat_template_sha256"] = hashlib.sha256(Path(tf).read_bytes()).hexdigest()
        import json

        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def profile_json_schema() -> dict[str, Any]:
    """The profile JSON Schema, with `server` as one of the registered kinds' config models."""
    schema = Profile.model_json_schema()
    defs = schema.setdefault("$defs", {})
    variants = []
    for name, kind in sorted(kinds().items()):
        sub = kind.config.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(sub.pop("$defs", {}))
        sub["title"] = f"server (kind {name})"
        doc = (sys.modules[type(kind).__module__].__doc__ or "").strip().splitlines()
        sub["properties"]["kind"] = {"const": name, "description": doc[0] if doc else name}
        if name != ServerConfig.model_fields["kind"].default:
            sub["required"] = sorted({*sub.get("required", []), "kind"})
        defs[f"server-{name}"] = sub
        variants.append({"$ref": f"#/$defs/server-{name}"})
    schema["properties"]["server"] = {"oneOf": variants, "description": "How to start (or find) the server."}
    return schema


# -- loading ----------------------------------------------------------------------------------------


def _loc_path(loc: tuple[Any, ...]) -> str:
    out = ""
    prev_int = False
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            prev_int = True
            continue
        if prev_int and part in LEG_TYPES:  # the discriminator pydantic puts in the location
            prev_int = False
            continue
        out += ("." if out else "") + str(part)
        prev_int = False
    return out or "(root)"


def _model_at(loc: tuple[Any, ...], raw: Any) -> type[BaseModel] | None:
    """The schema model that holds the last element of `loc` (for listing the allowed fields)."""
    parents = [p for p in loc[:-1]]
    if not parents:
        return Profile
    head = parents[0]
    if head == "server":
        try:
            return get_kind(str(raw["server"].get("kind", "llama-server"))).config
        except (KeyError, TypeError, AttributeError, UnknownKind):
            return ServerConfig
    if head == "warmup":
        return Warmup
    if head == "legs" and len(parents) >= 2 and isinstance(parents[1], int):
        tag = parents[2] if len(parents) > 2 and parents[2] in LEG_TYPES else None
        if tag is None:
            try:
                tag = raw["legs"][parents[1]].get("type")
            except (KeyError, IndexError, TypeError, AttributeError):
                tag = None
        return LEG_TYPES.get(tag) if tag else None
    return None


def _explain(e: ValidationError, raw: Any) -> str:
    errors = e.errors()
    err = errors[0]
    loc = tuple(err["loc"])
    path = _loc_path(loc)
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    if err["type"] == "extra_forbidden":
        model = _model_at(loc, raw)
        field = str(loc[-1])
        if model is not None:
            allowed = [f for f in model.model_fields if f != "source"]
            near = difflib.get_close_matches(field, allowed, n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]!r}?" if near else f" (allowed: {', '.join(allowed)})"
            return f"{path}: unknown field {field!r}{hint}{more}"
        return f"{path}: unknown field {field!r}{more}"
    if err["type"] == "missing":
        return f"{path}: required field is missing{more}"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{path}: {msg}{more}"


def _resolve_paths(p: Profile, base: Path) -> None:
    s = p.server
    for attr in get_kind(s.kind).path_fields:
        v = getattr(s, attr)
        if v and not Path(v).expanduser().is_absolute():
            setattr(s, attr, str((base / v).resolve()))
        elif v:
            setattr(s, attr, str(Path(v).expanduser()))
    if s.chat_template_file and not Path(s.chat_template_file).is_file():
        raise ProfileError(f"{p.source}: server.chat_template_file: no such file {s.chat_template_file}")
    for leg in p.legs:
        if isinstance(leg, AgenticLeg):
            leg.pack_dirs = [str((base / d).resolve()) if not Path(d).is_absolute() else d for d in leg.pack_dirs]


def profile_from_data(data: Any, source: str, base: Path | None = None) -> Profile:
    if not isinstance(data, dict):
        raise ProfileError(f"{source}: a profile must be a mapping with name, server and legs")
    try:
        p = Profile.model_validate(data)
    except ValidationError as e:
        raise ProfileError(f"{source}: {_explain(e, data)}") from None
    p.source = source
    _resolve_paths(p, base or Path.cwd())
    return p


def load_profile(path: Path | str) -> Profile:
    """Load and validate one profile file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark else ""
        raise ProfileError(f"{path}:{where} not valid YAML: {getattr(e, 'problem', e)}") from None
    except OSError as e:
        raise ProfileError(f"{path}: cannot read profile: {e.strerror}") from None
    return profile_from_data(data, str(path), path.parent)


def load_profiles(paths: list[Path]) -> list[Profile]:
    profiles = [load_profile(p) for p in paths]
    names = [p.name for p in profiles]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise ProfileError(f"two profiles are named {dup!r}; profile names must be unique within a matrix")
    return profiles


# -- parameters (sweeps) ----------------------------------------------------------------------------

SYNONYMS: list[set[str]] = [
    {"-t", "--threads"}, {"-tb", "--threads-batch"}, {"-ub", "--ubatch-size"}, {"-b", "--batch-size"},
    {"-ctk", "--cache-type-k"}, {"-ctv", "--cache-type-v"}, {"-fa", "--flash-attn"}, {"-c", "--ctx-size"},
    {"-ngl", "--n-gpu-layers", "--gpu-layers"}, {"-np", "--parallel"}, {"-m", "--model"},
]


def parse_param(text: str) -> tuple[str, list[str]]:
    """`NAME=v1,v2,...` -> (NAME, [v1, v2, ...])."""
    name, sep, values = text.partition("=")
    vals = [v.strip() for v in values.split(",")] if sep else []
    if not name.strip() or not vals or any(v == "" for v in vals):
        raise ProfileError(f"--param {text!r}: expected NAME=v1,v2,... (e.g. ubatch=128,256,512)")
    return name.strip(), vals


def _same_flag(a: str, b: str) -> bool:
    return a == b or any(a in s and b in s for s in SYNONYMS)


def set_flag(args: list[str], flag: str, value: str | None) -> list[str]:
    """Replace (or append) `flag value` in an argument list; value None removes the flag.

    A value of "true" makes a bare switch (`--mlock`), "false" removes it.
    """
    out: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        name = a.split("=", 1)[0]
        if a.startswith("-") and _same_flag(name, flag):
            takes_value = "=" not in a and i + 1 < len(args) and not (args[i + 1].startswith("-") and not _is_number(args[i + 1]))
            i += 2 if takes_value else 1
            continue
        out.append(a)
        i += 1
    if value is None or value.lower() == "false":
        return out
    return out + ([flag] if value.lower() == "true" else [flag, value])


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def apply_param(profile: Profile, name: str, value: str) -> Profile:
    """A copy of `profile` with one server setting changed.

    NAME is a server field (threads, parallel, ctx_per_slot, chat_template_file, model, ...), `env.VAR`,
    a raw flag (`-ub`, `--cache-type-k`), a short name the server kind declares (llama-server: ubatch, batch,
    kv, ctk, ctv, flash_attn), or any other word, which becomes `--word-with-dashes` (vLLM/SGLang style: max_num_seqs -> --max-num-seqs).
    """
    data = profile.model_dump(mode="json")
    server = data["server"]
    if name.startswith("env."):
        server["env"] = {**server.get("env", {}), name[4:]: value}
    elif name.startswith("-"):
        server["args"] = set_flag(server.get("args", []), name, value)
    elif name in type(profile.server).model_fields and name not in ("kind", "args", "env"):
        if name == "chat_template_file" and value.lower() in ("none", "default", "-"):
            server[name] = None
        else:
            server[name] = value
    elif name in get_kind(profile.server.kind).param_aliases:
        for flag in get_kind(profile.server.kind).param_aliases[name]:
            server["args"] = set_flag(server.get("args", []), flag, value)
    else:
        server["args"] = set_flag(server.get("args", []), "--" + name.replace("_", "-"), value)
    try:
        p = Profile.model_validate(data)
    except ValidationError as e:
        raise ProfileError(f"--param {name}={value}: {_explain(e, data)}") from None
    p.source = profile.source
    if name == "chat_template_file" and p.server.chat_template_file:
        base = Path(profile.source).parent if profile.source else Path.cwd()
        tf = Path(p.server.chat_template_file).expanduser()
        p.server.chat_template_file = str(tf if tf.is_absolute() else (Path.cwd() / tf if (Path.cwd() / tf).is_file() else base / tf).resolve())
        if not Path(p.server.chat_template_file).is_file():
            raise ProfileError(f"--param chat_template_file={value}: no such file")
    return p
