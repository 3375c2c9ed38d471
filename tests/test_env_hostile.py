"""A hostile model's tool arguments: each is a ToolError the model sees (classified), never a crash of the run."""

import pytest

from brainbench.envs import get_env

STATE = {"cards": {"c1": {"title": "t", "status": "in_progress"}}, "files": {"notes.md": "hello"}}


@pytest.fixture
def env(tmp_path):
    return get_env("kanban")(STATE, tmp_path)


@pytest.mark.parametrize("path, kind, words", [
    ("a\x00b.md", "bad_path", "NUL"),
    ("x" * 300 + ".md", "bad_path", "255 bytes"),
    ("/".join(["d"] * 3000) + "/f.md", "bad_path", "levels deep"),
    ("notes.md/child", "bad_path", "cannot be used"),
    ("a\ud800.md", "bad_path", "surrogate"),
    ("../outside.md", "blocked_path", "outside the workspace"),
])
async def test_paths_no_filesystem_takes_are_tool_errors(env, tmp_path, path, kind, words):
    out = await env.call("write_file", {"path": path, "content": "x"})
    assert not out.ok and out.error_kind == kind and words in out.output, out
    assert not (tmp_path.parent / "outside.md").exists()
    read = await env.call("read_file", {"path": path})
    assert not read.ok and read.error_kind in (kind, "tool_error")


async def test_text_no_file_can_hold_is_malformed_args(env):
    out = await env.call("write_file", {"path": "ok.md", "content": "a\ud800"})
    assert not out.ok and out.error_kind == "malformed_args"
    assert (await env.call("write_file", {"path": "ok.md", "content": "fine"})).ok
