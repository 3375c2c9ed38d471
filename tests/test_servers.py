"""The server registry: six kinds, each kind's URLs and miners, a kind added by one module, one recorded shape."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import Field
from test_cli import bb

from brainbench.profiles import ProfileError, apply_param, load_profile
from brainbench.profiles.launch import ServerHandle
from brainbench.profiles.schema import profile_from_data, profile_json_schema
from brainbench.servers import (
    RunningServer,
    ServerConfig,
    ServerKind,
    ServerRecord,
    UnknownKind,
    get_kind,
    kinds,
    register,
)
from brainbench.store import RunStore

REPO = Path(__file__).resolve().parents[1]
SIX = {"llama-server", "vllm", "sglang", "ollama", "command", "endpoint"}


class FakeWordsConfig(ServerConfig):
    """A field of this kind's own: how many words each reply has."""

    words: int = Field(default=8, ge=1)
    """--words for the fake server."""


@register
class FakeWords(ServerKind):
    """A kind that lives in this test module only: the fake server, started with its own `words` field."""

    name = "test-fake-words"
    config = FakeWordsConfig
    log_miner = "llama"
    param_aliases = {"gap": ["--chunk-gap"]}

    def default_command(self, cfg: FakeWordsConfig, model: str) -> list[str]:  # type: ignore[override]
        return ["{python}", "-m", "brainbench.testing.fakeproc", "--port", "{port}", "--words", str(cfg.words)]


def test_the_registry_lists_the_six_kinds_from_their_own_modules():
    mine = {n for n, k in kinds().items() if type(k).__module__ == f"brainbench.servers.{n.replace('-', '_')}"}
    assert mine == SIX
    with pytest.raises(UnknownKind, match="did you mean 'vllm'"):
        get_kind("vlm")


@pytest.mark.parametrize("kind, health, metrics, miner, api", [
    ("llama-server", "http://127.0.0.1:7/health", "http://127.0.0.1:7/metrics", "llama", "openai"),
    ("vllm", "http://127.0.0.1:7/health", "http://127.0.0.1:7/metrics", "vllm", "openai"),
    ("sglang", "http://127.0.0.1:7/health", "http://127.0.0.1:7/metrics", None, "openai"),
    ("ollama", "http://127.0.0.1:7/api/tags", None, "ollama", "ollama"),
    ("command", "http://127.0.0.1:7/health", None, None, "openai"),
    ("endpoint", "http://10.0.0.2:8000/v1/models", None, None, "openai"),
])
def test_each_kind_says_its_health_metrics_miner_and_api(kind, health, metrics, miner, api):
    extra = {"llama-server": {"brain": "brain-small"}, "vllm": {"model": "m"}, "sglang": {"model": "m"},
             "command": {"command": "serve --port {port}"}, "endpoint": {"base_url": "http://10.0.0.2:8000/v1"}}
    cfg = get_kind(kind).config(kind=kind, port=7, **extra.get(kind, {}))
    srv = RunningServer(cfg, Path("log"), "m")
    srv.port = 7
    assert srv.health_url() == health and srv.metrics_url() == metrics
    assert get_kind(kind).log_miner == miner and cfg.wire_api == api
    assert srv.base_url.endswith("/v1") == (api == "openai")


def test_a_kind_registered_in_a_test_module_runs_a_profile(tmp_path):
    """No other file names `test-fake-words`: the profile schema, sweep parameters, the command line, the
    start/health/stop path and the record all come from the registry."""
    from brainbench.matrix.engine import ProfileRun

    data = {"name": "fw", "server": {"kind": "test-fake-words", "words": 3, "model": "fake", "ready_timeout_s": 20},
            "warmup": {"requests": 1, "max_tokens": 4}, "legs": [{"type": "speed", "requests": 2, "max_tokens": 6, "warmup": 0}]}
    path = tmp_path / "fw.yaml"
    path.write_text(yaml.safe_dump(data))
    p = load_profile(path)
    assert type(p.server) is FakeWordsConfig and p.server.words == 3
    assert ServerHandle(p, tmp_path / "log").command(port=5)[-4:] == ["--port", "5", "--words", "3"]
    assert apply_param(p, "words", "5").server.words == 5  # its own field is a sweep parameter
    assert apply_param(p, "gap", "0.01").server.args == ["--chunk-gap", "0.01"]  # and its alias
    with pytest.raises(ProfileError, match="server.wrods: unknown field 'wrods'; did you mean 'words'"):
        load_profile(_write(tmp_path, {**data, "server": {**data["server"], "wrods": 3}}))
    rec = ProfileRun(p, tmp_path / "run").run()
    assert rec["status"] == "done", rec
    with RunStore(tmp_path / "run") as store:
        server = store.get_meta("server")
    assert server["kind"] == "test-fake-words" and server["args"][-2:] == ["--words", "3"]
    assert server["program"] == Path(sys.executable).name and "--port" not in server["args"]
    assert "test-fake-words" in json.dumps(profile_json_schema()["properties"]["server"])


