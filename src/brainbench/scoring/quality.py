"""Quality graders: deterministic checks for the single-turn quality packs.

Every grader is a pure function `(view, spec) -> None | reason` registered in CHECKS under the name a
scenario's `checks:` list uses, so stored attempts can be re-scored at any time without a model.

    answer text     json_schema, json_only, extract_fields, numeric_answer, bug_report, cli_command
    instructions    word_count, sentence_count, paragraph_count, bullet_count, numbered_count, section_count,
                    line_count, char_count, forbidden_words, required_words, keyword_count, letter_case,
                    language, starts_with, ends_with, forbidden_chars
    tool calls      tool_calls_match (by value and type; parallel/multiple; bipartite), tool_call_count,
                    tool_args_schema (arguments validate against the offered tool's JSON schema)
    boundaries      nonempty_answer, no_degenerate_repetition, finish_not_length, tool_arg_length

The pure helpers (extract_json, parse_number, canon_command, match_arg, ...) are public so tests and other
graders can use them directly.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import zlib
from typing import Any, Iterable

import jsonschema

from .checks import AttemptView, get_path, register


# ================================================================================================
# answer text helpers
# ================================================================================================

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+.-]*)[^\n]*\n(.*?)(?:```|$)", re.DOTALL)


def answer_text(view: AttemptView, spec: dict | None = None) -> str:
    """The graded answer: the last non-empty content (or, with `turn: first`, the first turn's)."""
    if spec and spec.get("turn") == "first":
        turns = view.record.turns
        return turns[0].result.content if turns else ""
    return view.final_content


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """Every ``` fenced block as (language tag, body)."""
    return [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]


def extract_json(text: str, strict: bool = False) -> tuple[Any, str | None]:
    """Parse the JSON value in an answer: (value, None) or (None, why not).

    strict: the whole answer must be one JSON value (surrounding whitespace allowed, nothing else).
    Otherwise: the whole answer, else the first ```json fenced block, else the first balanced {...}/[...].
    """
    stripped = text.strip()
    try:
        return json.loads(stripped), None
    except json.JSONDecodeError as e:
        if strict:
            return None, f"answer is not pure JSON ({e.msg} at char {e.pos})"
    for _lang, body in fenced_blocks(text):
        try:
            return json.loads(body.strip()), None
        except json.JSONDecodeError:
            continue
    dec = json.JSONDecoder()
    for i, ch in enumerate(text):
        if ch in "{[":
            try:
                value, _ = dec.raw_decode(text, i)
                return value, None
            except json.JSONDecodeError:
                continue
    return None, "no JSON value found in the answer"


_NUM_TOKEN = re.compile(r"[-+−]?(?:\d[\d,_ ]*\d|\d)?(?:\.\d+)?(?:[eE][-+]?\d+)?")


def parse_number(value: Any) -> float | None:
    """A number from a value or from text: '1,234.5', '$12', '-3/4', '45%', '2.5e3', '3 cm' (first number)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        return None
    s = value.strip().replace("−", "-").replace("\u2009", "").replace("\u00a0", "")
    s = re.sub(r"^[\s$€£¥~≈]+", "", s).replace("$", "").replace("€", "").replace("£", "")
    m = re.match(r"^([-+]?\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)\b", s)
    if m and float(m.group(2)) != 0:
        return float(m.group(1)) / float(m.group(2))
    m = re.match(r"^[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?", s)
    if not m or not re.search(r"\d", m.group(0)):
        return None
    try:
        return float(m.group(0).replace(",", ""))
    except ValueError:
        return None


def numbers_close(expected: float, actual: float, rel_tol: float = 1e-6, abs_tol: float = 1e-9) -> bool:
    return math.isclose(expected, actual, rel_tol=rel_tol, abs_tol=abs_tol)


def norm_text(s: str) -> str:
    """Case-folded, whitespace-collapsed, trailing punctuation dropped."""
    return " ".join(s.casefold().split()).strip(" .;:,!")


def words(text: str) -> list[str]:
    return re.findall(r"[A-Za-zÀ-ÖØ-öø-ÿ0-9]+(?:['’-][A-Za-zÀ-ÖØ-öø-ÿ0-9]+)*", text)


def _bounds(n: int, spec: dict, what: str) -> str | None:
    if "exact" in spec and n != spec["exact"]:
        return f"{n} {what}, expected exactly {spec['exact']}"
    if "min" in spec and n < spec["min"]:
        return f"{n} {what}, expected at least {spec['min']}"
    if "max" in spec and n > spec["max"]:
        return f"{n} {what}, expected at most {spec['max']}"
    return None


# ================================================================================================
# structured output and extraction
# ================================================================================================


@register("json_only")
def check_json_only(view: AttemptView, spec: dict) -> str | None:
    """The whole answer is one JSON value (no prose, no code fence unless `allow_fence`)."""
    text = answer_text(view, spec).strip()
    if spec.get("allow_fence"):
        blocks = fenced_blocks(text)
        if len(blocks) == 1 and text.startswith("```") and text.rstrip().endswith("```"):
            text = blocks[0][1]
    _, err = extract_json(text, strict=True)
    return err


@register("json_schema")
def check_json_schema(view: AttemptView, spec: dict) -> str | None:
    """The answer's JSON validates against `schema` (a real JSON Schema validator, Draft 2020-12) and
    has the values in `fields` ({dotted.path: expected}). `strict: true` demands a pure-JSON answer."""
    value, err = extract_json(answer_text(view, spec), strict=bool(spec.get("strict")))
    if err:
        return err
    schema = spec.get("schema") or {}
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    if errors:
        e = jsonschema.exceptions.best_match(errors) or errors[0]
        where = "/".join(str(p) for p in e.absolute_path) or "(root)"
        return f"schema violation at {where}: {e.message[:200]}"
    for path, want in (spec.get("fields") or {}).items():
        try:
            got = get_path(value, path)
        except (KeyError, IndexError):
            return f"field {path} missing"
        if not match_arg(want, got):
            return f"field {path} = {got!r}, expected {want!r}"
    return None


def flatten_fields(data: Any, prefix: str = "") -> dict[str, Any]:
    """Atomic fields by dotted path (lists by index)."""
    if isinstance(data, dict) and not _is_op(data):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(flatten_fields(v, f"{prefix}{k}."))
        return out
    if isinstance(data, list) and data and not _is_op(data):
        out = {}
        for i, v in enumerate(data):
            out.update(flatten_fields(v, f"{prefix}{i}."))
        return out
    return {prefix[:-1]: data}


def field_equal(expected: Any, actual: Any) -> bool:
    """Extraction equality: operators as in match_arg; numbers also from numeric strings ('$1,200' == 1200);
    strings case/space/trailing-punctuation-insensitive; None matches null, '' and 'n/a'."""
    if _is_op(expected):
        return match_arg(expected, actual)
    if expected is None:
        return actual is None or (isinstance(actual, str) and norm_text(actual) in ("", "n/a", "none", "null", "unknown"))
    if isinstance(expected, bool):
        if isinstance(actual, str):
            return norm_text(actual) in (("true", "yes") if expected else ("false", "no"))
        return actual is expected
    if isinstance(expected, (int, float)):
        got = parse_number(actual)
        return got is not None and numbers_close(float(expected), got, rel_tol=1e-6, abs_tol=1e-6)
    if isinstance(expected, str):
        if isinstance(actual, (int, float)) and not isinstance(actual, bool):
            n = parse_number(expected)
            return n is not None and numbers_close(n, float(actual))
        return isinstance(actual, str) and norm_text(expected) == norm_text(actual)
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(field_equal(e, a) for e, a in zip(expected, actual))
    return expected == actual


@register("extract_fields")
def check_extract_fields(view: AttemptView, spec: dict) -> str | None:
    """Fraction of atomic fields correct >= `threshold` (default 1.0). `expected` is a nested object; each
    leaf is one field. Extra fields in the answer are ignored; a missing field counts as wrong."""
    value, err = extract_json(answer_text(view, spec), strict=bool(spec.get("strict")))
    if err:
        return err
    expected = flatten_fields(spec["expected"])
    wrong = []
    for path, want in expected.items():
        try:
            got = get_path(value, path)
        except (KeyError, IndexError, TypeError):
            wrong.append(f"{path} (missing)")
            continue
        if not field_equal(want, got):
            wrong.append(f"{path}={got!r}")
    frac = 1 - len(wrong) / max(1, len(expected))
    threshold = float(spec.get("threshold", 1.0))
    if frac + 1e-9 < threshold:
        return f"{len(expected) - len(wrong)}/{len(expected)} fields correct ({frac:.0%} < {threshold:.0%}); wrong: {', '.join(wrong[:6])}"
    return None


# ================================================================================================
# math
# ================================================================================================

_ANSWER_LINE = re.compile(r"(?im)^[ \t>*_#-]*(?:\\\[|\$\$?)?[ \t]*\**(?:final[ \t]+)?answer\**[ \t]*\**[ \t]*[:=][ \t]*(.+?)[ \t*_]*$")


def answer_line(text: str) -> str | None:
    """The text after the last `ANSWER:` line."""
    found = _ANSWER_LINE.findall(text)
    if not found:
        return None
    return re.sub(r"\s*(\\\]|\$\$?)\s*$", "", found[-1].strip()).strip("`$* ")  # LaTeX \[ ... \] or $ ... $


def parse_pairs(line: str) -> dict[str, str]:
    """'x=3, y = -2; total=1,200' -> {'x': '3', 'y': '-2', 'total': '1,200'}."""
    parts = re.split(r"[;,]\s*(?=[A-Za-z_][\w ]*?=)", line)
    out = {}
    for p in parts:
        k, sep, v = p.partition("=")
        if sep:
            out[norm_text(k).replace(" ", "_")] = v.strip()
    return out


@register("numeric_answer")
def check_numeric_answer(view: AttemptView, spec: dict) -> str | None:
    """The final `ANSWER:` line holds the number(s): `value` (single) or `values` ({key: number}, written
    `ANSWER: key=value, ...`), within `rel_tol` (default 1e-4) / `abs_tol` (default 1e-6). Without an
    ANSWER line, `fallback: last_number` takes the last number in the answer; otherwise it fails."""
    text = answer_text(view, spec)
    rel, ab = float(spec.get("rel_tol", 1e-4)), float(spec.get("abs_tol", 1e-6))
    line = answer_line(text)
    if line is None:
        if spec.get("fallback") == "last_number" and "value" in spec:
            nums = re.findall(r"[-−]?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?", text)
            line = nums[-1] if nums else None
        if line is None:
            return "no final 'ANSWER:' line"
    if "values" in spec:
        pairs = parse_pairs(line)
        for key, want in spec["values"].items():
            k = norm_text(str(key)).replace(" ", "_")
            if k not in pairs:
                return f"ANSWER line has no {key}= (got {line!r})"
            got = parse_number(pairs[k])
            if got is None or not numbers_close(float(want), got, rel, ab):
                return f"{key}={pairs[k]!r}, expected {want}"
        return None
    value = line.split("=", 1)[1] if "=" in line and parse_number(line) is None else line
    got = parse_number(value)
    want = float(spec["value"])
    if got is None:
        return f"ANSWER {line!r} is not a number"
    if not numbers_close(want, got, rel, ab):
        return f"ANSWER {got:g}, expected {want:g}"
    return None


# ================================================================================================
# verifiable instructions
# ================================================================================================


@register("word_count")
def check_word_count(view: AttemptView, spec: dict) -> str | None:
    return _bounds(len(words(answer_text(view, spec))), spec, "words")


def sentences(text: str) -> list[str]:
    text = re.sub(r"^\s*(?:[-*•+]|\d+[.)])\s+", "", text, flags=re.M)
    parts = re.split(r"(?<=[.!?])[\"')\]]*\s+|\n\s*\n", text.strip())
    return [p for p in parts if re.search(r"\w", p)]


@register("sentence_count")
def check_sentence_count(view: AttemptView, spec: dict) -> str | None:
    return _bounds(len(sentences(answer_text(view, spec))), spec, "sentences")


@register("paragraph_count")
def check_paragraph_count(view: AttemptView, spec: dict) -> str | None:
    paras = [p for p in re.split(r"\n\s*\n", answer_text(view, spec).strip()) if p.strip()]
    return _bounds(len(paras), spec, "paragraphs")


_BULLET = re.compile(r"^[ \t]*[-*•+][ \t]+\S", re.M)
_NUMBERED = re.compile(r"^[ \t]*\d+[.)][ \t]+\S", re.M)


@register("bullet_count")
def check_bullet_count(view: AttemptView, spec: dict) -> str | None:
    return _bounds(len(_BULLET.findall(answer_text(view, spec))), spec, "bullet points")


@register("numbered_count")
def check_numbered_count(view: AttemptView, spec: dict) -> str | None:
    return _bounds(len(_NUMBERED.findall(answer_text(view, spec))), spec, "numbered items")


@register("section_count")
def check_section_count(view: AttemptView, spec: dict) -> str | None:
    """Sections = lines matching `marker` (a regex; default a Markdown heading)."""
    marker = spec.get("marker", r"^[ \t]*#{1,6}[ \t]+\S")
    n = len(re.findall(marker, answer_text(view, spec), re.M | (re.I if spec.get("ignore_case") else 0)))
    return _bounds(n, spec, "sections")


@register("line_count")
def check_line_count(view: AttemptView, spec: dict) -> str | None:
    lines = [ln for ln in answer_text(view, spec).strip().splitlines() if ln.strip()]
    return _bounds(len(lines), spec, "non-empty lines")


@register("char_count")
def check_char_count(view: AttemptView, spec: dict) -> str | None:
    return _bounds(len(answer_text(view, spec).strip()), spec, "characters")


def _word_re(w: str) -> re.Pattern:
    return re.compile(r"(?<![\w])" + re.escape(w) + r"(?![\w])", re.I)


@register("forbidden_words")
def check_forbidden_words(view: AttemptView, spec: dict) -> str | None:
    text = answer_text(view, spec)
    bad = [w for w in spec["words"] if _word_re(w).search(text)]
    return f"uses forbidden word(s): {', '.join(bad)}" if bad else None


@register("required_words")
def check_required_words(view: AttemptView, spec: dict) -> str | None:
    text = answer_text(view, spec)
    missing = [w for w in spec["words"] if not _word_re(w).search(text)]
    return f"missing required word(s): {', '.join(missing)}" if missing else None


@register("keyword_count")
def check_keyword_count(view: AttemptView, spec: dict) -> str | None:
    n = len(_word_re(spec["word"]).findall(answer_text(view, spec)))
    return _bounds(n, spec, f"uses of {spec['word']!r}")


@register("forbidden_chars")
def check_forbidden_chars(view: AttemptView, spec: dict) -> str | None:
    text = answer_text(view, spec)
    bad = sorted({c for c in spec["chars"] if c in text})
    return f"contains forbidden character(s) {''.join(bad)!r}" if bad else None


@register("letter_case")
def check_letter_case(view: AttemptView, spec: dict) -> str | None:
    """mode: upper | lower | title (every word starts upper-case; short function words may be lower)."""
    text = answer_text(view, spec).strip()
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return "answer has no letters"
    mode = spec["mode"]
    if mode == "upper" and any(c.islower() for c in letters):
        return "answer is not all upper-case"
    if mode == "lower" and any(c.isupper() for c in letters):
        return "answer is not all lower-case"
    if mode == "title":
        small = {"a", "an", "the", "and", "or", "of", "in", "on", "to", "for", "at", "by", "with"}
        ws = [w for w in words(text) if w[0].isalpha()]
        bad = [w for i, w in enumerate(ws) if not w[0].isupper() and not (i and w in small)]
        if bad:
            return f"not title case: {', '.join(bad[:5])}"
    return None


@register("starts_with")
def check_starts_with(view: AttemptView, spec: dict) -> str | None:
    text, want = " ".join(answer_text(view, spec).split()).lower(), " ".join(spec["text"].split()).lower()
    return None if text.startswith(want) else f"answer does not start with {spec['text']!r}"


@register("ends_with")
def check_ends_with(view: AttemptView, spec: dict) -> str | None:
    text, want = " ".join(answer_text(view, spec).split()).lower(), " ".join(spec["text"].split()).lower()
    return None if text.endswith(want) else f"answer does not end with {spec['text']!r}"


_STOPWORDS: dict[str, set[str]] = {
    "en": set("the and is are was were of to in that it for with as on be this have not but by from they you at or which".split()),
    "fr": set("le la les et est sont de des du un une que qui dans pour pas sur avec ce il elle nous vous au aux par".split()),
    "es": set("el la los las y es son de del un una que en para con por no se su al lo como pero más muy".split()),
    "de": set("der die das und ist sind ein eine nicht mit zu den von auf für sich dem des im auch es wir sie".split()),
    "it": set("il lo la gli le e è sono di del della un una che non per con su nel sono anche come più".split()),
    "pt": set("o a os as e é são de do da um uma que não para com em no na por se mais como".split()),
    "nl": set("de het een en is zijn van dat niet met voor op te in ook maar er ze wij".split()),
}


def detect_language(text: str) -> tuple[str | None, dict[str, int]]:
    """Stop-word vote over en/fr/es/de/it/pt/nl: (language or None when too short to tell, votes)."""
    toks = [w.lower() for w in words(text)]
    votes = {lang: sum(1 for t in toks if t in sw) for lang, sw in _STOPWORDS.items()}
    best = max(votes, key=lambda k: votes[k])
    ranked = sorted(votes.values(), reverse=True)
    if ranked[0] < 3 or ranked[0] < 1.5 * ranked[1]:
        return None, votes
    return best, votes


@register("language")
def check_language(view: AttemptView, spec: dict) -> str | None:
    lang, votes = detect_language(answer_text(view, spec))
    if lang != spec["lang"]:
        return f"answer language is {lang or 'unclear'}, expected {spec['lang']} (stop-word votes {votes})"
    return None


# ================================================================================================
# tool calls: by value and type
# ================================================================================================


def _is_op(x: Any) -> bool:
    return isinstance(x, dict) and bool(x) and all(isinstance(k, str) and k.startswith("$") for k in x)


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "integer" if v.is_integer() else "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def arg_mismatch(expected: Any, actual: Any, where: str = "") -> str | None:
    """Why `actual` does not match `expected` (None when it does). Values by value AND type:
    strings case/space-insensitively, numbers numerically (5 == 5.0, but never "5" == 5), booleans
    strictly, lists in order, objects key by key. Operators: {"$any": [..]}, {"$regex": ".."},
    {"$approx": x, "$tol": t}, {"$type": "integer"}, {"$contains": ".."}, {"$set": [..]} (any order),
    {"$optional": v} / {"$absent": true} (inside an object: may be missing / must be missing)."""
    at = where or "value"
    if _is_op(expected):
        if "$any" in expected:
            ok = any(arg_mismatch(e, actual, where) is None for e in expected["$any"])
            return None if ok else f"{at}={actual!r}, expected one of {expected['$any']!r}"
        if "$regex" in expected:
            ok = isinstance(actual, str) and re.search(expected["$regex"], actual, re.I | re.S)
            return None if ok else f"{at}={actual!r} does not match /{expected['$regex']}/"
        if "$approx" in expected:
            tol = float(expected.get("$tol", 1e-6))
            ok = isinstance(actual, (int, float)) and not isinstance(actual, bool) and abs(actual - expected["$approx"]) <= tol
            return None if ok else f"{at}={actual!r}, expected {expected['$approx']}±{tol}"
        if "$type" in expected:
            t = _json_type(actual)
            want = expected["$type"]
            ok = t == want or (want == "number" and t == "integer")
            return None if ok else f"{at} has type {t}, expected {want}"
        if "$contains" in expected:
            ok = isinstance(actual, str) and norm_text(expected["$contains"]) in norm_text(actual)
            return None if ok else f"{at}={actual!r} does not contain {expected['$contains']!r}"
        if "$set" in expected:
            want = list(expected["$set"])
            if not isinstance(actual, list) or len(actual) != len(want):
                return f"{at}={actual!r}, expected the items {want!r} in any order"
            ok = _bipartite([[arg_mismatch(w, a) is None for a in actual] for w in want]) is not None
            return None if ok else f"{at}={actual!r}, expected the items {want!r} in any order"
        if "$optional" in expected:
            return arg_mismatch(expected["$optional"], actual, where)
        if "$absent" in expected:
            return f"{at} should be absent"
        return f"unknown operator in {expected!r}"
    if isinstance(expected, bool) or isinstance(actual, bool):
        return None if expected is actual else f"{at}={actual!r}, expected {expected!r}"
    if isinstance(expected, (int, float)):
        if not isinstance(actual, (int, float)):
            return f"{at}={actual!r} ({_json_type(actual)}), expected the number {expected!r}"
        return None if numbers_close(float(expected), float(actual), 1e-9, 1e-9) else f"{at}={actual!r}, expected {expected!r}"
    if isinstance(expected, str):
        if not isinstance(actual, str):
            return f"{at}={actual!r} ({_json_type(actual)}), expected the string {expected!r}"
        return None if " ".join(expected.casefold().split()) == " ".join(actual.casefold().split()) else \
            f"{at}={actual!r}, expected {expected!r}"
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return f"{at}={actual!r}, expected {expected!r}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            why = arg_mismatch(e, a, f"{at}[{i}]")
            if why:
                return why
        return None
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{at}={actual!r}, expected an object"
        return args_mismatch(expected, actual, exact=False, where=at)
    if expected is None:
        return None if actual is None else f"{at}={actual!r}, expected null"
    return None if expected == actual else f"{at}={actual!r}, expected {expected!r}"


def match_arg(expected: Any, actual: Any) -> bool:
    return arg_mismatch(expected, actual) is None


def args_mismatch(expected: dict, actual: dict, exact: bool = True, where: str = "") -> str | None:
    """Object match: every expected key present and matching (unless $optional/$absent); with `exact`,
    no keys beyond the expected ones."""
    pre = f"{where}." if where else ""
    for k, want in expected.items():
        if _is_op(want) and "$absent" in want:
            if k in actual:
                return f"{pre}{k} should not be given"
            continue
        if k not in actual:
            if _is_op(want) and "$optional" in want:
                continue
            return f"missing argument {pre}{k}"
        why = arg_mismatch(want, actual[k], f"{pre}{k}")
        if why:
            return why
    if exact:
        extra = sorted(set(actual) - set(expected))
        if extra:
            return f"unexpected argument(s) {', '.join(pre + e for e in extra)}"
    return None


def _bipartite(ok: list[list[bool]]) -> list[int] | None:
    """Perfect matching of rows (expected) to distinct columns (actual); None when there is none."""
    match_col: dict[int, int] = {}

    def augment(r: int, seen: set[int]) -> bool:
        for c, good in enumerate(ok[r]):
            if good and c not in seen:
                seen.add(c)
                if c not in match_col or augment(match_col[c], seen):
                    match_col[c] = r
                    return True
        return False

    for r in range(len(ok)):
        if not augment(r, set()):
            return None
    out = [0] * len(ok)
    for c, r in match_col.items():
        out[r] = c
    return out


def graded_calls(view: AttemptView, spec: dict) -> list[dict[str, Any]]:
    """The calls a tool check looks at: all turns, or only the first turn's (`turn: first`); calls written
    as text count unless `text_calls: false`."""
    if spec.get("turn") == "first":
        turns = view.record.turns[:1]
        calls = [{"name": c.name, "arguments": c.arguments, "in_text": c.in_text} for t in turns for c in t.result.tool_calls]
    else:
        calls = list(view.calls)
    if spec.get("text_calls", True) is False:
        calls = [c for c in calls if not c["in_text"]]
    return calls


@register("tool_calls_match")
def check_tool_calls_match(view: AttemptView, spec: dict) -> str | None:
    """The model's calls match `calls` ([{name, args, exact?}]): each expected call by a distinct actual call
    (bipartite, so parallel calls may come in any order unless `order: strict`), arguments by value and
    type (`exact: true` by default: no extra arguments). `count: exact` (default) forbids extra calls;
    `count: at_least` allows them. `calls: []` means no call at all."""
    calls = graded_calls(view, spec)
    want = spec.get("calls") or []
    count = spec.get("count", "exact")
    if count == "exact" and len(calls) != len(want):
        names = [c["name"] for c in calls]
        return f"{len(calls)} call(s) {names}, expected {len(want)} {[w['name'] for w in want]}"
    if len(calls) < len(want):
        return f"{len(calls)} call(s), expected at least {len(want)}"

    def why(w: dict, c: dict) -> str | None:
        if c["name"] != w["name"]:
            return f"called {c['name']}, expected {w['name']}"
        if c["arguments"] is None:
            return f"{c['name']}: arguments are not a JSON object"
        return args_mismatch(w.get("args") or {}, c["arguments"], exact=w.get("exact", spec.get("exact", True)),
                             where="")

    if spec.get("order") == "strict":
        i = 0
        for w in want:
            while i < len(calls) and why(w, calls[i]) is not None:
                if count == "exact":
                    return f"call #{i + 1}: {why(w, calls[i])}"
                i += 1
            if i >= len(calls):
                return f"no call {w['name']}({w.get('args') or {}}) in order"
            i += 1
        return None
    table = [[why(w, c) is None for c in calls] for w in want]
    if _bipartite(table) is not None:
        return None
    for r, w in enumerate(want):
        if not any(table[r]):
            same = [why(w, c) for c in calls if c["name"] == w["name"]]
            return f"no call matches {w['name']}: {same[0]}" if same else f"{w['name']} was not called"
    return "calls match individually but not one-to-one"


@register("tool_call_count")
def check_tool_call_count(view: AttemptView, spec: dict) -> str | None:
    calls = graded_calls(view, spec)
    if spec.get("name"):
        calls = [c for c in calls if c["name"] == spec["name"]]
    return _bounds(len(calls), spec, f"{spec.get('name', 'tool')} call(s)")


def offered_tools(view: AttemptView) -> dict[str, dict]:
    """Tool name -> parameters schema, as offered in the first request of the attempt."""
    for t in view.record.turns:
        tools = (t.result.request or {}).get("tools") or []
        if tools:
            return {x["function"]["name"]: x["function"].get("parameters") or {} for x in tools if "function" in x}
    return {}


@register("tool_args_schema")
def check_tool_args_schema(view: AttemptView, spec: dict) -> str | None:
    """Every call names an offered tool and its arguments validate against that tool's JSON schema."""
    tools = offered_tools(view)
    for c in graded_calls(view, spec):
        if c["name"] not in tools:
            return f"called {c['name']}, which was not offered"
        if c["arguments"] is None:
            return f"{c['name']}: arguments are not a JSON object"
        errs = list(jsonschema.Draft202012Validator(tools[c["name"]]).iter_errors(c["arguments"]))
        if errs:
            e = jsonschema.exceptions.best_match(errs) or errs[0]
            return f"{c['name']}: {'/'.join(map(str, e.absolute_path)) or 'arguments'}: {e.message[:160]}"
    return None


@register("tool_arg_length")
def check_tool_arg_length(view: AttemptView, spec: dict) -> str | None:
    """A call to `name` whose string argument `arg` has at least `min_chars` characters (and matches `regex`):
    the long tool-call prefill check."""
    best = 0
    for c in graded_calls(view, spec):
        if c["name"] != spec["name"] or not isinstance(c["arguments"], dict):
            continue
        v = c["arguments"].get(spec["arg"])
        if not isinstance(v, str):
            continue
        best = max(best, len(v))
        if len(v) >= spec.get("min_chars", 0) and (not spec.get("regex") or re.search(spec["regex"], v, re.S)):
            return None
    return f"no {spec['name']} call with a complete {spec['arg']} (longest {best} chars, needed {spec.get('min_chars', 0)})"


# ================================================================================================
# bug finding
# ================================================================================================


def reported_line(text: str) -> int | None:
    m = re.search(r"(?im)^[ \t*_#>-]*line[ \t*_]*(?:number)?[ \t*_]*[:=#][ \t*_]*(\d+)", text)
    if m:
        return int(m.group(1))
    m = re.search(r"(?i)\bline\s*#?\s*(\d+)\b", text)
    return int(m.group(1)) if m else None


@register("bug_report")
def check_bug_report(view: AttemptView, spec: dict) -> str | None:
    """The answer names the buggy line (`lines`: acceptable line numbers, from a `LINE: n` line) and
    describes the bug (`keywords`: regexes, at least one must match the `BUG:` part, or the whole answer
    when it has none). `fix_regex`, when given,
    must match too."""
    text = answer_text(view, spec)
    line = reported_line(text)
    if spec.get("lines"):
        if line is None:
            return "no 'LINE: n' in the answer"
        if line not in spec["lines"]:
            return f"points at line {line}, the bug is on line {'/'.join(map(str, spec['lines']))}"
    kws = spec.get("keywords") or []
    m = re.search(r"(?is)\bBUG\W*[:=](.*?)(?:^\W*FIX\W*[:=]|\Z)", text, re.M)
    described = m.group(1) if m else text
    if kws and not any(re.search(k, described, re.I | re.S) for k in kws):
        return "the bug is not named (none of the expected keywords)"
    if spec.get("fix_regex") and not re.search(spec["fix_regex"], text, re.I | re.S):
        return "no correct fix given"
    return None


# ================================================================================================
# shell commands, compared by structure (never executed)
# ================================================================================================

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
    terms, logic = [], False
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


@register("cli_command")
def check_cli_command(view: AttemptView, spec: dict) -> str | None:
    """The answer's command has the same structure as one of `expected` (parsed with shlex, never run):
    same programs, separators, flags as sets (-la == -al == -l -a; long aliases folded), option values,
    positional arguments in order, redirections. `ignore_flags` are dropped on both sides. `forbidden`
    regexes must not match the raw command."""
    cmd = extract_command(answer_text(view, spec))
    if not cmd:
        return "no command in the answer"
    for pat in spec.get("forbidden") or []:
        if re.search(pat, cmd):
            return f"command uses forbidden /{pat}/"
    ignore = spec.get("ignore_flags") or []
    try:
        got = canon_command(cmd, ignore)
    except ValueError as e:
        return f"cannot parse the command ({e}): {cmd[:120]!r}"
    for exp in spec["expected"]:
        if canon_command(exp, ignore) == got:
            return None
    return f"command {cmd[:160]!r} differs from {spec['expected'][0]!r}"


# ================================================================================================
# boundary (stress) checks
# ================================================================================================


@register("nonempty_answer")
def check_nonempty_answer(view: AttemptView, spec: dict) -> str | None:
    """Every reply carried an answer or a tool call (a silent-empty reply, even with reasoning, fails)."""
    for t in view.record.turns:
        r = t.result
        if not r.content.strip() and not r.tool_calls:
            why = " (reasoning only: thinking ate the answer)" if r.reasoning.strip() else ""
            return f"turn {t.index + 1} was empty (finish_reason={r.finish_reason}){why}"
    if not view.record.turns:
        return "no reply"
    return None


def degeneracy(text: str) -> str | None:
    """Why a text looks degenerate (a loop), or None: a short unit repeated many times, the same line again
    and again, or a long text that compresses far better than language does."""
    m = re.search(r"(.{1,12}?)\1{15,}", text, re.S)
    if m and len(m.group(0).strip()) > 0:
        return f"repeats {m.group(1)!r} {len(m.group(0)) // max(1, len(m.group(1)))}x"
    lines = [ln.strip() for ln in text.splitlines() if len(ln.strip()) > 8]
    if len(lines) >= 8:
        top = max(lines.count(ln) for ln in set(lines))
        if top >= max(5, len(lines) // 3):
            return f"the same line appears {top}x"
    raw = text.encode()
    if len(raw) > 1500:
        ratio = len(zlib.compress(raw, 9)) / len(raw)
        if ratio < 0.12:
            return f"text compresses to {ratio:.0%} (a loop)"
    ws = words(text.lower())
    if len(ws) >= 120:
        grams = [tuple(ws[i:i + 6]) for i in range(len(ws) - 5)]
        uniq = len(set(grams)) / len(grams)
        if uniq < 0.35:
            return f"only {uniq:.0%} of 6-word sequences are distinct"
    return None


@register("no_degenerate_repetition")
def check_no_degenerate_repetition(view: AttemptView, spec: dict) -> str | None:
    for t in view.record.turns:
        why = degeneracy(t.result.content)
        if why:
            return f"degenerate output in turn {t.index + 1}: {why}"
        if spec.get("include_reasoning"):
            why = degeneracy(t.result.reasoning)
            if why:
                return f"degenerate reasoning in turn {t.index + 1}: {why}"
    return None


@register("finish_not_length")
def check_finish_not_length(view: AttemptView, spec: dict) -> str | None:
    """No reply was cut off by the token budget (finish_reason 'length')."""
    for t in view.record.turns:
        if t.result.finish_reason == "length":
            r = t.result
            think = r.usage.reasoning_tokens or (len(r.reasoning.split()) and f"~{len(r.reasoning.split())} words")
            extra = f"; reasoning {think}" if think else ""
            return f"turn {t.index + 1} hit the token budget (finish_reason=length{extra})"
    return None


__all__ = [
    "answer_line", "answer_text", "arg_mismatch", "args_mismatch", "canon_command", "canon_segment", "degeneracy",
    "detect_language", "extract_command", "extract_json", "field_equal", "flatten_fields", "match_arg",
    "parse_number", "parse_pairs", "reported_line", "sentences", "split_script",
]

from . import bfcl_ast  # noqa: E402,F401  (registers the `bfcl` check type)
