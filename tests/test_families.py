"""Scenario families: a seeded template in YAML expands into stable, content-keyed variants; `brainbench packs`
lists them; `brainbench run --limit-per-pack` samples them deterministically."""

import json

import pytest
from test_cli import bb

from brainbench.packs import PackError, limit, load_pack
from brainbench.testing import ByConversation, Reply

FAMILY = """\
name: fam
scenarios:
  - id: written
    messages: [{role: user, content: "What is 6 times 7?"}]
    checks: [{type: content_regex, pattern: "42"}]
  - family: add
    variants: VARIANTS
    seed: 3
    vars:
      a: {range: [10, 99]}
      b: {cycle: [1, 2, 3, 4, 5, 6, 7]}
      who: {choice: [{name: Ann}, {name: Bo}]}
      ask: {template: "${who.name} asks: what is ${a} plus ${b}?"}
    scenario:
      messages: [{role: user, content: "${ask}"}]
      checks: [{type: content_regex, pattern: "SUM"}]
      meta: {a: "${a}"}
"""


def _pack(tmp_path, variants=5, text=FAMILY, name="fam"):
    d = tmp_path / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "pack.yaml").write_text(text.replace("VARIANTS", str(variants)))
    return d


def test_variants_are_stable_ids_with_drawn_content(tmp_path):
    p = load_pack(_pack(tmp_path))
    ids = [s.id for s in p.scenarios]
    assert ids == ["written", "add-000", "add-001", "add-002", "add-003", "add-004"]
    v = p.scenarios[1:]
    assert all(s.family == "add" and s.pack == "fam" for s in v) and p.scenarios[0].family == ""
    assert [s.messages[0]["content"].split(" plus ")[1] for s in v] == ["1?", "2?", "3?", "4?", "5?"]
    assert all(isinstance(s.meta["a"], int) and 10 <= s.meta["a"] <= 99 for s in v)  # a whole placeholder keeps its type
    assert len({s.content_hash() for s in v}) == 5


def test_hashes_change_only_with_content(tmp_path):
    first = {s.id: s.content_hash() for s in load_pack(_pack(tmp_path / "a", 3)).scenarios}
    more = {s.id: s.content_hash() for s in load_pack(_pack(tmp_path / "b", 6)).scenarios}
    assert all(more[i] == h for i, h in first.items())  # adding variants leaves the others alone
    reseeded = {s.id: s.content_hash() for s in load_pack(_pack(tmp_path / "c", 3, FAMILY.replace("seed: 3", "seed: 4"))).scenarios}
    assert reseeded["written"] == first["written"] and reseeded["add-000"] != first["add-000"]


@pytest.mark.parametrize("bad, needle", [
    ("b: {cycle: [1], range: [1, 2]}", "exactly one of"),
    ("b: {template: '${nope}'}", "unknown variable ${nope}"),
    ("b: {cycel: [1]}", "b.cycel"),
])
def test_a_broken_family_is_one_line(tmp_path, bad, needle):
    text = FAMILY.replace("b: {cycle: [1, 2, 3, 4, 5, 6, 7]}", bad)
    with pytest.raises(PackError) as e:
        load_pack(_pack(tmp_path, text=text))
    assert "family 'add'" in str(e.value) and needle in str(e.value) and "\n" not in str(e.value)


def test_limit_per_pack_is_deterministic_and_spread(tmp_path):
    p = load_pack(_pack(tmp_path, 20))
    (a,), (b,) = limit([p], 4), limit([p], 4)
    assert [s.id for s in a.scenarios] == [s.id for s in b.scenarios] == ["written", "add-004", "add-009", "add-014"]
    assert limit([p], 50)[0].scenarios == p.scenarios and limit([p], None) == [p]


def test_packs_lists_families_and_run_samples_them(fake, tmp_path):
    d = _pack(tmp_path, 9)
    listed = {r["name"]: r for r in json.loads(bb("packs", "--pack-dir", str(d), "--json").stdout)["packs"]}
    assert listed["fam"]["scenarios"] == 10 and listed["fam"]["families"] == {"add": 9}
    srv = fake(ByConversation(lambda messages: Reply.text("42")))
    proc = bb("run", "--pack-dir", str(d), "--pack", "fam", "--endpoint", srv.base_url, "--model", "fake-model",
              "--limit-per-pack", "3", "--json", "-o", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(bb("export", str(tmp_path / "run"), "--format", "json").stdout)
    assert sorted(a["scenario"] for a in data["attempts"]) == ["add-002", "add-005", "written"]
