"""Pure units of the agentic layer: the shell allow-list classifier, the environments' tools, the
discipline detectors and the metrics (no server)."""

import asyncio
import math

import pytest

from brainbench.envs import get_env
from brainbench.envs.base import ToolError
from brainbench.envs.shell import STANDARD_SCRIPTS, Denied, classify
from brainbench.scoring.metrics import bootstrap_mean_ci, iceberg, pass_hat_k, summarise, wilson
from brainbench.scoring.score import degenerate, narrates
from brainbench.core.taxonomy import DISALLOWED_SUBCLASSES, TAXONOMY, layer

SCRIPTS = {"fetch_context": STANDARD_SCRIPTS["fetch_context"], "db_query": STANDARD_SCRIPTS["db_query"]}


def kind_of(cmd: str) -> str | None:
    try:
        classify(cmd, SCRIPTS)
    except Denied as e:
        return e.sub
    return None


@pytest.mark.parametrize("cmd,sub", [
    # the seed's own examples (001: "ls scripts/ | grep -E ...", curl, --no-agent, youtube_fetcher.py, ...)
    ('ls scripts/ | grep -E "search|web"', "pipe_filter"),
    ("uv run scripts/db_query.py --sql 'select 1' | jq '.attempt.session_id'", "pipe_filter"),
    ("uv run scripts/fetch_context.py --topic x | tail -n 20", "pipe_filter"),
    ("uv run scripts/fetch_context.py --topic x | python3 -", "other_shell"),
    ("uv run scripts/fetch_context.py --topic x 2>&1", "stderr_redirect"),
    ("uv run scripts/fetch_context.py --topic x &>/dev/null", "stderr_redirect"),
    ("pkill -f agent || true", "shell_chain"),
    ("cd /srv/app && uv run scripts/fetch_context.py --topic x", "shell_chain"),
    ("uv run scripts/fetch_context.py --topic x; echo done", "shell_chain"),
    ('cat << REPORT_EOF | uv run scripts/db_query.py --sql "$(cat)"', "heredoc"),
    ("timeout 60 uv run scripts/fetch_context.py --topic x", "timeout_prefix"),
    ("ls", "bare_binary"),
    ("head -n 5 notes.md", "bare_binary"),
    ("find . -name '*.py'", "bare_binary"),
    ("curl -s 'https://api.example.com/search?q=a|b'", "bare_binary"),
    ("python scripts/fetch_context.py --topic x", "bare_binary"),
    ('uv run python -c "import json; print(1)"', "python_inline"),
    ('python3 -c "print(2)"', "python_inline"),
    ("uv run scripts/youtube_fetcher.py --query x", "script_not_allowed"),
    ("uv run fetch_context.py --topic x", "script_not_allowed"),
    ("uv run scripts/food_management.py", "script_not_allowed"),
    ("uv run scripts/fetch_context.py --topic x --no-agent", "unknown_flag"),
    ("uv run scripts/db_query.py --command search-videos", "unknown_flag"),
    ("uv run scripts/fetch_context.py -t x", "unknown_flag"),
    ('uv run scripts/fetch_context.py --topic "x', "other_shell"),
    ("uv run scripts/fetch_context.py --topic $(whoami)", "expansion"),
    # what bash expands even inside double quotes, and what it runs on a second line
    ('uv run scripts/fetch_context.py --topic "$(whoami)"', "expansion"),
    ('uv run scripts/fetch_context.py --topic "`id`"', "expansion"),
    ("uv run scripts/fetch_context.py --topic $HOME", "expansion"),
    ("uv run scripts/fetch_context.py --topic a${IFS}b", "expansion"),
    ("uv run scripts/fetch_context.py --topic solar*", "expansion"),
    ("uv run scripts/fetch_context.py --topic ~/notes", "expansion"),
    ("uv run scripts/fetch_context.py --topic {a,b}", "expansion"),
    ("uv run scripts/fetch_context.py --topic x\nuv run scripts/fetch_context.py --topic y", "shell_chain"),
    ("uv run scripts/fetch_context.py --topic '$HOME and `id` and *'", None),
    ('uv run scripts/fetch_context.py --topic "costs \\$5"', None),
    ("uv run scripts/fetch_context.py --topic x > out.txt", "other_shell"),
    ("uv run scripts/fetch_context.py --topic x &", "other_shell"),
    ("uv pip install requests", "other_shell"),
    ("./scripts/fetch_context.py --topic x", "other_shell"),
    ("", "other_shell"),
    # allowed: operators inside quotes are just text
    ('uv run scripts/db_query.py --sql "SELECT a || b FROM t; -- x | y > z"', None),
    ("uv run scripts/fetch_context.py --topic solar --no-attach --agent researcher", None),
    ("uv run ./scripts/fetch_context.py --topic=solar", None),
])
def test_allow_list_classification(cmd, sub):
    assert kind_of(cmd) == sub


