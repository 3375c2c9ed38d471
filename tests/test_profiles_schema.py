"""Profiles: strict schema, one-line errors naming file and field, command lines, sweep parameters."""

import sys
from pathlib import Path

import pytest
import yaml

from brainbench.profiles import ProfileError, apply_param, load_profile, load_profiles, parse_param
from brainbench.profiles.launch import ServerHandle
from brainbench.profiles.schema import set_flag
from test_cli import bb, one_line_error

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path, data, name="p.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


BASE = {"name": "small", "server": {"kind": "llama-server", "brain": "brain-small"}}


def test_example_profiles_validate():
    files = sorted((REPO / "profiles").rglob("*.yaml"))
    assert len(files) >= 4
    for f in files:
        p = load_profile(f)
        assert p.legs and p.name


def test_typo_in_leg_names_file_field_and_suggestion(tmp_path):
    path = write(tmp_path, {**BASE, "legs": [{"type": "speed"}, {"type": "soak", "sesions": 3}]})
    with pytest.raises(ProfileError) as e:
        load_profile(path)
    msg = str(e.value)
    assert str(path) in msg and "legs[1].sesions" in msg and "did you mean 'sessions'" in msg
    assert "\n" not in msg


def test_typo_in_server_and_top_level(tmp_path):
    with pytest.raises(ProfileError, match=r"server\.chat_template_fle: unknown field .*did you mean 'chat_template_file'"):
        load_profile(write(tmp_path, {**BASE, "server": {**BASE["server"], "chat_template_fle": "x.jinja"}}))
    with pytest.raises(ProfileError, match=r"legz: unknown field 'legz'; did you mean 'legs'"):
        load_profile(write(tmp_path, {**BASE, "legz": []}))


def test_bad_leg_type_and_inconsistent_server(tmp_path):
    with pytest.raises(ProfileError, match=r"legs\[0\].*'speed', 'agentic', 'soak'"):
        load_profile(write(tmp_path, {**BASE, "legs": [{"type": "sped"}]}))
    with pytest.raises(ProfileError, match="kind=endpoint needs base_url"):
        load_profile(write(tmp_path, {"name": "x", "server": {"kind": "endpoint", "model": "m"}}))
    with pytest.raises(ProfileError, match="unknown brain 'brain-huge'"):
        load_profile(write(tmp_path, {"name": "x", "server": {"brain": "brain-huge"}}))
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile(write(tmp_path, "name: x\nserver: [unclosed\n"))


def test_cli_typo_is_one_line_error(tmp_path):
    path = write(tmp_path, {**BASE, "legs": [{"type": "agentic", "trails": 3}]})
    proc = bb("matrix", str(path), "-o", str(tmp_path / "m"))
    one_line_error(proc, "legs[0].trails")
    assert "did you mean 'trials'" in proc.stderr
    assert not (tmp_path / "m").exists()


def test_duplicate_profile_names(tmp_path):
    a = write(tmp_path, BASE, "a.yaml")
    b = write(tmp_path, BASE, "b.yaml")
    with pytest.raises(ProfileError, match="two profiles are named 'small'"):
        load_profiles([a, b])


def test_legs_get_unique_names(tmp_path):
    p = load_profile(write(tmp_path, {**BASE, "legs": [{"type": "speed"}, {"type": "speed"}, {"type": "soak"}]}))
    assert [lg.name for lg in p.legs] == ["speed", "speed-2", "soak"]


def test_llama_command_line_with_chat_template(tmp_path):
    (tmp_path / "t.jinja").write_text("{{ messages }}")
    path = write(tmp_path, {"name": "x", "server": {"kind": "llama-server", "model_path": "m.gguf", "binary": "/bin/true",
                                                     "threads": 2, "args": ["-ub", "256"], "chat_template_file": "t.jinja",
                                                     "env": {"LLAMA_X": "1", "HF_TOKEN": "secret"}}})
    p = load_profile(path)
    h = ServerHandle(p, tmp_path / "log")
    cmd = h.command(port=9999)
    assert cmd[:3] == ["/bin/true", "-m", str(tmp_path / "m.gguf")]
    assert ["--port", "9999"] == cmd[cmd.index("--port"):cmd.index("--port") + 2]
    assert cmd[cmd.index("--chat-template-file") + 1] == str(tmp_path / "t.jinja")
    assert cmd[cmd.index("-t") + 1] == "2" and cmd[-2:] == ["-ub", "256"]
    line = h.command_line(9999)
    assert "LLAMA_X=1" in line and "HF_TOKEN=secret" in line and " /bin/true -m " in line
    pub = h.public()
    assert pub["kind"] == "llama-server" and pub["program"] == "true" and pub["model_file"] == "m.gguf"
    assert "--port" not in pub["args"] and "-m" not in pub["args"] and pub["args"][:1] == ["--jinja"]
    assert pub["env"]["HF_TOKEN"] == "***" and pub["profile_id"] == p.identity()
    # the template counts by its content: same path, new content, new identity
    before = p.identity()
    (tmp_path / "t.jinja").write_text("{{ messages }} fixed")
    assert p.identity() != before


