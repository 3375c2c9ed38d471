"""An on-rails orchestrator: one `bash` tool with a tight allow-list, and a `read` tool confined to the workspace.

Only `uv run scripts/<name>.py [flags]` runs, for the scripts and flags the scenario publishes; their
outputs are simulated and deterministic (nothing is executed on the host). Every other command is
denied with a clear message and classified as `disallowed_command.<subclass>`, in this order (the first
that applies wins):

    heredoc        `<<` anywhere
    pipe_filter    a pipe into head/tail/grep/jq/sed/awk/wc/sort/... (any other pipe is other_shell)
    shell_chain    `&&`, `||`, `;` or a newline between commands
    stderr_redirect `2>`, `2>&1`, `&>`
    expansion      what bash would expand before running: `$VAR`, `${...}`, `$(...)` and backticks (also inside
                   double quotes), unquoted globs (`*`, `?`, `[...]`), `~`, brace lists `{a,b}`
    timeout_prefix `timeout N ...`
    python_inline  `python -c`, `uv run python -c`
    bare_binary    any command that is not `uv` (ls, cat, head, find, curl, python scripts/x.py, ...)
    script_not_allowed  `uv run` of a script that is not published (hallucinated or wrong path)
    unknown_flag   a flag the script does not publish (hallucinated flags)
    other_shell    everything else: unbalanced quotes, `>`, `&`, `uv pip`, ...

Quoted text never triggers a class: `--sql "a || b"` is one argument, not a chain; but bash still expands `$` and
backticks inside double quotes, so those are `expansion` (single quotes keep everything literal).

Scenarios may require the closing 3-call handshake of a ralf stage, in this order:
`update_attempt_outcome.py --outcome TEXT [--status success|failure|partial]` ->
`update_stage_status.py --status awaiting_eval` -> `ralf_spawn.py step_evaluator`.

State (scenario `state`):

    scripts:   {name: {description, flags: {--flag: "value"|"bool"}, required: [--flag], positional: [name],
                       responses: [{when: {--flag or positional: regex}, output: text, error: bool}],
                       default: text}}   (a name from STANDARD_SCRIPTS brings its description and flags)
    files:     {relative path: text}       (for `read`)
    handshake: true                        (publishes the three handshake scripts and requires them)
    stage: {id, status}; attempt: {id}
"""

from __future__ import annotations

import copy
import re
import shlex
from typing import Any

from ._agentic import AgenticEnv
from .base import ToolError, tool

FILTERS = {"head", "tail", "grep", "egrep", "fgrep", "rg", "jq", "sed", "awk", "wc", "sort", "uniq", "cut", "tr",
           "less", "more", "column", "xargs", "tee", "fold", "nl"}

STANDARD_SCRIPTS: dict[str, dict[str, Any]] = {
    "fetch_context": {
        "description": "Fetch the stored research context for a topic.",
        "flags": {"--topic": "value", "--no-attach": "bool", "--agent": "value"},
        "required": ["--topic"],
    },
    "db_query": {
        "description": "Run a read-only SQL query on the project database.",
        "flags": {"--sql": "value", "--timeout": "value"},
        "required": ["--sql"],
    },
    "embedding_search": {
        "description": "Semantic search over the indexed documents and datasheets (the only search there is).",
        "flags": {"--query": "value", "--top-k": "value"},
        "required": ["--query"],
    },
    "context_cache": {
        "description": "Inspect the context cache.",
        "flags": {"--stats": "bool", "--command": "value", "--key": "value"},
    },
    "inventory": {
        "description": "List the stock of a storage area.",
        "flags": {"--area": "value"},
        "required": ["--area"],
    },
}
"""Scripts a scenario can publish by name; its `scripts.<name>` entry adds responses (and may override)."""

HANDSHAKE_SCRIPTS: dict[str, dict[str, Any]] = {
    "update_attempt_outcome": {
        "description": "Record the outcome of this attempt (what was found or done). Handshake step 1 of 3.",
        "flags": {"--outcome": "value", "--status": "value"},
        "required": ["--outcome"],
        "choices": {"--status": ["success", "failure", "partial"]},
    },
    "update_stage_status": {
        "description": "Set the stage status; `--status awaiting_eval` hands the stage to evaluation. Handshake step 2 of 3.",
        "flags": {"--status": "value"},
        "required": ["--status"],
        "choices": {"--status": ["running", "awaiting_eval", "blocked"]},
    },
    "ralf_spawn": {
        "description": "Spawn the next agent of the loop, e.g. `ralf_spawn.py step_evaluator`. Handshake step 3 of 3.",
        "flags": {},
        "positional": ["role"],
        "required": ["role"],
        "choices": {"role": ["step_evaluator", "step_worker"]},
    },
}
HANDSHAKE_ORDER = ["update_attempt_outcome", "update_stage_status", "ralf_spawn"]


