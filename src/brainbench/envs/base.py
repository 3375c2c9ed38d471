"""The environment contract: a simulated world the model changes only through typed tools.

A tool is a method marked `@tool`; its signature and docstring become the JSON schema the model sees
(inspect_ai's way). Raising `ToolError` shows the message to the model as the tool's result; any other
exception is a harness bug and is fatal. Nothing here touches the host: state lives in memory or in the
per-attempt `workdir`, and every path goes through `confine()`.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import ValidationError, create_model


class ToolError(Exception):
    """An error the model sees as the tool's result. `kind` is the failure-taxonomy id it counts as."""

    def __init__(self, message: str, kind: str = "tool_error"):
        super().__init__(message)
        self.kind = kind


@dataclass
class ToolOutcome:
    """What one tool call did: the text the model sees, and how it is classified."""

    ok: bool
    output: str
    error_kind: str | None = None


def tool(fn: Callable) -> Callable:
    """Mark an environment method as a tool offered to the model."""
    marked: Any = fn  # functions take arbitrary attributes; Callable does not declare this one
    marked.__brainbench_tool__ = True
    return fn


def _doc_parts(fn: Callable) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into (description, {arg: description})."""
    doc = inspect.getdoc(fn) or ""
    head, _, args_block = doc.partition("Args:")
    params = {}
    for line in args_block.splitlines():
        m = re.match(r"\s*(\w+)(?:\s*\([^)]*\))?:\s*(.+)", line)
        if m:
            params[m.group(1)] = m.group(2).strip()
    return " ".join(head.split()), params


class _ToolSpec:
    """A tool's schema and argument validator, built once per class from the signature."""

    def __init__(self, fn: Callable):
        self.name = fn.__name__
        self.description, arg_docs = _doc_parts(fn)
        fields: dict[str, Any] = {}
        for p in list(inspect.signature(fn).parameters.values())[1:]:
            ann = p.annotation if p.annotation is not inspect.Parameter.empty else Any
            default = ... if p.default is inspect.Parameter.empty else p.default
            fields[p.name] = (ann, default)
        self.model = create_model(f"{self.name}_args", **fields)
        schema = self.model.model_json_schema()
        schema.pop("title", None)
        for name, prop in schema.get("properties", {}).items():
            prop.pop("title", None)
            if name in arg_docs:
                prop["description"] = arg_docs[name]
        self.parameters = schema

    def openai(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


def _format_validation(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "arguments"
        parts.append(f"{loc}: {err['msg']}")
    return "invalid arguments: " + "; ".join(parts)


MAX_PATH_DEPTH = 32
"""Path components a tool accepts; deeper is `bad_path`."""


def _check_path(path: str) -> None:
    """Refuse what no filesystem takes before touching the disk: NUL, lone surrogates, long names, deep paths."""
    if "\x00" in path:
        raise ToolError("a path may not contain a NUL byte", kind="bad_path")
    try:
        parts = [p.encode("utf-8") for p in path.split("/")]
    except UnicodeEncodeError:
        raise ToolError("a path may not contain an unpaired surrogate", kind="bad_path") from None
    if any(len(p) > 255 for p in parts):
        raise ToolError("a file or folder name may be at most 255 bytes", kind="bad_path")
    if len([p for p in parts if p]) > MAX_PATH_DEPTH:
        raise ToolError(f"a path may be at most {MAX_PATH_DEPTH} levels deep", kind="bad_path")


class Environment:
    """Base class. Subclasses set `name`, define `@tool` methods, and override `setup`/`final_state`.

    What the runner and the scorer need to know about an environment it declares here (its capabilities),
    so neither names an environment or its tools: `terminal_tools`, `narration_names`, `call_only_turns`,
    `requires_closeout`, `open_obligation` and `closed`.
    """

    name: ClassVar[str] = "base"
    _specs: ClassVar[dict[str, _ToolSpec]]

    terminal_tools: ClassVar[tuple[str, ...]] = ()
    """Tools whose successful call can close out the task (the protocol's terminal call); scoring also matches
    them in replies that narrate an action instead of calling it."""
    narration_names: ClassVar[tuple[str, ...]] = ()
    """Other names a reply may narrate instead of calling (e.g. the shell's handshake scripts, run through `bash`)."""
    call_only_turns: ClassVar[bool] = False
    """True where the protocol wants tool calls without prose around them (an on-rails orchestrator)."""

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cls._specs = {
            n: _ToolSpec(f) for n, f in inspect.getmembers(cls, inspect.isfunction) if getattr(f, "__brainbench_tool__", False)
        }

    def __init__(self, state: dict[str, Any], workdir: Path):
        self.workdir = workdir
        self.setup(json.loads(json.dumps(state)))  # deep copy: scenarios are shared between trials

    # -- for subclasses -----------------------------------------------------------------------------

    def setup(self, state: dict[str, Any]) -> None:
        """Load the scenario's initial state."""
        self.state = state

    def final_state(self) -> dict[str, Any]:
        """The state scoring looks at (must be JSON-serialisable)."""
        return self.state

    def open_obligation(self) -> str | None:
        """What the protocol still requires (e.g. "card t1 is still in_progress"), or None when nothing is owed.

        The runner asks this when the model ends a turn with plain text: an open obligation earns one
        turn-end nudge (`nudge_text`), and if the dispatch still ends with it open, that is a protocol
        violation and the task may be re-dispatched with `reminder_text`.
        """
        return None

    @classmethod
    def requires_closeout(cls, state: dict[str, Any]) -> bool:
        """Whether scenarios with this initial state carry a close-out obligation (the omission rate's base)."""
        return False

    @property
    def closed(self) -> bool:
        """The task's terminal call has been made: the runner allows one more turn, then ends the dispatch."""
        return False

    max_nudges: ClassVar[int] = 1
    """Turn-end guard: nudges per dispatch before the violation is recorded (hermes-agent nudges once)."""

    def nudge_text(self, obligation: str) -> str:
        return f"A plain-text reply is NOT a terminal state: {obligation}. Finish with the required tool call."

    def reminder_text(self, obligation: str) -> str:
        return f"Reminder from the dispatcher: the previous attempt ended without closing out ({obligation})."

    def confine(self, path: str) -> Path:
        """Resolve `path` inside the workdir or raise a ToolError: `blocked_path` outside it, `bad_path` for a
        path no filesystem takes (the model chose it: it sees the error, the run goes on)."""
        _check_path(path)
        try:
            target = (self.workdir / path).resolve()
        except (OSError, RuntimeError) as e:  # a symlink loop, a name the OS refuses
            raise ToolError(f"path {path[:80]!r} cannot be used: {e}", kind="bad_path") from None
        root = self.workdir.resolve()
        if target != root and root not in target.parents:
            raise ToolError(f"path {path[:200]!r} is outside the workspace", kind="blocked_path")
        return target

    # -- for the runner -----------------------------------------------------------------------------

    @classmethod
    def tool_names(cls) -> list[str]:
        return sorted(cls._specs)

    def tool_specs(self, offered: list[str] | None = None) -> list[dict[str, Any]]:
        names = self.tool_names() if offered is None else offered
        return [self._specs[n].openai() for n in names if n in self._specs]

    def note_unparsed_call(self) -> None:
        """A call the server refused to parse never reaches `call`; environments that number calls count it."""

    async def call(self, name: str, arguments: dict[str, Any] | None, offered: list[str] | None = None,
                   parse_error: str | None = None) -> ToolOutcome:
        """Run one tool call; model mistakes come back as a classified, model-visible error."""
        allowed = self.tool_names() if offered is None else offered
        if name not in allowed or name not in self._specs:
            return ToolOutcome(False, json.dumps({"error": f"unknown tool {name!r}; available: {', '.join(allowed)}"}), "unknown_tool")
        if arguments is None:
            return ToolOutcome(False, json.dumps({"error": parse_error or "arguments are not a JSON object"}), "malformed_args")
        spec = self._specs[name]
        try:
            args = spec.model.model_validate(arguments)
        except ValidationError as e:
            return ToolOutcome(False, json.dumps({"error": _format_validation(e)}), "malformed_args")
        try:
            value = getattr(self, name)(**{k: getattr(args, k) for k in spec.model.model_fields})
            if inspect.isawaitable(value):
                value = await value
        except ToolError as e:
            return ToolOutcome(False, json.dumps({"error": str(e)}), e.kind)
        except OSError as e:  # the filesystem refused what the model asked (a file used as a folder, ...)
            return ToolOutcome(False, json.dumps({"error": f"{e.strerror or type(e).__name__}: the path cannot be "
                                                           "used that way"}), "bad_path")
        except UnicodeError:  # text no UTF-8 file can hold (an unpaired surrogate)
            return ToolOutcome(False, json.dumps({"error": "the text contains characters no file can hold"}),
                               "malformed_args")
        return ToolOutcome(True, value if isinstance(value, str) else json.dumps(value))
