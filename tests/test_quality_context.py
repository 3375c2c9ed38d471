"""Long-context cases: deterministic haystacks, fitted to the context the server reports."""

from __future__ import annotations

from pathlib import Path

from brainbench.packs import Pack, Scenario, discover, load_pack
from brainbench.packs.haystack import LENGTHS, DEPTHS, fit_packs, fits, needle_case, needle_scenarios, server_context


def test_needles_are_deterministic_and_findable():
    a, b = needle_case(2000, 0.5), needle_case(2000, 0.5)
    assert a == b
    text = a["messages"][0]["content"]
    assert a["meta"]["needle"] in text and "east vault" in text and "west gate" in text
    pos = text.index(a["meta"]["needle"]) / len(text)
    assert 0.4 < pos < 0.6
    assert needle_case(2000, 0.1)["meta"]["needle"] != a["meta"]["needle"]
    assert 1800 < a["meta"]["context_tokens"] < 2300


def test_pack_generator_is_loaded():
    ctx = discover()["context"]
    ids = {s.id for s in ctx.scenarios}
    assert len(ctx.scenarios) == len(LENGTHS) * len(DEPTHS) + len([i for i in ids if not i.startswith("needle-")])
    assert sum(1 for i in ids if not i.startswith("needle-")) >= 10
    assert load_pack(Path(ctx.path)).scenarios[0].content_hash() == ctx.scenarios[0].content_hash()


def test_fits_and_fit_packs(monkeypatch):
    cases = [Scenario.model_validate({**c, "pack": "context"}) for c in needle_scenarios()]
    assert fits(cases[0], 8192) and not fits(cases[-1], 8192) and fits(cases[-1], 200_000)
    monkeypatch.setenv("BRAINBENCH_MAX_CONTEXT", "8192")
    assert server_context("http://127.0.0.1:9/v1") == 8192
    said = []
    out = fit_packs([Pack(name="context", scenarios=cases)], "http://127.0.0.1:9/v1", say=said.append)
    kept = out[0].scenarios
    assert 0 < len(kept) < len(cases) and all(s.meta["context_tokens"] < 7500 for s in kept)
    assert said and "skipped" in said[0]


def test_server_context_from_fake_server(fake, monkeypatch):
    from brainbench.testing import Reply, ScriptedBrain

    monkeypatch.delenv("BRAINBENCH_MAX_CONTEXT", raising=False)
    srv = fake(ScriptedBrain([Reply.text("x")]))
    assert server_context(srv.base_url) is None  # says nothing: fit_packs assumes 8192