def handshake_complete(state: dict[str, Any]) -> bool:
    """The closing handshake is done in this (final) state: outcome recorded, awaiting_eval, evaluator spawned."""
    return bool((state.get("attempt") or {}).get("outcome")) \
        and (state.get("stage") or {}).get("status") == "awaiting_eval" and "step_evaluator" in (state.get("spawned") or [])


_DENY_TAIL = "Only `uv run scripts/<name>.py [flags]` runs here, one command per call, for the published scripts."


class Denied(ToolError):
    def __init__(self, sub: str, message: str):
        super().__init__(f"denied ({sub}): {message}. {_DENY_TAIL}", kind=f"disallowed_command.{sub}")
        self.sub = sub


def _mask_quotes(cmd: str) -> str:
    """The command with the inside of every quoted string replaced by `_` (operators inside quotes vanish)."""
    out, quote, i = [], None, 0
    while i < len(cmd):
        ch = cmd[i]
        if quote:
            if ch == "\\" and quote == '"' and i + 1 < len(cmd):
                out.append("__")
                i += 2
                continue
            if ch == quote:
                quote = None
                out.append(ch)
            else:
                out.append("_")
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch == "\\" and i + 1 < len(cmd):
            out.append("__")
            i += 2
            continue
        else:
            out.append(ch)
        i += 1
    if quote:
        raise Denied("other_shell", "unbalanced quotes")
    return "".join(out)


_DOLLAR = re.compile(r"\$[A-Za-z_{(0-9@*#?!$-]")
_BRACE = re.compile(r"\{[^{}\s]*(,|\.\.)[^{}\s]*\}")


def _expansion(cmd: str) -> str | None:
    """What bash would expand in `cmd` (a parameter, a substitution, a glob, `~`, a brace list), or None.

    Walks the quoting as bash does: nothing in single quotes expands; `$` and backticks still do in double quotes;
    a backslash keeps the next character literal outside single quotes.
    """
    quote, i, word_start = None, 0, True
    while i < len(cmd):
        ch = cmd[i]
        if quote == "'":
            quote = None if ch == "'" else quote
        elif ch == "\\":
            i += 2
            word_start = False
            continue
        elif ch == "`" or _DOLLAR.match(cmd, i):
            return "a backtick substitution" if ch == "`" else f"`{cmd[i:i + 12]}`"
        elif quote == '"':
            quote = None if ch == '"' else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "*?[":
            return f"the glob `{ch}`"
        elif ch == "~" and word_start:
            return "`~`"
        elif ch == "{" and (brace := _BRACE.match(cmd, i)):
            return f"the brace list `{brace.group(0)}`"
        word_start = ch.isspace() or (ch == "=" and quote is None)
        i += 1
    return None


