"""The quality graders' public helpers, by their historical import path.

The graders themselves are check types in `brainbench.scoring.checks` (one module per family: structured,
numeric, instruct, tools, bugfind, command, stress); this module only re-exports the pure helpers that tests,
the judge and other graders use.
"""

from __future__ import annotations

from .checks.answer import answer_text, extract_json, fenced_blocks, norm_text, numbers_close, parse_number, words
from .checks.bugfind import reported_line
from .checks.command import canon_command, canon_segment, extract_command, split_script
from .checks.instruct import detect_language, sentences
from .checks.numeric import answer_line, parse_pairs
from .checks.stress import degeneracy
from .checks.structured import field_equal, flatten_fields
from .checks.tools import arg_mismatch, args_mismatch, match_arg, offered_tools

__all__ = [
    "answer_line", "answer_text", "arg_mismatch", "args_mismatch", "canon_command", "canon_segment", "degeneracy",
    "detect_language", "extract_command", "extract_json", "fenced_blocks", "field_equal", "flatten_fields",
    "match_arg", "norm_text", "numbers_close", "offered_tools", "parse_number", "parse_pairs", "reported_line",
    "sentences", "split_script", "words",
]
