"""The validity gate (`brainbench packs --check`): no trivial policy passes a shipped scenario, and a user's
planted do-nothing scenario is caught and named, with its policy."""

import json
import textwrap

from test_cli import bb

from brainbench.packs import SUITES, Scenario, select
from brainbench.packs.validity import gate, minimal_args

SILENT = {"done", "echo", "text-call"}


async def test_every_shipped_scenario_fails_every_trivial_policy():
    packs = select(["smoke"], ["agentic", "quality"])
    report = await gate(packs, concurrency=24)
    assert report.scenarios == sum(len(p.scenarios) for p in packs) > 450
    assert {"nothing", "done", "every-tool", "echo", "text-call", "closeout:kanban_complete",
            "closeout:kanban_block", "closeout:bash"} <= set(report.policies)
    assert not report.failures, [(f.scenario, f.policy) for f in report.failures]
    # the only exemptions: silent-empty probes, where any non-empty reply is the right answer
    assert report.exempt and all(f.scenario.startswith("stress/empty-") and f.policy in SILENT and f.reason
                                 for f in report.exempt)


PLANTED = """\
name: mine
scenarios:
  - id: closes-at-once
    env: kanban
    state:
      cards: {t_1: {title: Check, status: in_progress, body: "Check that a.md exists, then close this card."}}
      files: {a.md: "hello\\n"}
    messages: [{role: user, content: "Card t_1: check that a.md exists, then close it."}]
    checks:
      - {type: card, card: t_1, expect: done, work: [{type: file, path: a.md, equals: "hello\\n"}]}
  - id: says-anything
    messages: [{role: user, content: "Say something."}]
    checks: [{type: nonempty_answer}]
    EXEMPT
  - id: real-task
    messages: [{role: user, content: "What is 6 times 7?"}]
    checks: [{type: content_regex, pattern: "\\\\b42\\\\b"}]
"""


def _plant(tmp_path, exempt=""):
    d = tmp_path / "mine"
    d.mkdir(exist_ok=True)
    (d / "pack.yaml").write_text(PLANTED.replace("EXEMPT", exempt))
    return d


def test_a_planted_do_nothing_scenario_is_caught_with_its_policy(tmp_path):
    d = _plant(tmp_path)
    proc = bb("packs", "--check", "--pack", "mine", "--pack-dir", str(d))
    assert proc.returncode == 1, proc.stderr
    assert "FAIL: mine/closes-at-once: passed by the trivial policy closeout:kanban_complete" in proc.stdout
    assert "FAIL: mine/says-anything: passed by the trivial policy done" in proc.stdout
    assert "real-task" not in proc.stdout and "Traceback" not in proc.stderr
    report = json.loads(bb("packs", "--check", "--pack", "mine", "--pack-dir", str(d), "--json").stdout)
    assert {(f["scenario"], f["policy"]) for f in report["failures"]} >= {("mine/closes-at-once", "closeout:kanban_complete"),
                                                                          ("mine/says-anything", "echo")}


def test_an_exemption_is_listed_with_its_reason_and_the_rest_still_fails(tmp_path):
    reason = "any reply is right here"
    d = _plant(tmp_path, "validity_exempt: {done: %s, echo: %s, text-call: %s}" % ((reason,) * 3))
    proc = bb("packs", "--check", "--pack", "mine", "--pack-dir", str(d))
    assert proc.returncode == 1
    assert f"exempt: mine/says-anything: policy done: {reason}" in proc.stdout
    assert "FAIL: mine/says-anything" not in proc.stdout and "FAIL: mine/closes-at-once" in proc.stdout


def test_a_clean_pack_passes_with_a_one_line_summary(tmp_path):
    d = tmp_path / "ok"
    d.mkdir()
    (d / "pack.yaml").write_text(textwrap.dedent("""\
        name: ok
        scenarios:
          - id: real-task
            messages: [{role: user, content: "What is 6 times 7?"}]
            checks: [{type: content_regex, pattern: "\\\\b42\\\\b"}]
        """))
    proc = bb("packs", "--check", "--pack", "ok", "--pack-dir", str(d))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines() == ["validity gate: 1 scenarios x 5 policies, none passed by one (0 exempt)"]


def test_an_exemption_changes_no_content_hash():
    s = Scenario(id="a", messages=[{"role": "user", "content": "hi"}])
    assert s.model_copy(update={"validity_exempt": {"done": "why"}}).content_hash() == s.content_hash()


def test_minimal_args_fill_required_and_ids():
    fn = {"name": "close", "parameters": {"type": "object", "required": ["task_id", "n", "tags"], "properties": {
        "task_id": {"type": "string"}, "n": {"type": "integer", "minimum": 1}, "tags": {"type": "array"},
        "summary": {"anyOf": [{"type": "string"}, {"type": "null"}]}, "mode": {"enum": ["a", "b"]}}}}
    assert minimal_args(fn, "t_1") == {"task_id": "t_1", "n": 1, "tags": []}
    assert minimal_args(fn, "t_1", strings=True) == {"task_id": "t_1", "n": 1, "tags": [], "summary": "Done."}
    assert SUITES["quality"]