def test_vllm_sglang_ollama_commands(tmp_path):
    (tmp_path / "t.jinja").write_text("x")
    v = load_profile(write(tmp_path, {"name": "v", "server": {"kind": "vllm", "model": "Qwen/Qwen3-8B",
                                                               "chat_template_file": "t.jinja", "args": ["--max-num-seqs", "4"]}}))
    cmd = ServerHandle(v, tmp_path / "log").command(port=8000)
    assert cmd[:3] == ["vllm", "serve", "Qwen/Qwen3-8B"] and "--chat-template" in cmd and cmd[-2:] == ["--max-num-seqs", "4"]
    s = load_profile(write(tmp_path, {"name": "s", "server": {"kind": "sglang", "model": "m"}}))
    assert ServerHandle(s, tmp_path / "log").command(port=30000)[:3] == [sys.executable, "-m", "sglang.launch_server"]
    o = load_profile(write(tmp_path, {"name": "o", "server": {"kind": "ollama", "model": "qwen3:8b"}}))
    h = ServerHandle(o, tmp_path / "log")
    assert h.command(port=11500) == ["ollama", "serve"] and h.environment(11500)["OLLAMA_HOST"] == "127.0.0.1:11500"
    assert o.server.wire_api == "ollama"
    with pytest.raises(ProfileError, match="Modelfile"):
        load_profile(write(tmp_path, {"name": "o", "server": {"kind": "ollama", "model": "m", "chat_template": "x"}}))


def test_parse_and_apply_params(tmp_path):
    assert parse_param("ubatch=128,256") == ("ubatch", ["128", "256"])
    with pytest.raises(ProfileError, match="NAME=v1,v2"):
        parse_param("ubatch")
    p = load_profile(write(tmp_path, {**BASE, "server": {**BASE["server"], "args": ["--ubatch-size", "512", "--mlock"]}}))
    q = apply_param(p, "ubatch", "256")
    assert q.server.args == ["--mlock", "-ub", "256"]
    assert apply_param(p, "kv", "q8_0").server.args[-4:] == ["-ctk", "q8_0", "-ctv", "q8_0"]
    assert apply_param(p, "threads", "2").server.threads == 2
    assert apply_param(p, "env.GGML_X", "1").server.env == {"GGML_X": "1"}
    assert apply_param(p, "--mlock", "false").server.args == ["--ubatch-size", "512"]
    assert apply_param(p, "max_num_seqs", "8").server.args[-2:] == ["--max-num-seqs", "8"]
    assert p.server.args == ["--ubatch-size", "512", "--mlock"]  # the original is untouched
    assert apply_param(p, "ubatch", "256").identity() != p.identity()
    with pytest.raises(ProfileError, match="threads"):
        apply_param(p, "threads", "many")
    (tmp_path / "fixed.jinja").write_text("y")
    t = apply_param(p, "chat_template_file", str(tmp_path / "fixed.jinja"))
    assert t.server.chat_template_file == str(tmp_path / "fixed.jinja")
    assert apply_param(t, "chat_template_file", "default").server.chat_template_file is None
    assert apply_param(t, "chat_template_file", "default").identity() == p.identity()


def test_set_flag_forms():
    assert set_flag(["-t", "4", "-fa", "on"], "--threads", "2") == ["-fa", "on", "--threads", "2"]
    assert set_flag(["--ctx-size=4096"], "-c", "8192") == ["-c", "8192"]
    assert set_flag(["--x", "-1"], "--x", "3") == ["--x", "3"]