def classify(cmd: str, scripts: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any], list[str]]:
    """Check one command against the allow-list: (script name, {flag: value}, positionals) or raise Denied."""
    if not cmd.strip():
        raise Denied("other_shell", "empty command")
    bare = _mask_quotes(cmd)
    if "<<" in bare:
        raise Denied("heredoc", "heredocs are not allowed; pass values as flags")
    pipe = re.search(r"(?<![|>])\|(?!\|)", bare)
    if pipe:
        target = bare[pipe.end():].split()
        word = target[0] if target else ""
        if word.split("/")[-1] in FILTERS:
            raise Denied("pipe_filter", f"piping into `{word}` is not allowed; each script already returns "
                                        "exactly the output the task needs, so read all of it")
        raise Denied("other_shell", "pipes are not allowed")
    if re.search(r"&&|\|\||;|\n", bare):
        raise Denied("shell_chain", "command chains (&&, ||, ;) are not allowed; make one call per command")
    if re.search(r"(^|\s)(2>|&>)", bare):
        raise Denied("stderr_redirect", "redirecting stderr is not allowed; warnings are part of the output")
    if re.search(r"(?<![<>&|])&(?![&>])", bare):
        raise Denied("other_shell", "background jobs (&) are not allowed")
    if re.search(r"[<>]", bare):
        raise Denied("other_shell", "redirections are not allowed")
    expanded = _expansion(cmd)
    if expanded:
        raise Denied("expansion", f"{expanded} would be expanded by the shell; write the literal value "
                                  "(in single quotes if it holds special characters)")
    try:
        tokens = shlex.split(cmd)
    except ValueError as e:
        raise Denied("other_shell", f"cannot parse the command ({e})") from None
    head = tokens[0]
    if head == "timeout":
        raise Denied("timeout_prefix", "the `timeout` prefix is not allowed; scripts that can run long publish "
                                       "their own flag for it")
    low = [t.lower() for t in tokens]
    pythons = ("python", "python3")
    if "-c" in low and (head in pythons or (low[:2] == ["uv", "run"] and len(low) > 2 and low[2] in pythons)):
        raise Denied("python_inline", "inline Python (-c) is not allowed")
    if head != "uv":
        if head.startswith(("/", "./", "scripts/", "~")):
            raise Denied("other_shell", f"`{head}` cannot be run directly; use `uv run scripts/<name>.py`")
        raise Denied("bare_binary", f"`{head}` is not allowed (there is no shell, no web access and no file "
                                    "browsing here)")
    if len(tokens) < 3 or tokens[1] != "run":
        raise Denied("other_shell", "only `uv run scripts/<name>.py` is allowed")
    if tokens[2].startswith("-") or tokens[2] in pythons:
        raise Denied("other_shell", "run the script directly: `uv run scripts/<name>.py [flags]`")
    m = re.fullmatch(r"(?:\./)?scripts/([A-Za-z0-9_\-]+)\.py", tokens[2])
    name = m.group(1) if m else None
    if name is None or name not in scripts:
        shown = tokens[2]
        raise Denied("script_not_allowed", f"`{shown}` is not an allowed script; allowed: "
                                           + ", ".join(f"scripts/{s}.py" for s in sorted(scripts)))
    spec = scripts[name]
    flags_spec: dict[str, str] = spec.get("flags") or {}
    flags: dict[str, Any] = {}
    positionals: list[str] = []
    rest = tokens[3:]
    i = 0
    while i < len(rest):
        tok = rest[i]
        if tok in ("--help", "-h"):
            flags["--help"] = True
            i += 1
            continue
        if tok.startswith("-") and len(tok) > 1:
            flag, eq, value = tok.partition("=")
            if flag not in flags_spec:
                known = ", ".join(sorted(flags_spec)) or "none"
                raise Denied("unknown_flag", f"scripts/{name}.py has no flag `{flag}` (its flags: {known})")
            if flags_spec[flag] == "bool":
                if eq:
                    raise ToolError(f"{flag} takes no value", kind="malformed_args")
                flags[flag] = True
            elif eq:
                flags[flag] = value
            elif i + 1 < len(rest) and not rest[i + 1].startswith("--"):
                flags[flag] = rest[i + 1]
                i += 1
            else:
                raise ToolError(f"scripts/{name}.py: {flag} needs a value", kind="malformed_args")
        else:
            positionals.append(tok)
        i += 1
    return name, flags, positionals


def usage(name: str, spec: dict[str, Any]) -> str:
    flags = spec.get("flags") or {}
    parts = [f"uv run scripts/{name}.py"]
    parts += [f"<{p}>" for p in spec.get("positional") or []]
    for f, kind in flags.items():
        item = f if kind == "bool" else f"{f} VALUE"
        parts.append(item if f in (spec.get("required") or []) else f"[{item}]")
    line = " ".join(parts)
    extra = "; ".join(f"{k}: one of {', '.join(v)}" for k, v in (spec.get("choices") or {}).items())
    return f"{line}  # {spec.get('description', '')}" + (f" ({extra})" if extra else "")


