"""Broken packs: every one is a single `error:` line naming the file (and scenario), at load, before any model call."""

import os
import subprocess
import sys

import pytest

SCEN = "  messages: [{role: user, content: hi}]\n  checks: []\n"


def _bomb() -> str:
    text, prev = 'name: p\nx-a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n', "a"
    for n in "bcdefghij":
        text += f"x-{n}: &{n} [{', '.join(['*' + prev] * 9)}]\n"
        prev = n
    return text + "scenarios: []\n"


CASES = {
    "defaults a list": ("name: p\ndefaults: [1, 2]\n", "field 'defaults'"),
    "description a list": ("name: p\ndescription: [x]\n", "field 'description'"),
    "unknown env": ("name: p\nscenarios:\n- id: s\n  env: nosuch\n" + SCEN, "unknown environment 'nosuch'"),
    "missing generator": ("name: p\ngenerator: nosuch.mod:gen\n", "generator 'nosuch.mod:gen' cannot be loaded"),
    "not UTF-8": (b"name: p\ndescription: \xff\xfe\n", "not UTF-8 text"),
    "cards as a list": ("name: p\nscenarios:\n- id: s\n  env: kanban\n  state: {cards: [1, 2]}\n" + SCEN, "state:"),
    "bad card status": ("name: p\nscenarios:\n- id: s\n  env: kanban\n  state: {cards: {c1: {status: bogus}}}\n"
                        + SCEN, "bad status 'bogus'"),
    "file outside the workspace": ("name: p\nscenarios:\n- id: s\n  env: kanban\n  state: {files: {../../x.md: hi}}\n"
                                   + SCEN, "outside the workspace"),
    "params set tools": ("name: p\nscenarios:\n- id: s\n  env: toy\n  params: {tools: 5}\n" + SCEN,
                         "params may not set 'tools'"),
    "scenarios not a list": ("name: p\nscenarios: {a: 1}\n", "must be a list"),
    "alias bomb": (_bomb(), "alias bomb"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_broken_pack_is_one_line(tmp_path, name):
    text, words = CASES[name]
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "pack.yaml").write_bytes(text if isinstance(text, bytes) else text.encode())
    proc = subprocess.run([sys.executable, "-m", "brainbench", "packs", "--pack-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "300"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "pack.yaml" in lines[0], proc.stderr
    assert words in lines[0], lines[0]
