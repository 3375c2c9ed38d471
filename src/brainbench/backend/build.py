"""Build llama.cpp's `llama-server` and `llama-bench` from source, once, into the cache.

The source is the llama.cpp tree vendored in the pinned `llama-cpp-python` sdist from PyPI (verified by
SHA-256). No prebuilt binaries and no other network access: the web UI download is switched off.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from .fetch import SetupError, cache_dir, pip_download, sha256_file

LLAMA_CPP_PYTHON = "llama-cpp-python==0.3.36"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
TARGETS = ("llama-server", "llama-bench")

CMAKE_FLAGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",  # would fetch the web UI from the network
    "-DLLAMA_OPENSSL=OFF",
]


def install_dir() -> Path:
    return cache_dir() / "llama.cpp" / LLAMA_CPP_PYTHON.split("==")[1]


def cpu_key() -> str:
    """A short digest of this CPU's architecture and instruction-set flags.

    llama.cpp builds with -march=native, so a binary built on one CPU can die with SIGILL on another
    (a cache shared between machines): binaries are kept per CPU key and rebuilt where the key differs.
    """
    flags = ""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
        m = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", text, re.M)
        flags = " ".join(sorted(m.group(1).split())) if m else ""
    except OSError:
        pass
    return hashlib.sha256(f"{platform.machine()}|{flags}".encode()).hexdigest()[:12]


def bin_dir() -> Path:
    """Where this CPU's built tools live: $BRAINBENCH_LLAMA_BIN_DIR, else the cache, per CPU key."""
    override = os.environ.get("BRAINBENCH_LLAMA_BIN_DIR")
    return Path(override) if override else install_dir() / f"bin-{cpu_key()}"


def binary(name: str = "llama-server") -> Path | None:
    """Path of a built tool, $BRAINBENCH_LLAMA_BIN_DIR first; None when not built yet (for this CPU)."""
    path = bin_dir() / name
    return path if path.is_file() and os.access(path, os.X_OK) else None


def source_tree() -> Path:
    """The vendored llama.cpp source, extracted from the verified sdist (cached)."""
    src = install_dir() / "src"
    if (src / "CMakeLists.txt").exists():
        return src
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        pip_download([LLAMA_CPP_PYTHON], Path(tmp), sdist=True)
        sdist = next(Path(tmp).glob("llama_cpp_python-*.tar.gz"), None)
        if sdist is None:
            raise SetupError(f"{LLAMA_CPP_PYTHON}: no sdist after download")
        digest = sha256_file(sdist)
        if digest != SDIST_SHA256:
            raise SetupError(f"{sdist.name}: sha256 {digest} does not match the pin {SDIST_SHA256}")
        with tarfile.open(sdist) as tar:
            members = [m for m in tar.getmembers() if "/vendor/llama.cpp/" in m.name + "/"]
            tar.extractall(tmp, members=members, filter="data")
        vendored = next(Path(tmp).glob("llama_cpp_python-*/vendor/llama.cpp"))
        src.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(src, ignore_errors=True)
        shutil.move(str(vendored), src)
    return src


def _run(cmd: list[str], log, on_line: Callable[[str], None] | None = None) -> None:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        log.write(line)
        tail = (tail + [line.rstrip()])[-5:]
        if on_line:
            on_line(line)
    if proc.wait() != 0:
        raise SetupError(f"{' '.join(cmd[:3])} failed (exit {proc.returncode}): {tail[-1] if tail else ''} "
                         f"(full log: {log.name})")


def build(on_percent: Callable[[int], None] | None = None, jobs: int | None = None) -> Path:
    """Build the tools if missing; returns the bin directory. `on_percent` gets make's [ NN%] progress."""
    if binary("llama-server") and binary("llama-bench"):
        return binary("llama-server").parent  # type: ignore[union-attr]
    if os.environ.get("BRAINBENCH_LLAMA_BIN_DIR"):
        if server := binary("llama-server"):  # a folder of the user's own; llama-bench is optional there
            return server.parent
        raise SetupError(f"BRAINBENCH_LLAMA_BIN_DIR={os.environ['BRAINBENCH_LLAMA_BIN_DIR']} has no llama-server")
    if not shutil.which("cmake") or not (shutil.which("c++") or shutil.which("g++")):
        raise SetupError("building llama-server needs cmake and a C++ compiler (e.g. apt install cmake g++)")
    src = source_tree()
    out = install_dir()
    build_dir = out / f"build-{cpu_key()}"
    pct = re.compile(r"^\[\s*(\d+)%\]")
    with open(out / "build.log", "w") as log:
        _run(["cmake", "-S", str(src), "-B", str(build_dir), *CMAKE_FLAGS], log)
        cmd = ["cmake", "--build", str(build_dir), "-j", str(jobs or os.cpu_count() or 2), "--target", *TARGETS]
        _run(cmd, log, lambda line: on_percent and (m := pct.match(line)) and on_percent(int(m.group(1))))
    dest = bin_dir()
    dest.mkdir(parents=True, exist_ok=True)
    for t in TARGETS:
        shutil.copy2(build_dir / "bin" / t, dest / t)
    shutil.rmtree(build_dir, ignore_errors=True)
    return dest
