"""Scenario families: one templated scenario in YAML that a seeded generator expands into N variants.

A family is written in a scenario list like a scenario, with `family:` instead of `id:`. Its `vars` are drawn
per variant from `random.Random(f"{family}:{seed}:{index}")`, so variant `index` depends only on the family's
text and its index: ids are stable (`<family>-<index>`), and a variant's content hash changes only when its
content does. `${name}` (or `${name.key}`, `${name.0}`) in any string of `scenario` is replaced by the drawn
value; a string that is exactly `${name}` takes the value itself (a list, a number, a mapping).
"""

from __future__ import annotations

import random
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

_KINDS = ("choice", "cycle", "range", "hex", "sample", "shuffle", "template")


class Var(BaseModel):
    """How one variable is drawn: exactly one of the fields."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
    choice: list[Any] | None = None
    """Pick one of these values (a mapping or a list: `${name.key}`, `${name.0}` read into it; its strings may
    use earlier variables)."""
    cycle: list[Any] | None = None
    """The value at the variant's index, round the list (no draw: variants get distinct values as long as
    the list is long enough, e.g. for openings that must differ)."""
    range: tuple[int, int] | None = None
    """An integer from `lo` to `hi`, both included."""
    hex: int | None = Field(default=None, ge=4, le=32)
    """A random id of this many hex digits, after `prefix`."""
    prefix: str = ""
    """Put before a `hex` id (e.g. `t_`)."""
    sample: list[Any] | None = None
    """Pick `k` distinct values of this list, in random order (distractors)."""
    k: int = Field(default=1, ge=0)
    """How many values `sample` picks."""
    shuffle: list[Any] | None = None
    """This list in random order (e.g. the order tools are offered in)."""
    template: str | None = None
    """A string built from earlier variables (`"notes/${slug}.md"`)."""

    @model_validator(mode="after")
    def _one(self) -> Var:
        kinds = [k for k in _KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a variable needs exactly one of {', '.join(_KINDS)}; got {kinds or 'none'}")
        return self

    def draw(self, rng: random.Random, values: dict[str, Any]) -> Any:
        if self.choice is not None:
            return fill(rng.choice(self.choice), values)
        if self.cycle is not None:
            return fill(self.cycle[values["index"] % len(self.cycle)], values)
        if self.range is not None:
            return rng.randint(*self.range)
        if self.hex is not None:
            return self.prefix + "".join(rng.choice("0123456789abcdef") for _ in range(self.hex))
        if self.sample is not None:
            return rng.sample(self.sample, min(self.k, len(self.sample)))
        if self.shuffle is not None:
            return rng.sample(self.shuffle, len(self.shuffle))
        return fill(self.template, values)


class Family(BaseModel):
    """A scenario family: `scenario` with `${var}` placeholders, expanded into `variants` scenarios."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
    family: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    """The family id; variant `i` gets the id `<family>-<i>` (three digits)."""
    variants: int = Field(ge=1, le=1000)
    """How many variants to generate."""
    seed: int = 0
    """Changes every draw (and so every variant); keep it fixed once results exist."""
    vars: dict[str, Var] = Field(default_factory=dict)
    """Variables drawn per variant, in order (a `template` may use the ones above it)."""
    scenario: dict[str, Any]
    """The scenario, without `id`, with `${name}` placeholders in its strings."""


_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_]\w*(?:\.\w+)*)\}")


def _lookup(values: dict[str, Any], path: str) -> Any:
    value: Any = values
    for part in path.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise KeyError(f"unknown variable ${{{path}}}")
    return value


def fill(node: Any, values: dict[str, Any]) -> Any:
    """`node` with every `${name}` replaced (a string that is only a placeholder takes the raw value)."""
    if isinstance(node, dict):
        return {fill(k, values): fill(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [fill(v, values) for v in node]
    if not isinstance(node, str):
        return node
    whole = _PLACEHOLDER.fullmatch(node)
    if whole:
        return _lookup(values, whole.group(1))
    return _PLACEHOLDER.sub(lambda m: str(_lookup(values, m.group(1))), node)


def expand(family: Family) -> list[dict[str, Any]]:
    """The variants of a family as scenario dicts (id, family and the filled-in fields)."""
    out = []
    for i in range(family.variants):
        rng = random.Random(f"{family.family}:{family.seed}:{i}")
        values: dict[str, Any] = {"index": i}
        for name, var in family.vars.items():
            values[name] = var.draw(rng, values)
        out.append({**fill(family.scenario, values), "id": f"{family.family}-{i:03d}", "family": family.family})
    return out
