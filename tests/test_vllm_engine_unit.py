"""The embedded vLLM engine's parts that need no vLLM: its command line and record, the profile kind, the
`vllm` distribution shim, the converted weights' SHA-256 record, and --engine's one-line errors."""

import importlib.metadata

import pytest

from brainbench.backend import vllm as engine
from brainbench.profiles.schema import profile_from_data
from brainbench.servers import RunningServer
from brainbench.servers.vllm import VllmConfig
from test_cli import bb, one_line_error


def test_embedded_command_is_the_pinned_engine_on_loopback(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINBENCH_CACHE", str(tmp_path))
    srv = RunningServer(VllmConfig(kind="vllm", brain="brain-small"), tmp_path / "log", "brain-small")
    words = srv.command(port=8123)
    assert words[0] == str(tmp_path / "vllm" / engine.VLLM_VERSION / "venv" / "bin" / "vllm")
    assert words[1:3] == ["serve", str(tmp_path / "models" / "brain-small-bf16")]
    line = " ".join(words)
    for flag in ("--host 127.0.0.1", "--port 8123", "--served-model-name brain-small", "--max-model-len 4096",
                 "--enable-auto-tool-choice --tool-call-parser hermes", "--dtype bfloat16",
                 "--max-num-batched-tokens 512"):
        assert flag in line, flag
    assert srv.environment()["VLLM_TARGET_DEVICE"] == "cpu" and srv.environment()["HF_HUB_OFFLINE"] == "1"
    rec = srv.record()
    assert rec.kind == "vllm" and rec.brain == "brain-small" and rec.program == "vllm"
    assert rec.args[:2] == ["serve", "brain-small-bf16"] and str(tmp_path) not in " ".join(rec.args)
    trap = RunningServer(VllmConfig(kind="vllm", brain="brain-small", tool_call_parser=None), tmp_path / "l", "b")
    assert "--enable-auto-tool-choice" not in trap.command(port=1) and "--tool-call-parser" not in trap.command(port=1)


def test_profile_kind_and_identity():
    p = profile_from_data({"name": "v", "server": {"kind": "vllm", "brain": "brain-small"}}, "t")
    assert p.server.brain == "brain-small" and "tool_call_parser" not in p.model_dump()["server"]
    q = profile_from_data({"name": "v", "server": {"kind": "vllm", "brain": "brain-small", "tool_call_parser": None}},
                          "t")
    assert q.identity() != p.identity()  # started without auto tool choice: another configuration
    with pytest.raises(Exception, match="unknown brain 'brain-huge'"):
        profile_from_data({"name": "v", "server": {"kind": "vllm", "brain": "brain-huge"}}, "t")


def test_dist_shim_answers_importlib_metadata(tmp_path, monkeypatch):
    engine.write_dist_shim(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    assert importlib.metadata.version("vllm") == engine.VLLM_VERSION


def test_converted_weights_are_checked_against_their_record(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINBENCH_CACHE", str(tmp_path))
    spec = engine.get_model_spec("brain-small")
    out = engine.weights_dir("brain-small")
    out.mkdir(parents=True)
    (out / "model.safetensors").write_bytes(b"weights")
    sha = engine.sha256_file(out / "model.safetensors")
    rec = engine.weights_record("brain-small")
    assert not engine.converted("brain-small")  # no record yet
    rec.write_text(f"{spec.sha256}  brain-small.gguf\n{sha}  brain-small-bf16/model.safetensors\n")
    assert engine.converted("brain-small") and engine.weights_sha256("brain-small") == sha
    (out / "model.safetensors").write_bytes(b"tampered")
    assert not engine.converted("brain-small") and engine.converted("brain-small", verify=False)
    rec.write_text(f"{'0' * 64}  brain-small.gguf\n{sha}  brain-small-bf16/model.safetensors\n")
    assert not engine.converted("brain-small", verify=False)  # converted from another GGUF


@pytest.mark.parametrize("argv, needle", [
    (["speed", "--engine", "tgi"], "--engine must be llama or vllm, not 'tgi'"),
    (["run", "--engine", "vllm", "--endpoint", "http://127.0.0.1:9/v1", "--model", "m"], "--engine picks the embedded"),
    (["soak", "--engine", "vllm", "--endpoint", "http://127.0.0.1:9/v1", "--model", "m"], "--engine picks the embedded"),
    (["setup", "--engine", "sglang"], "--engine must be llama or vllm"),
])
def test_engine_errors_are_one_line(argv, needle):
    one_line_error(bb(*argv), needle)
