"""The documentation cannot drift from the code: generated reference pages, a strict site build, real commands.

Rules for the commands shown in the docs (README.md and docs/**/*.md):

1. What counts as a command. Only fenced code blocks are read. In blocks tagged `sh`, `bash` or `shell`, every
   line is shell (a leading `$ ` prompt is dropped); in untagged and `console` blocks, only lines that start with
   `$ ` are (the rest is output). Lines ending in `\\` are joined with the next. Each line is split into shell
   words (comments dropped) and cut at `|`, `||`, `&&`, `;` and `&`; redirections (`>`, `2>&1`, ...) are
   dropped. Every piece whose first word is `brainbench` is a command. Inline code in prose is not.
2. Every command must parse with the real command line (typer's click command, `brainbench.cli.app`): the
   subcommands must exist, and the options, their values and the arguments must be accepted. Placeholders
   (RUN_DIR, URL, PROFILE, `$b`, ...) are fine: they parse as values.
3. Cheap commands run for real and must exit 0: `packs`, `brains`, and any command with `--help` or `--schema`
   (not `--check`: it builds llama-server for an embedded brain), when every other word after the subcommand
   names a file that exists (relative to the repository root); output redirections are ignored.
4. Blocks marked with an HTML comment `<!-- docs-test: run -->` on the line before the fence (the five-minute
   tour) run for real, line by line, from the repository root, with every `runs/...` path moved into a
   temporary directory; each command must exit 0, and every file named by `-o/--out`, `--html` or `--md` must
   exist afterwards. They use `profiles/fake.yaml`, a fake model server process: no model is needed.
5. The example pack in docs/howto/write-a-pack.md is written to disk and must validate (`brainbench packs`).

Refresh the generated reference pages with: python -m brainbench.docsgen docs/reference
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from brainbench import docsgen

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
SHELL_TAGS = {"sh", "bash", "shell"}
CONTROL = {"|", "||", "&&", ";", "&", ";;"}
CHEAP_COMMANDS = {"packs", "brains"}
CHEAP_FLAGS = {"--help", "--schema"}  # not --check: it builds llama-server for an embedded brain
RUN_MARK = "<!-- docs-test: run -->"


@dataclass
class Block:
    path: Path
    line: int
    tag: str
    text: str
    run: bool


@dataclass
class Command:
    path: Path
    line: int
    argv: list[str]  # without the leading "brainbench"

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: brainbench {shlex.join(self.argv)}"


def fenced_blocks(path: Path) -> list[Block]:
    blocks, lines = [], path.read_text(encoding="utf-8").split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)(```+|~~~+)\s*([\w+-]*)", lines[i])
        if not m:
            i += 1
            continue
        fence, tag = m.group(2), m.group(3).lower()
        run = i > 0 and lines[i - 1].strip() == RUN_MARK
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        blocks.append(Block(path, i + 1, tag, "\n".join(lines[i + 1:j]), run))
        i = j + 1
    return blocks


def _words(line: str) -> list[str]:
    lex = shlex.shlex(line, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    return list(lex)


def commands_in(block: Block) -> list[Command]:
    shell = block.tag in SHELL_TAGS
    if not shell and block.tag not in ("", "console"):
        return []
    out: list[Command] = []
    raw = block.text.split("\n")
    k = 0
    while k < len(raw):
        start, line = k, raw[k]
        while line.rstrip().endswith("\\") and k + 1 < len(raw):
            k += 1
            line = line.rstrip()[:-1] + " " + raw[k].lstrip()
        k += 1
        stripped = line.strip()
        if stripped.startswith("$ "):
            stripped = stripped[2:]
        elif not shell:
            continue
        piece: list[str] = []
        pieces = [piece]
        skip_target = False
        for w in _words(stripped):
            if skip_target:
                skip_target = False
            elif w in CONTROL:
                piece = []
                pieces.append(piece)
            elif set(w) <= set("<>&"):  # a redirection: drop it, its fd number (2>) and its target
                if piece and piece[-1].isdigit():
                    piece.pop()
                skip_target = True
            else:
                piece.append(w)
        for p in pieces:
            if p and p[0] in ("brainbench", ".venv/bin/brainbench"):
                out.append(Command(block.path, block.line + 1 + start, p[1:]))
    return out


def all_commands() -> list[Command]:
    return [c for f in DOC_FILES for b in fenced_blocks(f) for c in commands_in(b)]


# -- the real command line -------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _root():
    import typer.main

    from brainbench.cli import app

    return typer.main.get_command(app)


def parse(argv: list[str]) -> tuple[list[str], object]:
    """Parse like the CLI would, without running anything; returns (subcommand path, command). Raises on errors."""
    cmd, path, args = _root(), [], list(argv)
    ctx = cmd.context_class(cmd, info_name="brainbench")
    while hasattr(cmd, "list_commands"):
        if not args or args[0].startswith("-"):
            if args[:1] == ["--help"]:
                return path, cmd
            if getattr(cmd, "invoke_without_command", False):
                break  # a group that is also a command (brainbench tap --upstream ...): its own options
            raise ValueError(f"missing command after {' '.join(['brainbench', *path])}")
        sub = cmd.get_command(ctx, args[0])
        if sub is None:
            raise ValueError(f"no such command: {' '.join(['brainbench', *path, args[0]])}")
        path.append(args.pop(0))
        cmd = sub
        ctx = cmd.context_class(cmd, info_name=" ".join(["brainbench", *path]), parent=ctx)
    if "--help" in args:
        return path, cmd
    cmd.make_context(" ".join(["brainbench", *path]), args, parent=ctx.parent)
    return path, cmd


def brainbench(*args: str, cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("COLUMNS", "160")
    return subprocess.run([sys.executable, "-m", "brainbench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


# -- generated reference pages -----------------------------------------------------------------------


def test_reference_pages_match_the_code(tmp_path):
    docsgen.write(tmp_path)
    committed = ROOT / "docs" / "reference"
    fresh = sorted(p.name for p in tmp_path.iterdir())
    assert fresh == sorted(docsgen.render_all())
    stale = [n for n in fresh if not (committed / n).is_file()
             or (committed / n).read_text(encoding="utf-8") != (tmp_path / n).read_text(encoding="utf-8")]
    assert not stale, (f"docs/reference is stale ({', '.join(stale)}): the code changed. Refresh with\n"
                       f"    python -m brainbench.docsgen docs/reference\nand commit the pages.")


def test_generated_pages_carry_what_the_code_says():
    from brainbench.core.taxonomy import TAXONOMY
    from brainbench.perf.definitions import DEFINITIONS, markdown_definitions, markdown_mapping
    from brainbench.profiles.schema import Profile

    pages = docsgen.render_all()
    for fc in TAXONOMY.values():
        assert f"| `{fc.id}` | {fc.layer} |" in pages["taxonomy.md"], fc.id
    assert markdown_definitions() in pages["speed.md"] and markdown_mapping() in pages["speed.md"]
    assert len(DEFINITIONS) > 20
    for name in Profile.model_fields:
        assert f"| `{name}` |" in pages["profiles.md"], name
    for sub in ("run", "speed", "matrix", "sweep", "logs vllm", "import bfcl", "report", "export"):
        assert f"`brainbench {sub}`" in pages["cli.md"], sub
    assert "`--endpoint`" in pages["cli.md"] and "`--resume`" in pages["cli.md"]
    assert "| `passed` | bool |" in pages["export.md"] and "brainbench.export/" in pages["export.md"]
    for check in ("content_regex", "tool_called", "card", "home_state", "tool_calls_match", "bfcl"):
        assert f"`{check}`" in pages["checks.md"], check


def test_check_types_come_from_a_discriminated_union_in_the_schema():
    """When checks become typed models (a union discriminated on `type`), each is documented from the schema."""
    from typing import Annotated, Literal, Union

    from pydantic import BaseModel, Field

    class RegexCheck(BaseModel):
        """The answer matches a regular expression."""

        type: Literal["content_regex"]
        pattern: str
        """Python regex searched in the final answer."""

    class CallCheck(BaseModel):
        """A tool was called."""

        type: Literal["tool_called"]
        name: str
        min: int = 1

    class Scenario(BaseModel):
        """A task."""

        id: str
        """Stable id."""
        checks: list[Annotated[Union[RegexCheck, CallCheck], Field(discriminator="type")]] = []

    page = docsgen.checks_page(Scenario)
    assert "Check types described by the schema: 2." in page
    assert "### `content_regex`" in page and "The answer matches a regular expression." in page
    assert "| `pattern` | string | yes |  | Python regex searched in the final answer. |" in page
    assert "| `min` | integer |  | 1 |" in page
    assert "| `id` | string | yes |  | Stable id. |" in page
    rest = page.split("## Registered check types without a schema entry", 1)[1]
    assert "`content_regex`" not in rest and "`card`" in rest


def test_docsgen_check_mode_reports_a_stale_page(tmp_path):
    docsgen.write(tmp_path)
    assert docsgen.main(["--check", str(tmp_path)]) == 0
    (tmp_path / "taxonomy.md").write_text("# stale\n")
    assert docsgen.main(["--check", str(tmp_path)]) == 1


# -- the site ----------------------------------------------------------------------------------------


def test_mkdocs_build_strict(tmp_path):
    try:
        import mkdocs  # noqa: F401
    except ImportError:
        pytest.fail("mkdocs is not installed: pip install -e '.[dev]' (make install does it)")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "reference" / "cli" / "index.html").is_file()
    assert (tmp_path / "site" / "img" / "agentic-report.png").is_file()


def test_every_page_is_in_the_nav():
    import yaml

    nav = json.dumps(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"])
    pages = [p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")]
    missing = [p for p in pages if f'"{p}"' not in nav]
    assert not missing, f"pages not in mkdocs.yml's nav: {missing}"


def test_results_pages_are_dated_and_reproducible():
    """House rule: a result in the docs says when it was measured and which command reproduces it."""
    for page in sorted((ROOT / "docs" / "results").glob("*.md")):
        if page.name == "index.md":
            continue
        text = page.read_text(encoding="utf-8")
        assert re.search(r"\b20\d\d-[01]\d-[0-3]\d\b", text), f"{page.name}: no date"
        blocks = fenced_blocks(page)
        shell = [b for b in blocks if b.tag in SHELL_TAGS or re.search(r"^\$ ", b.text, re.MULTILINE)]
        assert shell, f"{page.name}: no command that reproduces it"


def test_readme_is_short_and_links_into_the_site():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.split("\n")) < 250
    assert "make demo" in text and "make test" in text
    assert "docs/img/agentic-report.png" in text
    links = re.findall(r"\]\((docs/[^)#\s]+)", text)
    assert len(links) >= 10
    missing = [lnk for lnk in links if not (ROOT / lnk).exists()]
    assert not missing, missing


# -- the commands shown in the docs ------------------------------------------------------------------


def test_the_extractor_finds_commands_and_applies_the_rules(tmp_path):
    md = tmp_path / "x.md"
    md.write_text("text `brainbench nope` in prose\n\n```sh\nbrainbench packs --json   # comment\n"
                  "docker logs x 2>&1 | brainbench logs vllm - --json > out.json\nbrainbench run \\\n"
                  "  --pack smoke\n```\n\n```\n$ brainbench brains\nbrainbench output line\n```\n\n"
                  "```yaml\nbrainbench: no\n```\n")
    got = [c.argv for b in fenced_blocks(md) for c in commands_in(b)]
    assert got == [["packs", "--json"], ["logs", "vllm", "-", "--json"], ["run", "--pack", "smoke"], ["brains"]]
    cmds = all_commands()
    assert len(cmds) > 80
    assert {c.path.name for c in cmds} >= {"README.md", "getting-started.md", "servers.md", "sweep.md"}


def test_no_command_hides_in_an_untagged_block():
    """An untagged block's unprefixed lines are output, so a command there would escape these tests: tag it sh."""
    hidden = [f"{b.path.relative_to(ROOT)}:{b.line + 1 + i}: {line.strip()}"
              for f in DOC_FILES for b in fenced_blocks(f) if b.tag in ("", "console")
              for i, line in enumerate(b.text.split("\n")) if line.strip().startswith("brainbench ")]
    assert not hidden, "tag these blocks ```sh (or prefix the command with `$ `):\n" + "\n".join(hidden)


