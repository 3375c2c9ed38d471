"""Deterministic checks: typed models, each a pure function of a stored attempt, so scoring never calls a model.

A check type is one pydantic model in a family module of this package (core, agentic, instruct, ...):
a subclass of `Check` with a `type: Literal["name"]` field, its arguments as fields (each with a docstring
under it), and a `run(view)` method returning None (holds), a reason, or `(reason, failure_id)` to say which
failure-taxonomy id its failure counts as (otherwise the check's `failure` field, else `default_failure`).
Subclassing registers the type in `CHECKS`; every module of this package is imported below, and `AnyCheck`,
the discriminated union that `Scenario.checks` uses, is built from the registry. So adding a check type
touches one place: its family module.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    model_serializer,
)

from ...core.records import AttemptRecord
from ...core.taxonomy import TAXONOMY

Outcome = Union[str, tuple[str, str], None]
"""What a check returns: None (holds), a reason, or (reason, failure-taxonomy id)."""


@dataclass
class AttemptView:
    """The parts of an attempt checks look at, computed once."""

    record: AttemptRecord
    calls: list[dict[str, Any]] = field(default_factory=list)
    """Every tool call in order: {name, arguments, ok, error_kind, in_text, raw, turn}."""
    final_content: str = ""
    """The last non-empty answer text of the attempt."""

    @classmethod
    def of(cls, rec: AttemptRecord) -> AttemptView:
        view = cls(record=rec)
        for turn in rec.turns:
            results = {r.call_id: r for r in turn.tool_results}
            for c in turn.result.tool_calls:
                r = results.get(c.id)
                view.calls.append({"name": c.name, "arguments": c.arguments, "ok": bool(r and r.ok),
                                   "error_kind": r.error_kind if r else None, "in_text": c.in_text,
                                   "raw": c.arguments_raw, "turn": turn.index})
            if turn.result.content.strip() and not any(c.in_text for c in turn.result.tool_calls):
                view.final_content = turn.result.content
        return view


def values_match(expected: Any, actual: Any) -> bool:
    """Value equality: strings case/space-insensitive, numbers numerically, dicts as subsets, lists in order."""
    if isinstance(expected, str) and isinstance(actual, str):
        return " ".join(expected.lower().split()) == " ".join(actual.lower().split())
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return abs(expected - actual) <= 1e-9 * max(1.0, abs(expected))
    if isinstance(expected, dict) and isinstance(actual, dict):
        return all(k in actual and values_match(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(values_match(e, a) for e, a in zip(expected, actual))
    return expected == actual


def get_path(data: Any, path: str) -> Any:
    """Follow a dotted path (`cards.t1.status`, list indexes allowed); raises KeyError when absent."""
    for part in path.split(".") if path else []:
        if isinstance(data, list) and part.lstrip("-").isdigit():
            data = data[int(part)]
        elif isinstance(data, dict) and part in data:
            data = data[part]
        else:
            raise KeyError(path)
    return data


# -- argument types shared by the families ---------------------------------------------------------------


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as e:
        raise ValueError(f"not a valid regular expression ({e})") from None
    return pattern


Regex = Annotated[str, AfterValidator(_compiles)]
"""A regular expression (Python `re` syntax), compiled when the pack loads so a bad one fails early."""

Number = Union[int, float]
"""An int stays an int (scenario content hashes depend on the values exactly as written)."""


def _known_failure(fid: str | None) -> str | None:
    if fid is not None and fid not in TAXONOMY:
        raise ValueError(f"unknown failure id {fid!r} (see brainbench.core.taxonomy)")
    return fid


# -- the registry ----------------------------------------------------------------------------------------

CHECKS: dict[str, type[Check]] = {}
"""Every check type by name, filled by subclassing `Check`."""


def _require_type(schema: dict[str, Any]) -> None:
    """`type` has a default (so Python code can build checks) but a pack must always write it."""
    if "type" in schema.get("properties", {}):
        schema["required"] = ["type", *[r for r in schema.get("required", []) if r != "type"]]


class Args(BaseModel):
    """Strict arguments: an unknown field is an error; each field's docstring is its schema description."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, serialize_by_alias=True)

    @model_serializer(mode="wrap")
    def _as_written(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Dump only the type and the arguments given, so a scenario's content hash does not move when a
        check type gains an optional argument."""
        fields = type(self).model_fields
        given = {fields[n].alias or n for n in self.model_fields_set} | {"type"}
        return {k: v for k, v in handler(self).items() if k in given}


class Check(Args):
    """Base of every check type: one deterministic assertion over a stored attempt."""

    model_config = ConfigDict(json_schema_extra=_require_type)
    default_failure: ClassVar[str] = "wrong_result"
    """The failure-taxonomy id a failed check counts as when neither it nor `failure` says otherwise."""

    failure: Annotated[str | None, AfterValidator(_known_failure)] = None
    """Failure-taxonomy id a failure of this check counts as (default: the check type's own)."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        type_field = cls.model_fields.get("type")
        annotation = type_field.annotation if type_field is not None else None
        if get_origin(annotation) is not Literal:
            return  # an intermediate base (shared arguments), not a check type
        name = get_args(annotation)[0]
        if name in CHECKS and CHECKS[name].__qualname__ != cls.__qualname__:
            raise ValueError(f"check type {name!r} is already registered by {CHECKS[name].__module__}")
        CHECKS[name] = cls

    def run(self, view: AttemptView) -> Outcome:
        """None when the check holds, else why not (optionally with the failure id)."""
        raise NotImplementedError

    def verdict(self, view: AttemptView) -> tuple[str, str] | None:
        """(reason, failure id) when the check fails, else None."""
        why = self.run(view)
        if not why:
            return None
        return why if isinstance(why, tuple) else (why, self.failure or self.default_failure)


def _load_families() -> Any:
    """Import every family module of this package, then build the union of the registered check types."""
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")
    # a Union over the registry's classes, known only at run time (mypy cannot express it)
    union = Annotated[Union[tuple(CHECKS.values())], Field(discriminator="type")]  # type: ignore[valid-type]
    for cls in CHECKS.values():  # models whose arguments are checks themselves (card.work, ...)
        if not cls.__pydantic_complete__:
            cls.model_rebuild(_types_namespace={"AnyCheck": union})
    return union


AnyCheck = _load_families()
"""Any registered check type, told apart by its `type` field."""


_ADAPTER: TypeAdapter[Check] = TypeAdapter(AnyCheck)


def load_check(data: dict[str, Any]) -> Check:
    """A typed check from its dict form (as written in a pack); raises pydantic's ValidationError."""
    return _ADAPTER.validate_python(data)


__all__ = ["AnyCheck", "Args", "AttemptView", "CHECKS", "Check", "Number", "Outcome", "Regex", "get_path", "load_check",
           "values_match"]
