"""The agentic packs are valid, big enough, spread over difficulty, and every scenario is passable:
a perfect scripted brain (replaying each scenario's `meta.solution` over the real wire) passes them all."""

from collections import Counter

import pytest

from agentic_helpers import AGENTIC, pack as load, run_packs, solution_script
from brainbench.packs import SUITES, select
from brainbench.testing import ByConversation, Reply

MINIMUM = {"kanban": 15, "shell": 15, "home": 15, "refusal": 10}


def test_suite_and_sizes():
    assert SUITES["agentic"] == AGENTIC
    packs = select([], ["agentic"])
    assert [p.name for p in packs] == AGENTIC
    total = 0
    for p in packs:
        assert len(p.scenarios) >= MINIMUM[p.name], p.name
        levels = Counter(s.difficulty for s in p.scenarios)
        assert set(levels) == {"easy", "medium", "hard"}, (p.name, levels)
        for s in p.scenarios:
            assert s.env == p.name and s.checks and s.meta.get("solution"), s.key
        total += len(p.scenarios)
    assert total >= 300
    closeout = [s for s in packs[0].scenarios if s.family and "closeout-only" in s.tags]
    assert len(closeout) >= 100 and all(s.meta["solution"][0]["call"] == "read_file" for s in closeout)


def test_family_variants_are_stable_and_content_keyed():
    """Variant ids are family id + index, and the same file gives the same variants (results stay keyed)."""
    from brainbench.packs import BUILTIN_DIR, load_pack

    again = {s.id: s.content_hash() for s in load_pack(BUILTIN_DIR / "kanban").scenarios}
    first = {s.id: s.content_hash() for s in load("kanban").scenarios}
    assert again == first and "k-verify-000" in first and "k-verify-099" in first
    assert len({h for i, h in first.items() if i.startswith("k-verify-")}) == 100  # every variant its own content


@pytest.mark.parametrize("pack", AGENTIC)
async def test_perfect_brain_passes_every_scenario(fake, tmp_path, pack):
    p = load(pack)
    srv = fake(ByConversation(solution_script(p.scenarios)))
    _, rows = await run_packs(srv, tmp_path, [p], concurrency=8)
    bad = [(r["scenario"], r["failures"], r["error"]) for r in rows if not (r["passed"] and r["clean"]) or r["failures"]]
    assert not bad, bad
    assert all(r["strict_passed"] and r["tool_errors"] == 0 and r["infra_events"] == 0 for r in rows)
    if pack in ("kanban",):
        assert all(r["obligation"] for r in rows)


async def test_a_brain_that_only_talks_fails_every_task_scenario(fake, tmp_path):
    """The checks have teeth: "Done." without any call passes nothing that needs work."""
    packs = [load(n) for n in ("kanban", "shell", "home")]
    srv = fake(ByConversation(lambda messages: Reply.text("Done.")))
    _, rows = await run_packs(srv, tmp_path, packs, concurrency=8)
    assert rows and not any(r["passed"] for r in rows)
    for r in rows:
        if r["pack"] == "kanban" or r["obligation"]:
            assert r["failures"].count("omitted_closeout") == (2 if r["scenario"] == "k-two-cards" else 1), r
            assert r["first_dispatch_open"] and r["dispatches"] == 2  # nudged, then re-dispatched once