@pytest.mark.parametrize("argv", [["run", "--no-such-option"], ["no-such-command"], ["logs", "nope", "x"],
                                  ["run", "--trials", "many"], ["export"]])
def test_parse_rejects_what_the_cli_rejects(argv):
    with pytest.raises(Exception) as err:  # noqa: B017 - click's UsageError family (typer may vendor click) or ours
        parse(argv)
    assert isinstance(err.value, ValueError) or any(c.__name__ == "UsageError" for c in type(err.value).__mro__)


def test_every_documented_command_parses():
    bad = []
    for c in all_commands():
        try:
            parse(c.argv)
        except Exception as e:  # noqa: BLE001 - every parse failure is reported with its place
            bad.append(f"{c.where()}\n    {type(e).__name__}: {e}")
    assert not bad, "commands in the docs that the CLI rejects:\n" + "\n".join(bad)


def _cheap(c: Command) -> bool:
    path, _ = parse(c.argv)
    rest = c.argv[len(path):]
    if not (set(path) & CHEAP_COMMANDS or set(rest) & CHEAP_FLAGS):
        return False
    words = [w for w in rest if not w.startswith("-")]
    return all((ROOT / w).exists() for w in words)


def test_cheap_documented_commands_run():
    seen, failures = set(), []
    cheap = [c for c in all_commands() if _cheap(c)]
    assert len(cheap) >= 5
    for c in cheap:
        key = tuple(c.argv)
        if key in seen:
            continue
        seen.add(key)
        proc = brainbench(*c.argv)
        if proc.returncode != 0:
            failures.append(f"{c.where()}\n    exit {proc.returncode}: {(proc.stderr or proc.stdout)[-400:]}")
    assert not failures, "\n".join(failures)


