"""Protocol rules: obligations a conversation must meet, declared in YAML and checked by the tap.

A rule applies to a conversation whose offered tools include every name in `applies.tools_include` (and whose
opening user/system text matches `applies.message_regex`, when given). It may oblige the conversation to end
with a close-out call (`must_end_with`), require work before some close-outs (`needs_work_before`), and check
one tool's command line against the shell pack's allow-list (`shell`). A bad file is one line naming the file
and the field, never a traceback.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..core.errors import BrainbenchError


class RulesError(BrainbenchError):
    """A rules file that cannot be used (missing, not YAML, a field of the wrong shape)."""


def _compile(rx: str) -> None:
    try:
        re.compile(rx)
    except re.error as e:
        raise ValueError(f"not a valid regex ({e})") from None


class CallMatch(BaseModel):
    """A call that counts: a tool name, optionally with argument regexes (all must match)."""

    model_config = ConfigDict(extra="forbid")
    tool: str
    """The tool's name."""
    match: dict[str, str] = Field(default_factory=dict)
    """Argument name -> regex searched in that argument's value (as text); every one must match."""

    @field_validator("match")
    @classmethod
    def _regexes(cls, v: dict[str, str]) -> dict[str, str]:
        for rx in v.values():
            _compile(rx)
        return v

    def hits(self, name: str, args: dict[str, Any] | None) -> bool:
        """Whether a call (name, parsed arguments) is this one."""
        if name != self.tool:
            return False
        return all(re.search(rx, str((args or {}).get(k, ""))) for k, rx in self.match.items())


class Applies(BaseModel):
    """When a rule applies to a conversation."""

    model_config = ConfigDict(extra="forbid")
    tools_include: list[str] = Field(min_length=1)
    """The request's `tools` offer every one of these names."""
    message_regex: str | None = None
    """And the opening system/user text matches this regex (e.g. the worker received a card)."""

    @field_validator("message_regex")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            _compile(v)
        return v


class ShellRule(BaseModel):
    """Check one tool's command against the shell pack's allow-list (its deny-list classes)."""

    model_config = ConfigDict(extra="forbid")
    tool: str = "bash"
    """The tool that runs commands."""
    argument: str = "command"
    """The argument holding the command line."""
    scripts: dict[str, dict[str, Any]] | None = None
    """Allowed `uv run scripts/<name>.py` scripts with their flags (`{name: {flags: {--flag: value|bool}}}`);
    None: the shell pack's standard and handshake scripts."""


def _as_match(v: Any) -> Any:
    return {"tool": v} if isinstance(v, str) else v


class Rule(BaseModel):
    """One obligation (or allow-list) a conversation is held to."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1)
    """Short stable name, shown with every failure it records."""
    description: str = ""
    """What the rule means, for people."""
    applies: Applies
    """When the rule applies."""
    must_end_with: list[CallMatch] = Field(default_factory=list)
    """Close-out calls: the conversation owes one of these (a tool name, or `{tool, match}`) before it ends."""
    needs_work_before: list[str] = Field(default_factory=list)
    """Close-out tools that are `premature_closeout` when called before any work call."""
    not_work: list[str] = Field(default_factory=list)
    """Tools whose calls are not work (reading the card): they do not open the way for a close-out."""
    shell: ShellRule | None = None
    """Check this tool's commands against the allow-list: a denied one is `disallowed_command.<subclass>`."""

    @field_validator("must_end_with", mode="before")
    @classmethod
    def _names(cls, v: Any) -> Any:
        return [_as_match(x) for x in v] if isinstance(v, list) else v

    def applies_to(self, tool_names: set[str], opening: str) -> bool:
        if not set(self.applies.tools_include) <= tool_names:
            return False
        return self.applies.message_regex is None or bool(re.search(self.applies.message_regex, opening))

    def closes(self, name: str, args: dict[str, Any] | None) -> bool:
        return any(m.hits(name, args) for m in self.must_end_with)


class RuleFile(BaseModel):
    """A rules file: `rules: [...]`."""

    model_config = ConfigDict(extra="forbid")
    rules: list[Rule]
    """The rules, checked in order."""


SHIPPED = ("kanban", "shell", "generic")
"""Rule files shipped in brainbench/tap/rules/; `kanban` and `shell` are the default set."""
DEFAULT = ("kanban", "shell")


def _where(err: Any) -> str:
    return ".".join(str(p) for p in err["loc"]) or "(top)"


def parse_rules(text: str, name: str) -> list[Rule]:
    """Rules from YAML text; `name` is what an error line calls the file."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark else ""
        raise RulesError(f"{name}: not valid YAML{at}") from None
    try:
        return RuleFile.model_validate(data).rules
    except pydantic.ValidationError as e:
        first = e.errors()[0]
        raise RulesError(f"{name}: {_where(first)}: {first['msg']}") from None


def load_rules(path: Path | str) -> list[Rule]:
    """A rules file, or a shipped one by name (`kanban`, `shell`, `generic`)."""
    if str(path) in SHIPPED:
        text = (resources.files(__package__) / "rules" / f"{path}.yaml").read_text(encoding="utf-8")
        return parse_rules(text, f"{path}.yaml")
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise RulesError(f"{p}: cannot read the rules file ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise RulesError(f"{p}: not a text file") from None
    return parse_rules(text, str(p))


def load_all(paths: list[Path | str]) -> list[Rule]:
    """Every rule of the given files (the default set when none is given); ids must be unique."""
    rules = [r for p in (paths or list(DEFAULT)) for r in load_rules(p)]
    seen: set[str] = set()
    for r in rules:
        if r.id in seen:
            raise RulesError(f"rule id {r.id!r} is defined twice")
        seen.add(r.id)
    return rules
