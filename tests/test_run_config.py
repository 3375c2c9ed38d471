"""RunConfig: one typed set of run options for the CLI, --resume, profiles and matrix legs."""

import json

import pytest

from brainbench.core.errors import BrainbenchError
from brainbench.core.run_config import DEFAULTS, BackendOptions, RunConfig
from brainbench.profiles.schema import AgenticLeg
from brainbench.store.db import RunStore
from brainbench.testing import ByConversation
from test_cli import bb, one_line_error
from test_runner_store import perfect_smoke

OLD_OPTS = {"packs": ["smoke"], "suites": [], "backend": {"endpoint": None, "model": "fake-model", "api": "openai",
                                                          "api_key_env": None},
            "trials": 2, "concurrency": 1, "retries": 1, "pack_dirs": [], "think": None, "think_mode": None}
"""What `brainbench run` stored before RunConfig: a hand-built dict (no timeout, a stray think_mode)."""


def test_stored_options_load_back_unchanged():
    cfg = RunConfig(packs=["smoke"], trials=3, backend=BackendOptions(brain="brain-small", server_args=["-ub", "256"]))
    stored = json.loads(json.dumps(cfg.stored()))
    assert stored["backend"] == {"brain": "brain-small", "server_args": ["-ub", "256"]}  # compact, as before
    assert RunConfig.load(stored) == cfg


def test_old_opts_dict_converts_on_load():
    cfg = RunConfig.load(OLD_OPTS)
    assert (cfg.trials, cfg.timeout, cfg.think) == (2, DEFAULTS.timeout, None)
    assert cfg.backend.model == "fake-model" and cfg.backend.endpoint is None


def test_bad_stored_value_is_one_line_error():
    with pytest.raises(BrainbenchError, match="trials"):
        RunConfig.load({**OLD_OPTS, "trials": 0}, "somewhere")


def test_agentic_leg_builds_run_options_with_the_same_defaults():
    leg = AgenticLeg(type="agentic", trials=2, timeout_s=9.0)
    cfg = leg.run_config(["smoke"], [])
    assert (cfg.packs, cfg.trials, cfg.timeout, cfg.retries) == (["smoke"], 2, 9.0, DEFAULTS.retries)
    assert AgenticLeg(type="agentic").concurrency == DEFAULTS.concurrency


def test_old_run_dir_resumes_and_keeps_its_options(fake, tmp_path):
    srv = fake(ByConversation(perfect_smoke))
    run_dir = tmp_path / "old"
    with RunStore(run_dir, create=True) as st:
        st.set_meta("run", {**OLD_OPTS, "backend": {**OLD_OPTS["backend"], "endpoint": srv.base_url}})
    proc = bb("run", "--resume", str(run_dir), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["summary"]["fake-model"]["overall"]["attempts"] == 8  # 4 scenarios x 2 trials
    assert json.loads(bb("export", str(run_dir)).stdout)["run"]["think_mode"] is None  # stored as it was


def test_old_options_give_the_same_attempt_keys(fake, tmp_path):
    """A run stored with the old dict resumes onto the same keys: nothing already stored is redone."""
    srv = fake(ByConversation(perfect_smoke))
    run_dir = tmp_path / "run"
    assert bb("run", "--endpoint", srv.base_url, "--model", "fake-model", "-k", "2", "-o", str(run_dir)).returncode == 0
    with RunStore(run_dir) as st:
        st.set_meta("run", {**OLD_OPTS, "backend": {**OLD_OPTS["backend"], "endpoint": srv.base_url}})
        before = {r.key: r.started for r in st.attempts()}
    proc = bb("run", "--resume", str(run_dir), "--json")
    assert proc.returncode == 0, proc.stderr
    with RunStore(run_dir) as st:
        assert {r.key: r.started for r in st.attempts()} == before and len(before) == 8


def test_new_run_stores_typed_options(fake, tmp_path):
    srv = fake(ByConversation(perfect_smoke))
    run_dir = tmp_path / "new"
    proc = bb("run", "--endpoint", srv.base_url, "--model", "fake-model", "--timeout", "30", "-o", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    stored = json.loads(bb("export", str(run_dir)).stdout)["run"]
    assert RunConfig.load(stored).timeout == 30.0 and stored["backend"]["model"] == "fake-model"


def test_bad_think_value_is_one_line_error(tmp_path):
    one_line_error(bb("run", "--think", "maybe", "-o", str(tmp_path / "x")), "--think must be one of")


def test_a_resume_keys_attempts_by_the_server_record_stored_when_the_run_began(fake, tmp_path, monkeypatch):
    """A newer brainbench records servers in a newer shape; a resume must still find every finished attempt."""
    import asyncio

    import brainbench.backend as backend
    from brainbench.cli import _execute
    from brainbench.core.run_config import BackendOptions, RunConfig

    srv = fake(ByConversation(perfect_smoke))
    cfg = RunConfig(packs=["smoke"], trials=2,
                    backend=BackendOptions(endpoint=srv.base_url, model="fake-model"))
    run_dir = tmp_path / "run"
    monkeypatch.setattr(backend, "endpoint_record", lambda spec: {"endpoint": spec.endpoint, "api": spec.api})
    asyncio.run(_execute(cfg, run_dir))  # as an older brainbench stored it
    with RunStore(run_dir) as st:
        before = {r.key: r.started for r in st.attempts()}
    monkeypatch.setattr(backend, "endpoint_record", lambda spec: {"kind": "endpoint", "base_url": spec.endpoint})
    asyncio.run(_execute(cfg, run_dir))  # resumed by a newer one
    with RunStore(run_dir) as st:
        assert {r.key: r.started for r in st.attempts()} == before and len(before) == 8
        assert st.get_meta("server") == {"endpoint": srv.base_url, "api": "openai"}
