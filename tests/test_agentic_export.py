"""The agentic suite end to end through the CLI (a subprocess, real HTTP): `--suite agentic`, repeatable
`--pack`, the export contract and the per-pack summary metrics."""

import json

from agentic_helpers import AGENTIC, pack, solution_script
from brainbench.scoring.markdown import class_table, discipline_table
from brainbench.testing import ByConversation, Reply
from test_cli import bb

CONTRACT = [("scenario", str), ("pack", str), ("trial", int), ("model", str), ("passed", bool), ("clean", bool),
            ("failures", list), ("tool_calls", int), ("tool_errors", int), ("infra_events", int)]


def mostly_perfect(scenarios):
    """Perfect, except that it never closes kanban cards (it walks away after the work) and calls
    search_web once on every refusal scenario."""
    perfect = solution_script(scenarios)
    kanban_openings = {s.messages[-1]["content"] for s in scenarios if s.pack == "kanban"}
    refusal_openings = {s.messages[-1]["content"] for s in scenarios if s.pack == "refusal"}

    def script(messages):
        opening = next(m["content"] for m in messages if m["role"] == "user")
        reply = perfect(messages)
        if opening in kanban_openings and any(c["name"] in ("kanban_complete", "kanban_block") for c in reply.tool_calls):
            return Reply.text("All the work is done.")
        if opening in refusal_openings and not any(m["role"] == "tool" for m in messages):
            return Reply.call("search_web", {"query": opening})
        return reply

    return script


def test_suite_run_export_and_summary(fake, tmp_path):
    scenarios = [s for name in AGENTIC for s in pack(name).scenarios]
    srv = fake(ByConversation(mostly_perfect(scenarios)))
    run_dir = tmp_path / "run"
    proc = bb("run", "--endpoint", srv.base_url, "--model", "fake-model", "--suite", "agentic", "-c", "8",
              "--json", "-o", str(run_dir), timeout=600)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(bb("export", str(run_dir), "--format", "json").stdout)
    assert len(data["attempts"]) == len(scenarios)
    for a in data["attempts"]:
        for field, typ in CONTRACT:
            assert isinstance(a[field], typ), field
    by_pack = {}
    for a in data["attempts"]:
        by_pack.setdefault(a["pack"], []).append(a)
    for a in by_pack["kanban"]:
        # re-dispatched, the follow-up scenario creates its cards a second time: a wrong result on top
        extra = ["wrong_result"] if a["scenario"] == "k-handoff-followups" else []
        want = ["omitted_closeout"] * (2 if a["scenario"] == "k-two-cards" else 1) + extra
        assert not a["passed"] and sorted(a["failures"]) == sorted(want), a
    assert all(a["passed"] for p in ("shell", "home") for a in by_pack[p])
    assert all(not a["passed"] and a["failures"] == ["unneeded_call"] for a in by_pack["refusal"])
    s = data["summary"]["fake-model"]["packs"]
    assert s["kanban"]["omission"]["rate"] == 1.0 and s["kanban"]["first_dispatch_violation"]["rate"] == 1.0
    assert s["kanban"]["iceberg"]["error_line"] == 0
    assert s["kanban"]["iceberg"]["failed_without_error_line"] == len(by_pack["kanban"])  # grep finds nothing
    assert s["shell"]["pass"]["rate"] == 1.0 and s["shell"]["omission"]["n"] == 5  # the handshake stages
    assert s["refusal"]["errors_per_100_calls"]["unneeded_call"] == 100.0
    for p in AGENTIC:
        for key in ("pass", "clean", "passed_after_retry", "strict_pass", "omission", "recovery", "error_rate"):
            assert set(s[p][key]) == {"k", "n", "rate", "ci95"}, (p, key)
        assert "1" in s[p]["pass_hat_k"] and "iceberg" in s[p]
    md_cli = bb("score", str(run_dir), "--markdown").stdout
    n = len(by_pack["kanban"])
    assert f"| fake-model | kanban | {n} |" in md_cli and "| `omitted_closeout` | silent |" in md_cli
    md = discipline_table(data["summary"])
    assert f"| fake-model | kanban | {n} |" in md and "**all**" in md
    assert "`omitted_closeout` | silent |" in class_table(data["summary"])


def test_pack_option_is_repeatable(fake, tmp_path):
    scenarios = [s for name in ("refusal", "home") for s in pack(name).scenarios]
    srv = fake(ByConversation(solution_script(scenarios)))
    proc = bb("run", "--endpoint", srv.base_url, "--model", "fake-model", "--pack", "refusal", "--pack", "home",
              "-c", "8", "--json", "-o", str(tmp_path / "r"), timeout=600)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)["summary"]["fake-model"]
    assert set(summary["packs"]) == {"refusal", "home"} and summary["overall"]["pass"]["rate"] == 1.0
