"""Shell-command checks: the answer's command compared by structure with the expected ones (parsed, never run)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from typing import Literal

from pydantic import Field

from . import AttemptView, Outcome, Regex
from .answer import AnswerCheck, fenced_blocks

_SEP_OPS = {"|", "||", "&&", ";", "&", "|&"}
_SEMI = "__escaped_semicolon__"
_REDIR_OPS = {">", ">>", "<", ">&", "&>", "<&", ">|", "&>>", "<<<", "2>", "2>>", "2>&", "1>", "1>>", "1>&"}

# short options that take a value, per program (others are boolean and may be clustered: -la == -l -a)
_VALUE_SHORT: dict[str, set[str]] = {
    "grep": set("efmABCD"), "egrep": set("efmABC"), "rg": set("egtTmABCf"),
    "head": set("nc"), "tail": set("ncs"), "sort": set("ktSoT"), "cut": set("dfcb"), "tr": set(),
    "tar": set("fCT"), "xargs": set("nIPLsd"), "ssh": set("pilLRDoFJ"), "scp": set("PiFo"),
    "curl": set("oXHdAuTewF"), "wget": set("OoPTt"), "git": set("mCcb"), "sed": set("ef"), "awk": set("Fvf"),
    "du": set("dtB"), "df": set("tBx"), "ps": set("opuUCt"), "kill": set("sn"), "docker": set("pvewnu"),
    "uniq": set("fsw"), "wc": set(), "split": set("lbna"), "nc": set("pw"), "ln": set(), "chmod": set(),
    "useradd": set("mdgGsu"), "jq": set(), "zip": set(), "unzip": set("d"), "rsync": set("e"),
    "mkdir": set("m"), "date": set("d"), "journalctl": set("unp"), "systemctl": set(), "ls": set("I"),
    "find": set(), "nl": set("sbw"), "paste": set("d"), "column": set("ts"), "diff": set(), "seq": set("sf"),
    "openssl": set(), "gzip": set("S"), "python": set("cm"), "python3": set("cm"), "timeout": set("sk"),
    "pgrep": set("u"), "pkill": set("u"), "lsof": set("ipu"), "ss": set(), "chown": set(), "cp": set("t"),
    "mv": set("t"), "touch": set("dtr"), "stat": set("c"), "shuf": set("n"), "head.": set(),
}
# long options that take a value when written `--opt value` (with `=` they always do)
_VALUE_LONG: dict[str, set[str]] = {
    "grep": {"--include", "--exclude", "--exclude-dir", "--regexp", "--file", "--max-count", "--context",
             "--after-context", "--before-context", "--color", "--colour"},
    "head": {"--lines", "--bytes"}, "tail": {"--lines", "--bytes"}, "sort": {"--key", "--field-separator"},
    "cut": {"--delimiter", "--fields"}, "tar": {"--file", "--directory", "--exclude"},
    "du": {"--max-depth"}, "curl": {"--output", "--request", "--header", "--data"},
    "git": {"--message", "--author", "--since", "--until", "--format", "--pretty"},
    "docker": {"--name", "--publish", "--volume", "--env"}, "xargs": {"--max-args"},
    "journalctl": {"--unit", "--since", "--until", "--priority"}, "ls": {"--sort", "--ignore"},
}
# long option -> canonical short option, per program
_ALIASES: dict[str, dict[str, str]] = {
    "grep": {"--recursive": "-r", "--ignore-case": "-i", "--line-number": "-n", "--count": "-c",
             "--invert-match": "-v", "--files-with-matches": "-l", "--word-regexp": "-w", "--extended-regexp": "-E",
             "--fixed-strings": "-F", "--only-matching": "-o", "--quiet": "-q", "--silent": "-q",
             "--regexp": "-e", "--max-count": "-m", "--dereference-recursive": "-R", "--with-filename": "-H"},
    "head": {"--lines": "-n", "--bytes": "-c"}, "tail": {"--lines": "-n", "--bytes": "-c", "--follow": "-f"},
    "ls": {"--all": "-a", "--human-readable": "-h", "--recursive": "-R", "--reverse": "-r", "--almost-all": "-A"},
    "du": {"--human-readable": "-h", "--summarize": "-s", "--all": "-a", "--max-depth": "-d"},
    "df": {"--human-readable": "-h"}, "sort": {"--numeric-sort": "-n", "--reverse": "-r", "--unique": "-u",
                                              "--human-numeric-sort": "-h", "--key": "-k", "--field-separator": "-t"},
    "cut": {"--delimiter": "-d", "--fields": "-f"}, "wc": {"--lines": "-l", "--words": "-w", "--bytes": "-c", "--chars": "-m"},
    "uniq": {"--count": "-c", "--repeated": "-d", "--unique": "-u", "--ignore-case": "-i"},
    "rm": {"--recursive": "-r", "--force": "-f"}, "cp": {"--recursive": "-r", "--archive": "-a"},
    "mkdir": {"--parents": "-p"}, "tar": {"--create": "-c", "--extract": "-x", "--gzip": "-z", "--file": "-f",
                                          "--verbose": "-v", "--list": "-t", "--directory": "-C", "--bzip2": "-j", "--xz": "-J"},
    "xargs": {"--null": "-0", "--max-args": "-n"}, "curl": {"--output": "-o", "--request": "-X", "--header": "-H",
                                                            "--silent": "-s", "--location": "-L", "--data": "-d"},
    "git": {"--message": "-m", "--all": "-a"}, "chmod": {"--recursive": "-R"}, "chown": {"--recursive": "-R"},
    "ln": {"--symbolic": "-s", "--force": "-f"}, "ps": {}, "docker": {"--detach": "-d", "--publish": "-p",
                                                                      "--volume": "-v", "--env": "-e", "--interactive": "-i", "--tty": "-t"},
}
_SAME_FLAGS: dict[str, dict[str, str]] = {
    "grep": {"-R": "-r"}, "cp": {"-R": "-r"}, "rm": {"-R": "-r"},
}
_FIND_NOARG = {"-print", "-print0", "-delete", "-ls", "-prune", "-empty", "-executable", "-readable", "-writable",
               "-quit", "-depth", "-xdev", "-follow", "-mount", "-true", "-false", "-nouser", "-nogroup"}


def _norm_path(tok: str) -> str:
    if tok.startswith("./") and len(tok) > 2:
        tok = tok[2:]
    if len(tok) > 1 and tok.endswith("/") and not tok.endswith("//"):
        tok = tok.rstrip("/") or "/"
    return tok


def _lex(line: str) -> list[str]:
    lex = shlex.shlex(line, posix=True, punctuation_chars="|&;<>")
    lex.whitespace_split = True
    lex.commenters = ""
    toks = list(lex)
    out: list[str] = []
    for t in toks:  # re-glue fd redirections: '2' '>' -> '2>'; '2>' '&' '1' handled as op '>&'
        if t in (">", ">>", ">&") and out and out[-1].isdigit() and out[-1] in ("1", "2"):
            out[-1] = out[-1] + t
        else:
            out.append(t)
    return out


def split_script(script: str) -> list[list[str]]:
    """Split a command line into segments and separators: [[argv...], ['|'], [argv...], ...]."""
    script = re.sub(r"\\\n", " ", script.strip())
    script = re.sub(r"\\;|';'|\";\"", f" {_SEMI} ", script)  # find -exec terminator: not a separator
    out: list[list[str]] = []
    for line in [ln for ln in script.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]:
        if out:
            out.append([";"])
        cur: list[str] = []
        for t in _lex(line):
            if t in _SEP_OPS:
                out.append(cur)
                out.append([t])
                cur = []
            else:
                cur.append(t)
        out.append(cur)
    return [seg for seg in out if seg]


def _canon_find(args: list[str]) -> tuple:
    paths, i = [], 0
    while i < len(args) and not args[i].startswith(("-", "(", "!")):
        paths.append(_norm_path(args[i]))
        i += 1
    terms: list[tuple[str, ...]] = []
    logic = False
    while i < len(args):
        t = args[i]
        if t in ("-o", "-or", "!", "-not", "(", ")", "\\(", "\\)", "-a", "-and"):
            logic = logic or t not in ("-a", "-and")
            terms.append((t,))
            i += 1
        elif t in ("-exec", "-execdir", "-ok"):
            j = i + 1
            while j < len(args) and args[j] not in (";", "+", _SEMI):
                j += 1
            terms.append(tuple(";" if a == _SEMI else a for a in args[i:j + 1]))
            i = j + 1
        elif t in _FIND_NOARG:
            terms.append((t,))
            i += 1
        else:
            terms.append((t, args[i + 1] if i + 1 < len(args) else ""))
            i += 2
    if not logic:  # a plain AND of tests commutes; actions keep their order at the end
        actions = [x for x in terms if x[0] in ("-exec", "-execdir", "-ok", "-delete", "-print", "-print0", "-ls")]
        tests = sorted(x for x in terms if x not in actions and x[0] not in ("-a", "-and"))
        terms = tests + actions
    return ("find", tuple(paths or ["."]), tuple(terms))


def canon_segment(argv: list[str], ignore_flags: Iterable[str] = ()) -> tuple:
    """A simple command in canonical form: (program, flags, options, positionals, redirections)."""
    argv = list(argv)
    env = []
    while argv and re.match(r"^[A-Za-z_]\w*=", argv[0]):
        env.append(argv.pop(0))
    if not argv:
        return ("", tuple(sorted(env)))
    prog = argv[0].rsplit("/", 1)[-1] if "/" in argv[0] and not argv[0].startswith(".") else argv[0]
    rest, redirs = [], []
    i = 1
    while i < len(argv):
        t = argv[i]
        op = next((o for o in sorted(_REDIR_OPS, key=len, reverse=True) if t == o), None)
        if op:
            redirs.append((op[1:] if op.startswith("1") else op, argv[i + 1] if i + 1 < len(argv) else ""))
            i += 2
            continue
        m = re.match(r"^(\d?)(>>|>&|>|<)(.+)$", t)
        if m and not t.startswith("-"):
            redirs.append(((m.group(1) if m.group(1) != "1" else "") + m.group(2), m.group(3)))
        else:
            rest.append(t)
        i += 1
    if prog == "tar" and rest and re.fullmatch(r"[A-Za-z]+", rest[0]) and set(rest[0]) <= set("cxtrupzjJvfC"):
        rest[0] = "-" + rest[0]  # old-style `tar czf` == `tar -czf`
    if prog == "find":
        return _canon_find(rest) + (tuple(sorted(redirs)), tuple(sorted(env)))
    vshort, vlong = _VALUE_SHORT.get(prog, set()), _VALUE_LONG.get(prog, set())
    aliases, same = _ALIASES.get(prog, {}), _SAME_FLAGS.get(prog, {})
    flags: set[str] = set()
    opts: list[tuple[str, str]] = []
    pos: list[str] = []
    i, dashdash = 0, False
    while i < len(rest):
        t = rest[i]
        if dashdash or t == "-" or not t.startswith("-") or re.match(r"^-\d+(\.\d+)?$", t) and prog not in ("head", "tail"):
            if t == "--" and not dashdash:
                dashdash = True
            else:
                pos.append(_norm_path(t))
            i += 1
            continue
        if prog in ("head", "tail") and re.match(r"^-\d+$", t):
            opts.append(("-n", t[1:]))
            i += 1
            continue
        if t.startswith("--"):
            name, eq, val = t.partition("=")
            canon = aliases.get(name, name)
            if eq:
                opts.append((canon, val))
            elif name in vlong and i + 1 < len(rest):
                opts.append((canon, rest[i + 1]))
                i += 1
            else:
                flags.add(canon)
            i += 1
            continue
        body = t[1:]
        for j, ch in enumerate(body):
            f = same.get(f"-{ch}", f"-{ch}")
            if ch in vshort:
                val = body[j + 1:]
                if not val and i + 1 < len(rest):
                    i += 1
                    val = rest[i]
                opts.append((f, val))
                break
            flags.add(f)
        i += 1
    ignore = set(ignore_flags)
    flags -= ignore
    opts = [o for o in opts if o[0] not in ignore]
    return (prog, tuple(sorted(flags)), tuple(sorted(opts)), tuple(pos), tuple(sorted(redirs)), tuple(sorted(env)))


def canon_command(script: str, ignore_flags: Iterable[str] = ()) -> tuple:
    """The canonical structure of a whole command line (segments and separators)."""
    out = []
    for seg in split_script(script):
        if len(seg) == 1 and seg[0] in _SEP_OPS:
            out.append(("op", seg[0]))
        else:
            out.append(canon_segment(seg, ignore_flags))
    return tuple(out)


def extract_command(text: str) -> str:
    """The command in an answer: the first fenced block, else a `$ ` line, else inline code, else line 1."""
    blocks = fenced_blocks(text)
    if blocks:
        body = blocks[0][1]
    else:
        dollar = re.findall(r"(?m)^\s*\$\s+(.+)$", text)
        inline = re.findall(r"`([^`\n]+)`", text)
        body = dollar[0] if dollar else inline[0] if inline else (text.strip().splitlines() or [""])[0]
    lines = [re.sub(r"^\s*\$\s+", "", ln) for ln in body.strip().splitlines()]
    return "\n".join(ln for ln in lines if ln.strip())


class CliCommand(AnswerCheck):
    """The answer's command has the same structure as one of `expected` (parsed with shlex, never run): same
    programs, separators, flags as sets (-la == -al == -l -a; long aliases folded), option values, positional
    arguments in order, redirections."""

    type: Literal["cli_command"] = "cli_command"
    expected: list[str] = Field(min_length=1)
    """Acceptable command lines."""
    ignore_flags: list[str] = Field(default_factory=list)
    """Flags dropped on both sides before comparing."""
    forbidden: list[Regex] = Field(default_factory=list)
    """Regular expressions that must not match the raw command."""

    def run(self, view: AttemptView) -> Outcome:
        cmd = extract_command(self.answer(view))
        if not cmd:
            return "no command in the answer"
        for pat in self.forbidden:
            if re.search(pat, cmd):
                return f"command uses forbidden /{pat}/"
        try:
            got = canon_command(cmd, self.ignore_flags)
        except ValueError as e:
            return f"cannot parse the command ({e}): {cmd[:120]!r}"
        for exp in self.expected:
            if canon_command(exp, self.ignore_flags) == got:
                return None
        return f"command {cmd[:160]!r} differs from {self.expected[0]!r}"
