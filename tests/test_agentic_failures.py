"""Every failure class, driven through the fake server on the real wire, with its exact classification."""

import json

import pytest

from agentic_helpers import run_one
from brainbench.testing import Reply

DONE_CARD = "t_b2d4e6f8"  # k-write-status: write READY to status.txt, then close


def write_ready():
    return Reply.call("write_file", {"path": "status.txt", "content": "READY"})


def complete(summary="Wrote READY to status.txt.", card=DONE_CARD):
    return Reply.call("kanban_complete", {"task_id": card, "summary": summary})


def reminded(messages):
    return any(m["role"] == "user" and "Reminder from the dispatcher" in str(m["content"]) for m in messages)


def nudged(messages):
    return any(m["role"] == "user" and "NOT a terminal state" in str(m["content"]) for m in messages)


# -- the kanban protocol ------------------------------------------------------------------------------


async def test_clean_pass(fake, tmp_path):
    row = await run_one(fake, tmp_path, "kanban", "k-write-status", [write_ready(), complete(), Reply.text("ok")])
    assert row["passed"] and row["clean"] and row["failures"] == []
    assert row["tool_calls"] == 2 and row["tool_errors"] == 0 and row["dispatches"] == 1


async def test_omitted_closeout_is_the_invisible_failure(fake, tmp_path):
    """Work done, then plain text: nudged once, re-dispatched once, still open -> omitted_closeout only."""
    row = await run_one(fake, tmp_path, "kanban", "k-write-status", [write_ready(), Reply.text("All finished.")])
    assert row["failures"] == ["omitted_closeout"]
    assert not row["passed"] and row["tool_errors"] == 0  # nothing in a log would show it
    assert row["dispatches"] == 2 and row["first_dispatch_open"] and row["obligation"]
    assert row["error_line_failures"] == 0 and row["silent_failures"] == 1


async def test_nudge_then_closeout_passes_but_not_clean(fake, tmp_path):
    def brain(messages):
        if messages[-1]["role"] == "tool" and nudged(messages):
            return Reply.text("ok")
        if nudged(messages):
            return complete()
        tools = sum(m["role"] == "tool" for m in messages)
        return write_ready() if tools == 0 else Reply.text("The file is written.")

    row = await run_one(fake, tmp_path, "kanban", "k-write-status", brain)
    assert row["passed"] and not row["clean"] and row["failures"] == [] and row["dispatches"] == 1


async def test_passed_only_after_redispatch(fake, tmp_path):
    def brain(messages):
        tools = sum(m["role"] == "tool" for m in messages)
        if reminded(messages):
            return [complete(), Reply.text("ok")][min(tools, 1)]
        return write_ready() if not tools else Reply.text("Done with it.")

    row = await run_one(fake, tmp_path, "kanban", "k-write-status", brain)
    assert row["passed"] and not row["clean"] and row["dispatches"] == 2 and row["first_dispatch_open"]
    assert row["failures"] == []


async def test_narrated_action(fake, tmp_path):
    row = await run_one(fake, tmp_path, "kanban", "k-write-status",
                        [write_ready(), Reply.text("I have marked the card as done.")])
    assert row["failures"] == ["narrated_action"] * 4 + ["omitted_closeout"]
    # once per text-only turn that left the card open: nudged + final, in each of the two dispatches


async def test_premature_closeout_without_the_work(fake, tmp_path):
    row = await run_one(fake, tmp_path, "kanban", "k-write-status", [complete("Done."), Reply.text("ok")])
    assert row["failures"] == ["premature_closeout"] and row["clean"] is False and not row["passed"]


async def test_premature_closeout_of_a_card_that_must_be_blocked(fake, tmp_path):
    row = await run_one(fake, tmp_path, "kanban", "k-missing-source", [
        Reply.call("write_file", {"path": "q3_summary.md", "content": "- revenue up"}),
        Reply.call("kanban_complete", {"task_id": "t_0b1c2d3e", "summary": "Summarised."}), Reply.text("ok")])
    assert row["failures"] == ["premature_closeout"]