def _marked_blocks() -> list[Block]:
    return [b for f in DOC_FILES for b in fenced_blocks(f) if b.run]


def test_the_tour_runs_for_real(tmp_path):
    blocks = _marked_blocks()
    assert blocks and any(b.path.name == "README.md" for b in blocks)
    done: set[str] = set()
    for b in blocks:
        if b.text in done:
            continue
        done.add(b.text)
        runs = tmp_path / f"block{len(done)}"
        for c in commands_in(b):
            argv = [str(runs / w) if w.startswith("runs/") else w for w in c.argv]
            proc = brainbench(*argv, timeout=300)
            assert proc.returncode == 0, f"{c.where()}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
            for flag, value in zip(argv, argv[1:]):
                if flag in ("-o", "--out", "--html", "--md"):
                    assert Path(value).exists(), f"{c.where()}: {value} was not written"
        assert (runs / "runs" / "tour" / "report.html").is_file(), "the tour promises runs/tour/report.html"


def test_the_write_a_pack_example_validates(tmp_path):
    page = ROOT / "docs" / "howto" / "write-a-pack.md"
    yaml_blocks = [b for b in fenced_blocks(page) if b.tag == "yaml"]
    assert yaml_blocks
    name = re.search(r"^name:\s*(\S+)", yaml_blocks[0].text, re.MULTILINE).group(1)
    pack = tmp_path / "my-packs" / name
    pack.mkdir(parents=True)
    (pack / "pack.yaml").write_text(yaml_blocks[0].text)
    proc = brainbench("packs", "--pack-dir", str(tmp_path / "my-packs"), "--json")
    assert proc.returncode == 0, proc.stderr
    assert name in proc.stdout
    # and a broken copy is refused with one line naming the field
    (pack / "pack.yaml").write_text(yaml_blocks[0].text.replace("max_turns: 4", "max_turns: four"))
    proc = brainbench("packs", "--pack-dir", str(tmp_path / "my-packs"), "--json")
    assert proc.returncode == 2 and "max_turns" in proc.stderr
