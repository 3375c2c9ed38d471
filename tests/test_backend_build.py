"""The built llama.cpp tools are kept per CPU, and a server that dies by a signal says which."""

from __future__ import annotations

import os
import stat

import pytest

import importlib

build = importlib.import_module("brainbench.backend.build")
from brainbench.backend.fetch import SetupError
from brainbench.backend.server import LlamaServer


def test_binaries_are_kept_per_cpu(monkeypatch, tmp_path):
    monkeypatch.delenv("BRAINBENCH_LLAMA_BIN_DIR", raising=False)
    monkeypatch.setenv("BRAINBENCH_CACHE", str(tmp_path))
    key = build.cpu_key()
    assert len(key) == 12 and build.bin_dir().name == f"bin-{key}"
    # a binary left by a build on another CPU (the old shared `bin/`) is not taken for this one
    old = build.install_dir() / "bin"
    old.mkdir(parents=True)
    (old / "llama-server").write_text("#!/bin/sh\n")
    (old / "llama-server").chmod(0o755)
    assert build.binary("llama-server") is None


def _fake_server(tmp_path, body: str):
    exe = tmp_path / "llama-server"
    exe.write_text("#!/bin/sh\necho 'loading model'\n" + body + "\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return tmp_path


@pytest.mark.parametrize("body, words", [
    ("kill -ILL $$", "killed by SIGILL during start-up (an instruction this CPU lacks"),
    ("exit 3", "exited during start-up (loading model)"),
])
def test_server_death_during_startup_is_one_line(monkeypatch, tmp_path, body, words):
    monkeypatch.setenv("BRAINBENCH_LLAMA_BIN_DIR", str(_fake_server(tmp_path, body)))
    srv = LlamaServer(tmp_path / "model.gguf", log_path=tmp_path / "server.log", ready_timeout=20)
    with pytest.raises(SetupError) as err:
        srv.start()
    assert words in str(err.value) and "\n" not in str(err.value)
    assert os.path.exists(tmp_path / "server.log")


def test_own_bin_dir_needs_only_llama_server(monkeypatch, tmp_path):
    """A folder of the user's own (e.g. a CUDA build of llama-server alone) is used as it is, without llama-bench."""
    monkeypatch.setenv("BRAINBENCH_LLAMA_BIN_DIR", str(_fake_server(tmp_path, "exit 0")))
    assert build.build() == tmp_path
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("BRAINBENCH_LLAMA_BIN_DIR", str(empty))
    with pytest.raises(SetupError, match="has no llama-server"):
        build.build()