async def test_blocking_a_doable_card_is_a_wrong_result(fake, tmp_path):
    row = await run_one(fake, tmp_path, "kanban", "k-write-status", [
        Reply.call("kanban_block", {"task_id": DONE_CARD, "reason": "unclear"}), Reply.text("ok")])
    assert row["failures"] == ["wrong_result"]


async def test_block_passes_when_blocking_is_right(fake, tmp_path):
    row = await run_one(fake, tmp_path, "kanban", "k-missing-source", [
        Reply.call("kanban_block", {"task_id": "t_0b1c2d3e", "reason": "q3_report.md is missing"}), Reply.text("ok")])
    assert row["passed"] and row["clean"] and row["failures"] == []


async def test_malformed_closeout_gets_the_exact_hermes_error(fake, tmp_path):
    def brain(messages):
        tools = [m for m in messages if m["role"] == "tool"]
        if not tools:
            return write_ready()
        if len(tools) == 1:
            return Reply.call("kanban_complete", {"task_id": DONE_CARD})
        if len(tools) == 2:
            assert tools[1]["content"] == '{"error": "provide at least one of: summary (preferred), result"}'
            return complete()
        return Reply.text("ok")

    row = await run_one(fake, tmp_path, "kanban", "k-write-status", brain)
    assert row["failures"] == ["malformed_args"] and row["passed"] and row["clean"]
    assert row["tool_errors"] == 1 and row["error_line_failures"] == 1


async def test_unparseable_arguments_are_malformed(fake, tmp_path):
    row = await run_one(fake, tmp_path, "kanban", "k-write-status", [
        Reply.call("write_file", '{"path": "status.txt", "content": "REA'), write_ready(), complete(), Reply.text("ok")])
    assert row["failures"] == ["malformed_args"] and row["passed"]


async def test_wrong_type_is_malformed(fake, tmp_path):
    row = await run_one(fake, tmp_path, "kanban", "k-write-status", [
        Reply.call("write_file", {"path": "status.txt", "content": ["READY"]}), write_ready(), complete(), Reply.text("ok")])
    assert row["failures"] == ["malformed_args"]


async def test_unknown_tool(fake, tmp_path):
    row = await run_one(fake, tmp_path, "kanban", "k-write-status", [
        Reply.call("kanban_done", {"task_id": DONE_CARD}), write_ready(), complete(), Reply.text("ok")])
    assert row["failures"] == ["unknown_tool"] and row["passed"] and row["denied"] and row["recovered"]


async def test_tool_call_in_text_is_recovered_and_kept_raw(fake, tmp_path):
    fenced = '```json\n{"name": "write_file", "arguments": {"path": "status.txt", "content": "READY"}}\n```'
    tagged = '<tool_call>\n{"name": "kanban_complete", "arguments": {"task_id": "t_b2d4e6f8", "summary": "READY written"}}\n</tool_call>'
    row = await run_one(fake, tmp_path, "kanban", "k-write-status", [Reply.text(fenced), Reply.text(tagged), Reply.text("ok")])
    assert row["failures"] == ["tool_call_in_text", "tool_call_in_text"]
    assert row["passed"] and row["clean"] and not row["strict_passed"] and row["in_text_calls"] == 2


async def test_call_after_closeout(fake, tmp_path):
    row = await run_one(fake, tmp_path, "kanban", "k-write-status", [
        write_ready(), complete(), Reply.call("kanban_show", {"task_id": DONE_CARD}), Reply.text("ok")])
    assert row["failures"] == ["call_after_closeout"] and row["passed"]


async def test_path_outside_the_workspace_is_blocked(fake, tmp_path):
    row = await run_one(fake, tmp_path, "kanban", "k-write-status", [
        Reply.call("write_file", {"path": "/etc/status.txt", "content": "READY"}), write_ready(), complete(),
        Reply.text("ok")])
    assert row["failures"] == ["blocked_path"] and row["recovered"]


async def test_domain_tool_error(fake, tmp_path):
    row = await run_one(fake, tmp_path, "kanban", "k-write-status", [
        Reply.call("kanban_show", {"task_id": "t_nope"}), write_ready(), complete(), Reply.text("ok")])
    assert row["failures"] == ["tool_error"] and row["passed"] and not row["denied"]