class ShellEnv(AgenticEnv):
    name = "shell"
    terminal_tools = ("bash",)
    narration_names = (*HANDSHAKE_ORDER, "step_evaluator")
    call_only_turns = True

    def setup(self, state: dict[str, Any]) -> None:
        scripts = {name: {**copy.deepcopy(STANDARD_SCRIPTS.get(name, {})), **(spec or {})}
                   for name, spec in (state.get("scripts") or {}).items()}
        if state.get("handshake"):
            scripts.update(copy.deepcopy(HANDSHAKE_SCRIPTS))
        self.scripts = scripts
        self.state = {
            "runs": [], "handshake": bool(state.get("handshake")),
            "stage": {"id": "stage-1", "status": "running", **(state.get("stage") or {})},
            "attempt": {"id": "attempt-1", "outcome": None, "status": None, **(state.get("attempt") or {})},
            "spawned": [],
        }
        self.write_workspace(state.get("files") or {})

    @classmethod
    def requires_closeout(cls, state: dict[str, Any]) -> bool:
        return bool(state.get("handshake"))

    def tool_specs(self, offered: list[str] | None = None) -> list[dict[str, Any]]:
        """The `bash` tool's description carries the allow-list: every published script with its flags."""
        specs = copy.deepcopy(super().tool_specs(offered))
        catalogue = "\n".join(usage(n, s) for n, s in sorted(self.scripts.items()))
        for s in specs:
            if s["function"]["name"] == "bash":
                s["function"]["description"] += "\nAllowed commands:\n" + catalogue
        return specs

    def handshake_done(self) -> bool:
        return handshake_complete(self.state)

    def open_obligation(self) -> str | None:
        if not self.state["handshake"] or self.handshake_done():
            return None
        return (f"stage {self.state['stage']['id']} is still {self.state['stage']['status']}: the closing handshake "
                "(update_attempt_outcome.py -> update_stage_status.py --status awaiting_eval -> "
                "ralf_spawn.py step_evaluator) is incomplete")

    # -- tools --------------------------------------------------------------------------------------

    @tool
    def bash(self, command: str) -> str:
        """Run one allow-listed command: `uv run scripts/<name>.py [flags]`. No pipes, chains or other binaries.

        Args:
            command: One command line from the allowed forms listed below, with your values filled in.
        """
        name, flags, positionals = classify(command, self.scripts)
        spec = self.scripts[name]
        if flags.get("--help"):
            return usage(name, spec)
        args = dict(flags)
        for pname, value in zip(spec.get("positional") or [], positionals):
            args[pname] = value
        if len(positionals) > len(spec.get("positional") or []):
            raise ToolError(f"scripts/{name}.py: unexpected argument {positionals[len(spec.get('positional') or [])]!r}",
                            kind="malformed_args")
        missing = [r for r in spec.get("required") or [] if r not in args]
        if missing:
            raise ToolError(f"scripts/{name}.py: missing required {', '.join(missing)}; usage: {usage(name, spec)}",
                            kind="malformed_args")
        for key, allowed in (spec.get("choices") or {}).items():
            if key in args and str(args[key]) not in allowed:
                raise ToolError(f"scripts/{name}.py: {key} must be one of {', '.join(allowed)}", kind="malformed_args")
        run = {"script": name, "args": args, "ok": True}
        self.state["runs"].append(run)
        if name in HANDSHAKE_SCRIPTS and self.state["handshake"]:
            out = self._handshake(name, args)
            if self.handshake_done():
                self.mark_closed()
            return out
        for resp in spec.get("responses") or []:
            if all(k in args and re.search(str(rx), str(args[k]), re.IGNORECASE) for k, rx in (resp.get("when") or {}).items()):
                if resp.get("error"):
                    run["ok"] = False
                    raise ToolError(resp["output"])
                return resp["output"]
        return spec.get("default", "(no output)")

    def _handshake(self, name: str, args: dict[str, Any]) -> str:
        if name == "update_attempt_outcome":
            self.state["attempt"].update(outcome=args["--outcome"], status=args.get("--status", "success"))
            return f"attempt {self.state['attempt']['id']}: outcome recorded"
        if name == "update_stage_status":
            self.state["stage"]["status"] = args["--status"]
            return f"stage {self.state['stage']['id']}: status {args['--status']}"
        self.state["spawned"].append(args["role"])
        return f"spawned {args['role']} for stage {self.state['stage']['id']}"

    @tool
    def read(self, path: str) -> str:
        """Read a text file in the workspace (paths outside the workspace are blocked).

        Args:
            path: Path relative to the workspace, e.g. "notes/brief.md".
        """
        p = self.confine(path)
        if not p.is_file():
            raise ToolError(f"no file {path!r} in the workspace")
        return p.read_text(encoding="utf-8", errors="replace")
