"""The CLI into a pipe (a subprocess, stdout captured): usage errors are one line, output is sized for a pipe."""

import os
import subprocess
import sys

import pytest

from brainbench.console import PIPE_WIDTH


def bb(*args, columns=None):
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TERMINAL_WIDTH")}
    if columns:
        env["COLUMNS"] = str(columns)
    return subprocess.run([sys.executable, "-m", "brainbench", *args], capture_output=True, text=True, timeout=60,
                          env=env)


@pytest.mark.parametrize("args, needle, where", [
    (["run", "--no-such-flag"], "No such option: --no-such-flag", "brainbench run --help"),
    (["run", "--trials", "many"], "Invalid value for '--trials'", "brainbench run --help"),
    (["compare", "only-one-dir"], "Missing argument 'run_dir'", "brainbench compare --help"),
])
def test_a_usage_error_is_one_line_and_exit_2(args, needle, where):
    p = bb(*args)
    assert p.returncode == 2, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr  # no box, no usage block
    assert lines[0].startswith("error: ") and needle in lines[0] and lines[0].endswith(f"try {where}")
    assert "╭" not in p.stderr and "Traceback" not in p.stderr


def test_help_into_a_pipe_is_not_wrapped_at_80_columns():
    p = bb("run", "--help")
    assert p.returncode == 0, p.stderr
    widths = [len(ln) for ln in p.stdout.splitlines()]
    assert max(widths) == PIPE_WIDTH
    line = next(ln for ln in p.stdout.splitlines() if "--request-timeout" in ln)
    assert "--request-timeout" in line and "seconds" in line.lower()  # the option and its help on one line


def test_columns_wins_for_help_and_tables():
    for args in (["run", "--help"], ["packs"]):
        p = bb(*args, columns=120)
        assert p.returncode == 0, p.stderr
        assert max(len(ln) for ln in p.stdout.splitlines()) == 120, args


def test_tables_into_a_pipe_are_wide():
    p = bb("packs")
    assert p.returncode == 0, p.stderr
    assert max(len(ln) for ln in p.stdout.splitlines()) == PIPE_WIDTH