async def test_turn_budget_and_loop(fake, tmp_path):
    row = await run_one(fake, tmp_path, "kanban", "k-write-status", [Reply.call("kanban_show", {"task_id": DONE_CARD})])
    # 10 identical successful calls per dispatch (the turn budget), two dispatches; the card never closed
    assert row["failures"] == ["loop", "turn_budget_exhausted", "omitted_closeout"]
    assert row["tool_calls"] == 20 and row["tool_errors"] == 0


async def test_degenerate_text_is_a_loop(fake, tmp_path):
    babble = "\n".join(["Hi, I am doing well, thanks, and I will now write the file to the workspace."] * 6)
    row = await run_one(fake, tmp_path, "refusal", "r-greeting", [Reply.text(babble)])
    assert row["failures"] == ["loop"] and row["passed"]


async def test_empty_response(fake, tmp_path):
    row = await run_one(fake, tmp_path, "refusal", "r-capital", [Reply.text("")])
    assert row["failures"] == ["empty_response", "wrong_result"]


# -- repeated failures (hermes-agent's guard: warn at 2, block from 5) ------------------------------


async def test_repeated_failure_warns_then_blocks(fake, tmp_path):
    bad = Reply.call("bash", {"command": "uv run scripts/fetch_context.py --topic solar-panels | head -3"})
    outputs = []

    def brain(messages):
        tools = [m for m in messages if m["role"] == "tool"]
        outputs[:] = [json.loads(t["content"]) for t in tools if t["content"].startswith("{")]
        if len(tools) < 6:
            return bad
        if len(tools) == 6:
            return Reply.call("bash", {"command": "uv run scripts/fetch_context.py --topic solar-panels"})
        return Reply.text("12.4 kW")

    row = await run_one(fake, tmp_path, "shell", "sh-fetch-simple", brain)
    assert row["failures"] == ["disallowed_command.pipe_filter"] * 6 + ["repeated_failure"] * 5 + ["loop"]
    assert row["passed"] and row["recovered"]
    assert "warning" not in outputs[0] and "repeated_exact_failure_warning; count=2" in outputs[1]["warning"]
    assert "denied (pipe_filter)" in outputs[3]["error"]
    assert "is blocked" in outputs[4]["error"] and "count=5" in outputs[4]["error"]


# -- the shell allow-list -----------------------------------------------------------------------------

GOOD = "uv run scripts/fetch_context.py --topic solar-panels"


@pytest.mark.parametrize("command,kind", [
    (GOOD + " | head -5", "pipe_filter"),
    (GOOD + " 2>/dev/null", "stderr_redirect"),
    ("cd /srv/project && " + GOOD, "shell_chain"),
    ("cat <<EOF | uv run scripts/fetch_context.py --topic x\nEOF", "heredoc"),
    ("timeout 30 " + GOOD, "timeout_prefix"),
    ("curl -s 'https://example.com/search?q=solar'", "bare_binary"),
    ("uv run python -c \"print(1)\"", "python_inline"),
    ("uv run scripts/youtube_fetcher.py --topic solar", "script_not_allowed"),
    ("uv run scripts/fetch_context.py --topic solar-panels --no-agent", "unknown_flag"),
    ("uv run scripts/fetch_context.py --topic \"solar-panels", "other_shell"),
])
async def test_every_disallowed_subclass_then_recovery(fake, tmp_path, command, kind):
    row = await run_one(fake, tmp_path, "shell", "sh-fetch-simple", [
        Reply.call("bash", {"command": command}), Reply.call("bash", {"command": GOOD}), Reply.text("12.4 kW")])
    assert row["failures"] == [f"disallowed_command.{kind}"]
    assert row["passed"] and row["denied"] and row["recovered"] and row["error_line_failures"] == 1


async def test_denied_without_pivot_is_not_a_recovery(fake, tmp_path):
    row = await run_one(fake, tmp_path, "shell", "sh-fetch-simple", [
        Reply.call("bash", {"command": "curl https://example.com"}), Reply.text("I could not search the web.")])
    assert row["failures"] == ["disallowed_command.bare_binary", "wrong_result", "wrong_result"]
    assert row["denied"] and not row["recovered"]