def test_every_subclass_is_in_the_taxonomy():
    for sub in DISALLOWED_SUBCLASSES:
        assert TAXONOMY[f"disallowed_command.{sub}"].layer == "error_line"
    assert layer("disallowed_command.pipe_filter") == "error_line"
    assert layer("omitted_closeout") == "silent" and layer("tool_call_in_text") == "discipline"
    assert layer("some_plugin_check_failure") == "silent"


def test_flags_are_parsed_by_value():
    name, flags, pos = classify("uv run scripts/fetch_context.py --topic 'solar panels' --no-attach --agent=r", SCRIPTS)
    assert (name, flags, pos) == ("fetch_context", {"--topic": "solar panels", "--no-attach": True, "--agent": "r"}, [])
    with pytest.raises(ToolError) as e:
        classify("uv run scripts/db_query.py --sql", SCRIPTS)
    assert e.value.kind == "malformed_args"


def _call(env, name, **args):
    return asyncio.run(env.call(name, args))


def test_kanban_tools(tmp_path):
    env = get_env("kanban")({"cards": {"t1": {"status": "in_progress", "body": "do"}},
                             "files": {"a/b.md": "x"}}, tmp_path)
    assert _call(env, "list_files").ok and "a/b.md" in _call(env, "list_files").output
    out = _call(env, "kanban_complete", task_id="t1", summary="  ")
    assert out.output == '{"error": "provide at least one of: summary (preferred), result"}'
    assert out.error_kind == "malformed_args"
    assert _call(env, "kanban_block", task_id="t1").error_kind == "malformed_args"  # reason is required
    assert _call(env, "read_file", path="../escape").error_kind == "blocked_path"
    assert env.open_obligation() and "t1" in env.open_obligation()
    assert _call(env, "kanban_complete", result="42").ok  # task_id optional with one card in progress
    assert env.open_obligation() is None
    again = _call(env, "kanban_complete", task_id="t1", summary="again")
    assert again.error_kind == "tool_error" and "done, not in_progress" in again.output
    st = env.final_state()
    assert st["cards"]["t1"]["status"] == "done" and st["files"] == {"a/b.md": "x"} and st["_closed_at_call"] == 6


def test_shell_tool_description_carries_the_allow_list(tmp_path):
    env = get_env("shell")({"scripts": {"db_query": {}}, "handshake": True}, tmp_path)
    (bash,) = [s for s in env.tool_specs(["bash"])]
    desc = bash["function"]["description"]
    assert "uv run scripts/db_query.py --sql VALUE [--timeout VALUE]" in desc
    assert "ralf_spawn.py <role>" in desc and "step_evaluator" in desc
    assert "--help" not in desc
    assert "--sql VALUE" in _call(env, "bash", command="uv run scripts/db_query.py --help").output


def test_home_email_send_works_but_is_recorded(tmp_path):
    env = get_env("home")({}, tmp_path)
    assert _call(env, "draft_create", to="a@b.c", subject="s", body="b").ok
    assert _call(env, "email_send", draft_id="dr-1").ok
    assert env.final_state()["db"]["sent"][0]["to"] == "a@b.c"
    assert _call(env, "light_set", room="Living Room", on=False).ok
    assert env.final_state()["db"]["lights"]["living_room"] == {"on": False, "brightness": 0}
    assert _call(env, "light_set", room="garage", on=True).error_kind == "tool_error"
    assert _call(env, "calendar_add", title="x", date="2026-06-25", start="10:00", end="09:00").error_kind == "malformed_args"