def _write(tmp_path: Path, data: dict, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_unknown_kind_is_one_line_naming_the_field(tmp_path):
    with pytest.raises(ProfileError, match=r"server: unknown server kind 'vlm'; did you mean 'vllm'") as e:
        load_profile(_write(tmp_path, {"name": "x", "server": {"kind": "vlm", "model": "m"}}))
    assert "\n" not in str(e.value)


def test_a_profile_stored_in_the_flat_shape_reloads_with_its_old_identity():
    """Matrix dirs store the profile as dumped while `server:` was one flat model (every kind's fields)."""
    flat = {"brain": None, "model_path": None, "binary": None, "base_url": None, "threads": None, "parallel": 1,
            "ctx_per_slot": 8192, "pid": None}
    for name, old_id in (("vllm", "87c04e72e222ba6c"), ("sglang", "be6e212bc739436a")):
        p = load_profile(REPO / "profiles" / f"{name}.yaml")
        data = p.model_dump(mode="json")
        data["server"] = {**flat, **data["server"]}
        again = profile_from_data(data, "stored")
        assert again.identity() == p.identity() == old_id
    with pytest.raises(ProfileError, match="server.threads: unknown field"):  # a value, not a default: refused
        profile_from_data({"name": "v", "server": {"kind": "vllm", "model": "m", "threads": 4}}, "x")


def test_server_record_reads_every_stored_shape():
    first_run = {"brain": "brain-small", "model_sha256": "ab" * 32, "server": "llama-server", "args": ["--jinja"]}
    first_endpoint = {"endpoint": "http://h:1/v1", "api": "ollama"}
    first_matrix = {"kind": "command", "model": "fake", "profile_id": "p1", "command": ["/usr/bin/python3", "-m", "x"],
                    "env": {"HF_TOKEN": "***"}}
    r = ServerRecord.from_stored(first_run)
    assert (r.kind, r.brain, r.args) == ("llama-server", "brain-small", ["--jinja"])
    r = ServerRecord.from_stored(first_endpoint)
    assert (r.kind, r.base_url, r.api) == ("endpoint", "http://h:1/v1", "ollama")
    r = ServerRecord.from_stored(first_matrix)
    assert (r.kind, r.program, r.args, r.profile_id) == ("command", "python3", ["-m", "x"], "p1")
    assert ServerRecord.from_stored(r.dump()) == r and ServerRecord.from_stored(None) is None
    assert r.dump()["server"] == "command"  # the key the first shape's readers look for


def test_run_and_speed_record_an_endpoint_in_the_same_shape():
    from brainbench.backend import BackendSpec, endpoint_record

    rec = endpoint_record(BackendSpec(endpoint="http://127.0.0.1:9/v1", model="m", api_key_env="SECRET_KEY"))
    assert rec == {"kind": "endpoint", "server": "endpoint", "model": "m", "base_url": "http://127.0.0.1:9/v1",
                   "api": "openai", "args": [], "env": {}}


def test_the_embedded_server_records_the_same_shape(tmp_path, monkeypatch):
    from brainbench.backend import server

    monkeypatch.setattr(server, "binary", lambda name="llama-server": tmp_path / "llama-server")
    srv = server.LlamaServer(tmp_path / "m.gguf", log_path=tmp_path / "log", parallel=2, alias="brain-small",
                             brain="brain-small", threads=1)
    rec = srv.profile()
    assert rec["kind"] == rec["server"] == "llama-server" and rec["brain"] == "brain-small" and len(rec["model_sha256"]) == 64
    assert rec["args"][:1] == ["--jinja"] and "-m" not in rec["args"] and "--port" not in rec["args"]
    assert rec["args"][rec["args"].index("-c") + 1] == "16384" and rec["program"] == "llama-server"


def test_report_and_logs_read_a_run_dir_in_the_new_shape(tmp_path):
    from report_fixtures import good_brain, make_run

    from brainbench.report.data import build_report
    from brainbench.report.outputs.md import render_markdown

    run = make_run(tmp_path / "run", "brain-small", good_brain, trials=1)
    rec = ServerRecord(kind="llama-server", model="brain-small", brain="brain-small", program="llama-server",
                       args=["--jinja", "-c", "8192"], version="b1").dump()
    with RunStore(run) as store:
        store.set_meta("server", rec)
    md = render_markdown(build_report([run]))
    assert "llama-server `--jinja -c 8192`" in md
    (run / "server.log").write_bytes((REPO / "tests" / "data" / "logs" / "llama_server.log").read_bytes())
    proc = bb("logs", "server", str(run), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["requests"] > 0  # the llama miner, found through the recorded kind


@pytest.mark.integration
def test_a_real_llama_server_profile_records_its_version_and_model(tmp_path):
    """The embedded brain through the registry: built binary, fetched model, healthy, recorded, stopped."""
    from brainbench.backend import ensure_brain
    from brainbench.matrix.engine import ProfileRun

    ensure_brain("brain-small")
    data = {"name": "real", "server": {"kind": "llama-server", "brain": "brain-small", "threads": 1, "ctx_per_slot": 2048},
            "warmup": {"requests": 1, "max_tokens": 4}, "legs": [{"type": "speed", "requests": 2, "max_tokens": 8, "warmup": 0}]}
    p = profile_from_data(data, "real")
    rec = ProfileRun(p, tmp_path / "run").run()
    assert rec["status"] == "done", rec
    server = rec["server"]
    assert server["kind"] == "llama-server" and server["brain"] == "brain-small" and len(server["model_sha256"]) == 64
    assert server["version"] and server["args"][:1] == ["--jinja"] and server["program"] == "llama-server"
    log = (tmp_path / "run" / "server.log").read_text()
    port = int(log.split("--port ")[1].split()[0])
    import httpx

    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