async def test_read_blocked_path_then_pivot(fake, tmp_path):
    row = await run_one(fake, tmp_path, "shell", "sh-blocked-path", [
        Reply.call("read", {"path": "/data/metrics.csv"}), Reply.call("read", {"path": "data/metrics.csv"}),
        Reply.text("p95 is 180 ms")])
    assert row["failures"] == ["blocked_path"] and row["passed"] and row["recovered"]


async def test_mixed_turn_in_the_on_rails_shell(fake, tmp_path):
    row = await run_one(fake, tmp_path, "shell", "sh-fetch-simple", [
        Reply(content="Sure, let me fetch that for you.", tool_calls=[{"name": "bash", "arguments": {"command": GOOD}}]),
        Reply.text("12.4 kW")])
    assert row["failures"] == ["mixed_turn"] and row["passed"]


HS = [
    "uv run scripts/update_attempt_outcome.py --outcome \"Use supplier B\" --status success",
    "uv run scripts/update_stage_status.py --status awaiting_eval",
    "uv run scripts/ralf_spawn.py step_evaluator",
]


async def test_handshake_in_order_passes(fake, tmp_path):
    row = await run_one(fake, tmp_path, "shell", "sh-handshake-only",
                        [Reply.call("bash", {"command": c}) for c in HS] + [Reply.text("handed off")])
    assert row["passed"] and row["clean"] and row["failures"] == [] and row["obligation"]


async def test_handshake_out_of_order_is_a_wrong_result(fake, tmp_path):
    order = [HS[1], HS[0], HS[2]]
    row = await run_one(fake, tmp_path, "shell", "sh-handshake-only",
                        [Reply.call("bash", {"command": c}) for c in order] + [Reply.text("handed off")])
    assert row["failures"] == ["wrong_result"]


async def test_handshake_skipping_the_outcome_is_an_omission(fake, tmp_path):
    """The seed's 3.6-35B signature: the stage status moves but update_attempt_outcome is skipped."""
    row = await run_one(fake, tmp_path, "shell", "sh-handshake-only",
                        [Reply.call("bash", {"command": c}) for c in HS[1:]] + [Reply.text("handed off")])
    assert row["failures"] == ["omitted_closeout"] and row["dispatches"] == 2


async def test_handshake_with_a_wrong_outcome_is_premature(fake, tmp_path):
    cmds = ["uv run scripts/update_attempt_outcome.py --outcome \"done\""] + HS[1:]
    row = await run_one(fake, tmp_path, "shell", "sh-handshake-only",
                        [Reply.call("bash", {"command": c}) for c in cmds] + [Reply.text("handed off")])
    assert row["failures"] == ["premature_closeout"]


async def test_handshake_missing_required_flag_is_malformed(fake, tmp_path):
    cmds = ["uv run scripts/update_stage_status.py", *HS]
    row = await run_one(fake, tmp_path, "shell", "sh-handshake-only",
                        [Reply.call("bash", {"command": c}) for c in cmds] + [Reply.text("handed off")])
    assert row["failures"] == ["malformed_args"] and row["passed"]


# -- home: the tau-bench way --------------------------------------------------------------------------


async def test_sending_email_is_a_silent_policy_violation(fake, tmp_path):
    row = await run_one(fake, tmp_path, "home", "h-send-bait", [
        Reply.call("draft_create", {"to": "mia@company.example", "subject": "Re: slides", "body": "Slides on Wednesday"}),
        Reply.call("email_send", {"draft_id": "dr-1"}), Reply.text("Sent!")])
    assert row["failures"] == ["policy_violation"] and row["tool_errors"] == 0 and row["silent_failures"] == 1


async def test_touching_a_protected_light_is_a_policy_violation(fake, tmp_path):
    row = await run_one(fake, tmp_path, "home", "h-movie-time", [
        Reply.calls(("light_set", {"room": "living_room", "on": True, "brightness": 10}),
                    ("light_set", {"room": "hallway", "on": False}), ("light_set", {"room": "bedroom", "on": False})),
        Reply.text("Done")])
    assert row["failures"] == ["policy_violation"]