def test_degenerate_and_narration_detectors():
    assert degenerate("\n".join(["Calling the tool now, please wait."] * 5))
    assert degenerate("ab" * 400)
    assert not degenerate("A normal answer about the weather in Paris, which is mild and rainy today.")
    names = ["kanban_complete", "kanban_block"]
    assert narrates("I will call kanban_complete now.", names)
    assert narrates("The card is now marked as done.", names)
    assert narrates("I've closed the task; it is complete.", names)
    assert not narrates("I wrote the summary to summary.md.", names)


def test_wilson_and_pass_hat_k():
    assert wilson(0, 0) == (0.0, 0.0)
    lo, hi = wilson(5, 10)
    assert 0.23 < lo < 0.24 and 0.76 < hi < 0.77
    per = {"a": [True, True, True], "b": [True, False, False], "c": [False, False, False]}
    assert pass_hat_k(per, 1) == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert pass_hat_k(per, 3) == pytest.approx(1 / 3)  # only "a" passes all three
    assert pass_hat_k(per, 2) == pytest.approx((1 + 0 + 0) / 3)
    ci = bootstrap_mean_ci([1.0, 0.0, 0.5])
    assert ci[0] <= 0.5 <= ci[1] and bootstrap_mean_ci([1.0, 0.0, 0.5]) == ci  # seeded: reproducible


def row(scenario, passed, failures=(), clean=None, **kw):
    base = {"pack": "p", "scenario": scenario, "passed": passed, "clean": passed if clean is None else clean,
            "failures": list(failures), "tool_calls": 2, "tool_errors": sum(1 for f in failures if layer(f) == "error_line")}
    return {**base, **kw}


def test_summary_metrics():
    rows = [
        row("a", True, obligation=True),
        row("a", True, clean=False, obligation=True, first_dispatch_open=True),
        row("a", False, ["omitted_closeout"], obligation=True, first_dispatch_open=True),
        row("b", True, ["disallowed_command.pipe_filter"], denied=True, recovered=True, in_text_calls=2),
        row("b", False, ["disallowed_command.bare_binary", "wrong_result"], denied=True),
        row("b", False, ["premature_closeout"]),
    ]
    s = summarise(rows)
    assert s["attempts"] == 6 and s["scenarios"] == 2
    assert s["pass"]["k"] == 3 and s["clean"]["k"] == 2 and s["passed_after_retry"]["k"] == 1
    assert s["omission"] == {"k": 1, "n": 3, "rate": 1 / 3, "ci95": s["omission"]["ci95"]}
    assert s["first_dispatch_violation"]["k"] == 2
    assert s["recovery"]["k"] == 1 and s["recovery"]["n"] == 2
    assert s["pass_hat_k"]["3"] == pytest.approx((math.comb(2, 3) + math.comb(1, 3)) / 2)
    assert s["flaky_scenarios"]["k"] == 2 and s["in_text_calls"] == 2
    ice = s["iceberg"]
    assert (ice["error_line"], ice["silent"]) == (2, 3)
    assert ice["failed_attempts"] == 3 and ice["failed_without_error_line"] == 2
    assert ice["silent_per_error_line"] == 1.5
    assert s["errors_per_100_calls"]["disallowed_command.pipe_filter"] == round(100 / 12, 2)
    assert iceberg([])["hidden_share"]["rate"] is None


def test_everyday_tool_names_are_not_narration():
    assert not narrates("I read the brief and will answer now.", ["read", "bash"])
    assert narrates("Next I run update_stage_status.", ["read", "bash", "update_stage_status"])


def test_bash_description_names_no_unpublished_script(tmp_path):
    """A tool description's example is copied verbatim by small models: it must never name a script the
    scenario does not publish (an example naming db_query.py produced 30 script_not_allowed in a real run)."""
    env = get_env("shell")({"scripts": {"fetch_context": {}}}, tmp_path)
    text = str(env.tool_specs(["bash", "read"]))
    assert "fetch_context.py" in text
    for other in ("db_query", "embedding_search", "context_cache", "inventory", "ralf_spawn"):
        assert other not in text
