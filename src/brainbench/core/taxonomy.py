"""The failure taxonomy: stable ids used in the store, the export and the reports.

Each id belongs to one layer of the iceberg:

- `error_line`: a tool returned an error, so an agent log has a line for it (what grep can count);
- `silent`: the task went wrong and no log line says so (omissions, premature close-outs, wrong results,
  unneeded or forbidden calls that the tool happily executed);
- `discipline`: how the model worked rather than whether it got there (text-channel calls, loops,
  empty replies, prose around calls, calls after the closing call, running out of turns).

Ids never change meaning; new ids may be added. `disallowed_command.<subclass>` ids share one entry.
Thresholds used by the detectors are constants here so the docs and the code cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

# A failing call identical (same tool, same arguments) to an earlier failing call is a `repeated_failure`;
# the harness warns the model at the REPEAT_WARN-th identical failure and refuses the call from the
# REPEAT_BLOCK-th on (hermes-agent: warns after 2, blocks after 5).

REPEAT_WARN = 2
"""The harness warns the model at this many identical failing calls (hermes-agent: after 2)."""
REPEAT_BLOCK = 5
"""... and refuses an identical failing call from this many on (hermes-agent: after 5)."""

LOOP_CALLS = 3
"""The same call (same tool, same arguments, whatever the outcome) made this many times is a `loop`."""
LOOP_LINE_REPEATS = 5
"""Degenerate text: one line of >= 8 non-space characters repeated this many times in one reply ..."""
LOOP_MIN_CHARS = 400
LOOP_ZLIB_RATIO = 0.12
"""... or a reply of >= LOOP_MIN_CHARS characters that zlib compresses below this ratio (normal prose: ~0.4-0.6)."""

DISALLOWED_SUBCLASSES = {
    "pipe_filter": "a pipe into head/tail/grep/jq/sed/awk/wc/sort/... to cut an allowed script's output",
    "stderr_redirect": "a stderr redirection (2>&1, 2>/dev/null, &>)",
    "shell_chain": "commands chained with &&, || or ;, or two commands on two lines",
    "heredoc": "a heredoc (<<EOF) feeding a command",
    "timeout_prefix": "a `timeout N ...` prefix",
    "bare_binary": "a command other than `uv` (ls, cat, head, find, curl, python scripts/x.py, ...)",
    "python_inline": "inline Python (`python -c`, `uv run python -c`)",
    "expansion": "something bash would expand before running it: `$VAR`, `${...}`, `$(...)` or backticks inside "
                 "double quotes, an unquoted glob (`*`, `?`, `[...]`), `~`, a brace list `{a,b}`",
    "script_not_allowed": "`uv run` of a script that is not published (hallucinated or wrong path)",
    "unknown_flag": "a flag the script does not publish (hallucinated flag)",
    "other_shell": "any other shell construct (quoting errors, redirections, background jobs, `uv pip`, ...)",
}


@dataclass(frozen=True)
class FailureClass:
    id: str
    layer: str
    definition: str


_ENTRIES = [
    ("omitted_closeout", "silent",
     "The attempt ended (after the turn-end nudge and every re-dispatch) with the task still open: the card "
     "in progress, or the closing handshake incomplete. The invisible failure: no tool ever saw a call."),
    ("premature_closeout", "silent",
     "The task was closed as done while the required work is missing or wrong (or it should have been blocked)."),
    ("wrong_result", "silent",
     "The task's product or final state is wrong (a check failed), without a premature close-out."),
    ("unneeded_call", "silent",
     "A tool was called where the request needed none (the refusal pack); the tool answered, so no error line."),
    ("policy_violation", "silent",
     "A mutation the policy forbids happened (an email sent, a protected device changed); the tool executed it."),
    ("narrated_action", "silent",
     "The action was narrated instead of called: a text-only reply that names a tool or claims the closing "
     "action ('marked the card as done') while the task was still open, or a reply that ended the dispatch "
     "announcing a call ('I will call the `calendar_update` function') or writing one in a syntax no parser "
     "takes (`<draft_create to=...>`, `light_set(room=...)`)."),
    ("malformed_args", "error_line",
     "Arguments missing a required field, of the wrong type, or not parseable as a JSON object."),
    ("unknown_tool", "error_line", "A call to a tool name that was not offered (hallucinated tool)."),
    ("blocked_path", "error_line", "A path outside the workspace (absolute paths, ..) was refused."),
    ("bad_path", "error_line",
     "A path the filesystem cannot take was refused: a NUL byte or an unpaired surrogate in it, a name over 255 "
     "bytes, more than 32 levels deep, or a file used as a folder (`notes.md/child`)."),
    ("tool_error", "error_line", "A tool refused a well-formed call for a domain reason (no such card, room, file)."),
    ("disallowed_command", "error_line", "A shell command outside the allow-list; see the subclasses."),
    ("repeated_failure", "error_line",
     f"A failing call identical to an earlier failing call (one per repeat; the harness warns at the "
     f"{REPEAT_WARN}nd and blocks from the {REPEAT_BLOCK}th identical failure)."),
    ("tool_call_in_text", "discipline",
     "A call written as text (JSON in content, a code fence, <tool_call> tags) instead of structured tool_calls; "
     "recovered and executed, and kept with its raw text."),
    ("mixed_turn", "discipline",
     "Prose alongside a tool call where the protocol wants calls only (the on-rails shell orchestrator)."),
    ("call_after_closeout", "discipline", "A tool call made after the closing call (the closing call is terminal)."),
    ("loop", "discipline",
     f"The same call made >= {LOOP_CALLS} times, or degenerate repetitive text in one reply."),
    ("empty_response", "discipline", "A reply with no text, no reasoning and no call."),
    ("turn_budget_exhausted", "discipline", "A dispatch used its whole turn budget without ending."),
    ("context_exhausted", "error_line",
     "The conversation outgrew the server's context window: the server refused the next request (HTTP 400, its "
     "words kept with the dispatch) and the dispatch ended there. A brain that loops or re-reads whole files runs "
     "out sooner; so does a config with a smaller context per slot."),
]

TAXONOMY: dict[str, FailureClass] = {i: FailureClass(i, layer, d) for i, layer, d in _ENTRIES}
for _sub, _d in DISALLOWED_SUBCLASSES.items():
    TAXONOMY[f"disallowed_command.{_sub}"] = FailureClass(f"disallowed_command.{_sub}", "error_line", _d)

DENIALS = ("unknown_tool", "blocked_path", "disallowed_command", "policy_violation")
"""Error kinds that mean 'the harness denied this call' (the base of the recovery rate)."""


def layer(failure_id: str) -> str:
    """The iceberg layer of an id; unknown ids (e.g. from a plugin check) count as silent task failures."""
    if failure_id in TAXONOMY:
        return TAXONOMY[failure_id].layer
    if failure_id.startswith("disallowed_command"):
        return "error_line"
    return "silent"


def is_denial(error_kind: str | None) -> bool:
    if not error_kind:
        return False
    return any(error_kind == d or error_kind.startswith(d + ".") for d in DENIALS)