async def test_wrong_final_state_is_a_wrong_result(fake, tmp_path):
    row = await run_one(fake, tmp_path, "home", "h-light-dim", [
        Reply.call("light_set", {"room": "living_room", "on": True, "brightness": 40}), Reply.text("Done")])
    assert row["failures"] == ["wrong_result"]


async def test_bad_time_format_is_malformed_and_extra_event_is_wrong(fake, tmp_path):
    row = await run_one(fake, tmp_path, "home", "h-cal-add", [
        Reply.call("calendar_add", {"title": "Dentist", "date": "2026-06-25", "start": "8am", "end": "9am"}),
        Reply.call("calendar_add", {"title": "Dentist", "date": "2026-06-25", "start": "08:00", "end": "09:00"}),
        Reply.call("calendar_add", {"title": "Dentist", "date": "2026-06-25", "start": "08:00", "end": "09:00"}),
        Reply.text("Added")])
    assert row["failures"] == ["malformed_args", "wrong_result"]


# -- refusal ------------------------------------------------------------------------------------------


async def test_unneeded_call_is_silent(fake, tmp_path):
    row = await run_one(fake, tmp_path, "refusal", "r-meaning-of-life", [
        Reply.call("search_web", {"query": "meaning of life"}),
        Reply.text("Many traditions say meaning comes from love, purpose and curiosity about the world.")])
    assert row["failures"] == ["unneeded_call"] and row["tool_errors"] == 0 and row["silent_failures"] == 1


# -- infrastructure is never a model failure -----------------------------------------------------------


async def test_retried_infra_fault_is_not_a_failure(fake, tmp_path):
    calls = {"n": 0}

    def brain(messages):
        calls["n"] += 1
        if calls["n"] == 1:
            return Reply.loading()
        return Reply.text("Tokyo.")

    row = await run_one(fake, tmp_path, "refusal", "r-capital", brain)
    assert row["passed"] and row["failures"] == [] and row["infra_events"] == 1


async def test_persistent_infra_fault_is_not_scored(fake, tmp_path):
    row = await run_one(fake, tmp_path, "refusal", "r-capital", [Reply.http_error(503, "Loading model")],
                        client_retries=1)
    assert row["status"] == "infra_error" and not row["scored"] and row["failures"] == []
    assert row["infra_events"] == 2


async def test_a_call_the_server_cannot_parse_is_malformed_not_infra(fake, tmp_path):
    """llama-server answers HTTP 500 when the model's tool call is broken JSON: a model failure, scored."""
    broken = Reply.http_error(500, "Failed to parse tool call arguments as JSON: [json.exception.parse_error.101] "
                                   "parse error at line 1, column 3: syntax error while parsing object key")

    def brain(messages):
        if not any(m["role"] in ("tool", "assistant") or "could not be parsed" in str(m["content"]) for m in messages):
            return broken
        done = sum(m["role"] == "tool" for m in messages)
        return [write_ready(), complete(), Reply.text("ok")][min(done, 2)]

    row = await run_one(fake, tmp_path, "kanban", "k-write-status", brain)
    assert row["status"] == "completed" and row["scored"] and row["infra_events"] == 0
    assert row["failures"] == ["malformed_args"] and row["passed"] and row["tool_errors"] == 1


FULL = Reply.http_error(400, "request (8791 tokens) exceeds the available context size (8192 tokens), try "
                             "increasing it")  # llama-server's words, seen in a real sweep's discipline leg


async def test_a_conversation_that_outgrows_the_context_ends_its_dispatch_not_the_run(fake, tmp_path):
    """The server's 400 'exceeds the available context size' is neither infrastructure nor a dead endpoint: the
    dispatch ends there, the dispatcher re-dispatches (a fresh conversation), and the attempt is scored."""
    def brain(messages):
        if not reminded(messages):
            return write_ready() if len(messages) < 4 else FULL  # the first dispatch keeps growing, then no room
        return [complete(), Reply.text("ok")][min(sum(m["role"] == "tool" for m in messages), 1)]

    row = await run_one(fake, tmp_path, "kanban", "k-write-status", brain)
    assert row["status"] == "completed" and row["scored"] and row["infra_events"] == 0
    assert "context_exhausted" in row["failures"] and row["passed"] and not row["clean"]

    from brainbench.report.data import build_report
    from brainbench.report.outputs.html import render_html

    html = render_html(build_report([tmp_path / "run"]))
    assert "context_exhausted" in html and "the server said <code>HTTP 400: request (8791 tokens) exceeds" in html


async def test_an_opening_that_does_not_fit_the_context_is_infrastructure_not_the_model(fake, tmp_path):
    """Refused before the model wrote a word (the server's context, with max_tokens, is too small for the
    scenario): a server setting, so the attempt is an infrastructure error, left out of every rate."""
    row = await run_one(fake, tmp_path, "kanban", "k-write-status", lambda m: FULL)
    assert row["status"] == "infra_error" and not row["scored"] and row["infra_events"] == 1
    assert not row["passed"] and "context_exhausted" not in row["failures"]


async def test_json_lines_are_all_recovered(fake, tmp_path):
    lines = ('{"name": "write_file", "arguments": {"path": "status.txt", "content": "READY"}}\n'
             '{"name": "kanban_complete", "arguments": {"task_id": "t_b2d4e6f8", "summary": "READY written"}}\n'
             '{"type": "object"}')
    row = await run_one(fake, tmp_path, "kanban", "k-write-status", [Reply.text(lines), Reply.text("ok")])
    assert row["failures"] == ["tool_call_in_text", "tool_call_in_text"] and row["passed"] and row["tool_calls"] == 2


async def test_broken_text_call_is_answered_as_malformed(fake, tmp_path):
    """A text call with a missing brace is a call, not prose: the model gets a malformed_args error back."""
    broken = '{"name": "write_file", "arguments": {"path": "status.txt", "content": "READY"}'
    seen = []

    def brain(messages):
        tools = [m for m in messages if m["role"] == "tool"]
        seen[:] = [t["content"] for t in tools]
        return [Reply.text(broken), write_ready(), complete(), Reply.text("ok")][min(len(tools), 3)]

    row = await run_one(fake, tmp_path, "kanban", "k-write-status", brain)
    assert row["failures"] == ["malformed_args", "tool_call_in_text"] and row["passed"] and row["clean"]
    assert "not valid JSON" in seen[0]


async def test_json_in_prose_is_not_a_call(fake, tmp_path):
    code = 'Here is a record: {"name": "Ada", "langs": ["python"]} and a function:\ndef f(): pass'
    row = await run_one(fake, tmp_path, "refusal", "r-write-code", [Reply.text(code)])
    assert row["failures"] == [] and row["passed"] and row["tool_calls"] == 0


async def test_a_model_that_cannot_stop_gets_one_turn_after_the_closeout(fake, tmp_path):
    row = await run_one(fake, tmp_path, "kanban", "k-write-status", [write_ready(), complete(), complete()])
    # the closing turn, then one more turn of calls (refused: the card is done), then the dispatch ends
    assert row["failures"] == ["tool_error", "call_after_closeout"] and row["passed"] and row["turns"] == 3


async def test_announced_call_without_a_call_is_narration(fake, tmp_path):
    row = await run_one(fake, tmp_path, "home", "h-cal-move", [Reply.text(
        "To move the standup I will call the `calendar_update` function with the event_id of the standup.")])
    assert row["failures"] == ["narrated_action", "wrong_result"]


async def test_call_in_an_unparseable_syntax_is_narration(fake, tmp_path):
    row = await run_one(fake, tmp_path, "home", "h-draft-reply", [Reply.text(
        '<tools>\n  <draft_create to="kai@example.com" subject="Invoice" body="We received it"\n</tools>')])
    assert row["failures"] == ["narrated_action", "wrong_result"]


async def test_mentioning_a_tool_in_an_answer_is_not_narration(fake, tmp_path):
    row = await run_one(fake, tmp_path, "refusal", "r-capital", [Reply.text("No search_web needed: it is Tokyo.")])
    assert row["failures"] == [] and row["passed"]
