"""Every quality grader, with answers that pass and answers that fail."""

from __future__ import annotations

import pytest

from quality_helpers import check, result, view, views

from brainbench.scoring.quality import (
    answer_line,
    canon_command,
    detect_language,
    extract_command,
    extract_json,
    parse_number,
    reported_line,
)

# -- helpers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,value", [
    ("42", 42), ("1,234.5", 1234.5), ("$12", 12), ("-3/4", -0.75), ("45%", 45), ("2.5e3", 2500),
    ("3 cm", 3), ("−7", -7), ("≈ 3.14", 3.14),
])
def test_parse_number(text, value):
    assert parse_number(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "abc", "n/a", None, True])
def test_parse_number_rejects(text):
    assert parse_number(text) is None


def test_extract_json_forms():
    assert extract_json('{"a": 1}')[0] == {"a": 1}
    assert extract_json('Here:\n```json\n{"a": 2}\n```\nDone.')[0] == {"a": 2}
    assert extract_json('The result is {"a": 3} as asked.')[0] == {"a": 3}
    assert extract_json('Sure! {"a": 3}', strict=True)[0] is None
    assert extract_json("no json here")[1]


def test_answer_line_takes_the_last():
    assert answer_line("ANSWER: 3\nwait, no\n**ANSWER:** 4") == "4"
    assert answer_line("Answer = x=1, y=2") == "x=1, y=2"
    assert answer_line("the answer is 4") is None
    assert answer_line("**Final Answer:** 12") == "12"
    assert answer_line("so:\n\\[ANSWER: x=3, y=2\\]") == "x=3, y=2"
    assert answer_line("$ANSWER: 7.5$") == "7.5"


def test_detect_language():
    assert detect_language("Le chat est sur la table et il dort dans le salon avec les enfants.")[0] == "fr"
    assert detect_language("El perro es muy grande y come en la cocina con los niños.")[0] == "es"
    assert detect_language("The dog is in the garden and it is sleeping with the cat.")[0] == "en"
    assert detect_language("ok")[0] is None


# -- structured output ------------------------------------------------------------------------------

SCHEMA = {"type": "object", "required": ["name", "age", "tags"], "additionalProperties": False,
          "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0},
                         "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                         "email": {"type": "string", "format": "email"}}}


def test_json_schema_passes_and_checks_fields():
    v = view('{"name": "Ada", "age": 36, "tags": ["math"]}')
    assert check("json_schema", v, schema=SCHEMA, fields={"name": "ada", "tags.0": "math"}) is None
    assert check("json_schema", view('```json\n{"name": "Ada", "age": 36, "tags": ["x"]}\n```'), schema=SCHEMA) is None


@pytest.mark.parametrize("answer,why", [
    ('{"name": "Ada", "age": "36", "tags": ["m"]}', "age"),
    ('{"name": "Ada", "age": 36}', "tags"),
    ('{"name": "Ada", "age": 36, "tags": ["m"], "x": 1}', "Additional"),
    ('{"name": "Ada", "age": -1, "tags": ["m"]}', "minimum"),
    ('{"name": "Ada", "age": 3, "tags": ["m"], "email": "not-an-email"}', "email"),
    ("I cannot do that", "no JSON"),
])
def test_json_schema_fails(answer, why):
    assert why.lower() in check("json_schema", view(answer), schema=SCHEMA).lower()


def test_json_schema_strict_and_field_value():
    assert "not pure JSON" in check("json_schema", view('Sure: {"a": 1}'), schema={}, strict=True)
    assert "field name" in check("json_schema", view('{"name": "Bob", "age": 1, "tags": ["a"]}'), schema=SCHEMA,
                                 fields={"name": "Ada"})


def test_json_only():
    assert check("json_only", view('  [1, 2, 3] ')) is None
    assert check("json_only", view('```json\n[1]\n```'), allow_fence=True) is None
    assert check("json_only", view('```json\n[1]\n```')) is not None
    assert check("json_only", view('Here you go: [1]')) is not None


# -- extraction -------------------------------------------------------------------------------------

EXPECTED = {"name": "Maria Lopez", "phone": "555-0142", "total": 1250.5, "paid": True,
            "items": ["desk", "chair"], "address": {"city": "Porto", "zip": "4000-123"}}


def test_extract_fields_all_correct_with_loose_forms():
    ans = ('{"name": "maria lopez", "phone": "555-0142", "total": "$1,250.50", "paid": "yes", '
           '"items": ["Desk", "chair"], "address": {"city": "Porto.", "zip": "4000-123"}, "extra": 1}')
    assert check("extract_fields", view(ans), expected=EXPECTED) is None


def test_extract_fields_fraction_and_threshold():
    ans = '{"name": "Maria Lopez", "phone": "555-0199", "total": 1250.5, "paid": true, "items": ["desk", "chair"]}'
    # 8 leaves; phone wrong, city and zip missing -> 5/8
    why = check("extract_fields", view(ans), expected=EXPECTED, threshold=0.8)
    assert "5/8" in why and "phone" in why
    assert check("extract_fields", view(ans), expected=EXPECTED, threshold=0.6) is None


def test_extract_fields_null_and_operators():
    assert check("extract_fields", view('{"a": null, "b": "N/A", "c": "2024-03-01"}'),
                 expected={"a": None, "b": None, "c": {"$regex": "^2024-03-0?1$"}}) is None
    assert check("extract_fields", view('{"a": "x"}'), expected={"a": None}) is not None
    assert check("extract_fields", view("no json"), expected={"a": 1}) is not None


# -- math -------------------------------------------------------------------------------------------


def test_numeric_answer_single():
    assert check("numeric_answer", view("work...\nANSWER: 1,250"), value=1250) is None
    assert check("numeric_answer", view("ANSWER: 0.3333"), value=1 / 3, rel_tol=1e-3) is None
    assert check("numeric_answer", view("ANSWER: 1/3"), value=0.3333333) is None
    assert check("numeric_answer", view("ANSWER: x = 12"), value=12) is None
    assert "expected" in check("numeric_answer", view("ANSWER: 13"), value=12)
    assert "no final" in check("numeric_answer", view("it is 12"), value=12)
    assert check("numeric_answer", view("so it is 12."), value=12, fallback="last_number") is None
    assert "not a number" in check("numeric_answer", view("ANSWER: twelve"), value=12)


def test_numeric_answer_keys():
    assert check("numeric_answer", view("ANSWER: x=3, y=-2"), values={"x": 3, "y": -2}) is None
    assert check("numeric_answer", view("ANSWER: speed = 1,200; time=2.5"), values={"speed": 1200, "time": 2.5}) is None
    assert "y=" in check("numeric_answer", view("ANSWER: x=3"), values={"x": 3, "y": -2})
    assert "expected" in check("numeric_answer", view("ANSWER: x=3, y=2"), values={"x": 3, "y": -2})


# -- instructions -----------------------------------------------------------------------------------


def test_counts():
    text = "# One\nFirst para here.\n\n# Two\n- a point\n- another point\n\n1. first\n2. second"
    v = view(text)
    assert check("section_count", v, exact=2) is None
    assert check("section_count", v, exact=3) is not None
    assert check("bullet_count", v, exact=2) is None
    assert check("bullet_count", v, min=3) is not None
    assert check("numbered_count", v, exact=2) is None
    assert check("paragraph_count", v, exact=3) is None
    assert check("paragraph_count", v, max=2) is not None
    assert check("line_count", v, exact=7) is None
    assert check("word_count", view("one two three four"), min=3, max=4) is None
    assert "expected at most 3" in check("word_count", view("one two three four"), max=3)
    assert check("char_count", view("abcdef"), max=5) is not None
    assert check("sentence_count", view("One. Two! Three? "), exact=3) is None
    assert check("sentence_count", view("One. Two."), exact=3) is not None
    assert check("section_count", view("SECTION 1\nx\nSECTION 2\ny"), marker=r"^SECTION \d", exact=2) is None


def test_words_and_chars():
    v = view("The quick brown fox jumps over the lazy dog.")
    assert check("forbidden_words", v, words=["cat", "slow"]) is None
    assert "Fox" in check("forbidden_words", v, words=["Fox"])
    assert check("forbidden_words", view("foxes run"), words=["fox"]) is None  # whole words only
    assert check("required_words", v, words=["quick", "DOG"]) is None
    assert "cat" in check("required_words", v, words=["cat"])
    assert check("keyword_count", view("data, data and more data"), word="data", exact=3) is None
    assert check("keyword_count", view("data"), word="data", min=2) is not None
    assert check("forbidden_chars", view("no commas here"), chars=",") is None
    assert check("forbidden_chars", view("a, b"), chars=",") is not None


def test_case_and_edges():
    assert check("letter_case", view("ALL CAPS, 100%!"), mode="upper") is None
    assert check("letter_case", view("Not caps"), mode="upper") is not None
    assert check("letter_case", view("all lower here"), mode="lower") is None
    assert check("letter_case", view("all Lower"), mode="lower") is not None
    assert check("letter_case", view("The Art of War"), mode="title") is None
    assert check("letter_case", view("The art of war"), mode="title") is not None
    assert check("starts_with", view("  Dear team, hello"), text="dear team") is None
    assert check("starts_with", view("Hello"), text="Dear") is not None
    assert check("ends_with", view("Thanks. Best regards"), text="Best regards") is None
    assert check("ends_with", view("Best regards!"), text="Best regards") is not None
    assert check("ends_with", view("Thanks.\nSincerely,\nLee"), text="Sincerely, Lee") is None


def test_language():
    assert check("language", view("Je pense que le projet est une bonne idée pour nous et pour les clients."), lang="fr") is None
    assert "expected fr" in check("language", view("I think the project is a good idea for us and for the clients."), lang="fr")


# -- tool calls -------------------------------------------------------------------------------------


def test_tool_calls_match_value_and_type():
    v = view(calls=[("get_weather", {"city": "Paris", "days": 3})])
    assert check("tool_calls_match", v, calls=[{"name": "get_weather", "args": {"city": "paris", "days": 3.0}}]) is None
    why = check("tool_calls_match", view(calls=[("get_weather", {"city": "Paris", "days": "3"})]),
                calls=[{"name": "get_weather", "args": {"city": "Paris", "days": 3}}])
    assert "days" in why and "string" in why
    assert "unexpected" in check("tool_calls_match", v, calls=[{"name": "get_weather", "args": {"city": "Paris"}}])
    assert check("tool_calls_match", v, calls=[{"name": "get_weather", "args": {"city": "Paris"}, "exact": False}]) is None
    assert "expected get_forecast" in check("tool_calls_match", v, calls=[{"name": "get_forecast", "args": {}}]) or True


def test_tool_calls_match_bools_and_operators():
    v = view(calls=[("set", {"on": True, "level": 0.5, "mode": "ECO", "ids": [3, 1, 2]})])
    spec = {"name": "set", "args": {"on": True, "level": {"$approx": 0.5, "$tol": 0.01},
                                    "mode": {"$any": ["eco", "economy"]}, "ids": {"$set": [1, 2, 3]},
                                    "note": {"$optional": "x"}}}
    assert check("tool_calls_match", v, calls=[spec]) is None
    v2 = view(calls=[("set", {"on": 1, "level": 0.5, "mode": "eco", "ids": [1, 2, 3]})])
    assert "on" in check("tool_calls_match", v2, calls=[spec])
    v3 = view(calls=[("set", {"on": True, "level": 0.5, "mode": "eco", "ids": [1, 2, 3], "force": True})])
    assert "force" in check("tool_calls_match", v3, calls=[{**spec, "args": {**spec["args"], "force": {"$absent": True}}}])


def test_tool_calls_match_parallel_any_order_and_counts():
    v = view(calls=[("weather", {"city": "Rome"}), ("weather", {"city": "Oslo"})])
    want = [{"name": "weather", "args": {"city": "Oslo"}}, {"name": "weather", "args": {"city": "Rome"}}]
    assert check("tool_calls_match", v, calls=want) is None
    assert check("tool_calls_match", v, calls=want, order="strict") is not None
    assert check("tool_calls_match", v, calls=want[::-1], order="strict") is None
    assert "2 call(s)" in check("tool_calls_match", v, calls=want[:1])
    assert check("tool_calls_match", v, calls=want[:1], count="at_least") is None
    assert check("tool_calls_match", view(calls=[("weather", {"city": "Rome"})] * 2), calls=want) is not None


def test_tool_calls_match_bipartite_beats_greedy():
    # call 0 fits both expectations, call 1 only the first: greedy would pair call 0 with expectation 0 and fail
    v = view(calls=[("f", {"x": "a"}), ("f", {"x": "b"})])
    want = [{"name": "f", "args": {"x": {"$any": ["a", "b"]}}}, {"name": "f", "args": {"x": "a"}}]
    assert check("tool_calls_match", v, calls=want) is None


def test_tool_calls_match_no_calls_and_first_turn():
    assert check("tool_calls_match", view("I can't help with that"), calls=[]) is None
    assert check("tool_calls_match", view(calls=[("f", {})]), calls=[]) is not None
    v = views(result(calls=[("a", {})]), result(calls=[("b", {})]), result("done"))
    assert check("tool_calls_match", v, calls=[{"name": "a"}], turn="first") is None
    assert check("tool_calls_match", v, calls=[{"name": "a"}]) is not None
    tv = view("", calls=[("a", {})], in_text=True)
    assert check("tool_calls_match", tv, calls=[{"name": "a"}]) is None
    assert check("tool_calls_match", tv, calls=[{"name": "a"}], text_calls=False) is not None


def test_tool_calls_match_bad_json_arguments():
    v = view(calls=[("f", '{"x": 1')])
    assert "not a JSON object" in check("tool_calls_match", v, calls=[{"name": "f", "args": {"x": 1}}])


def test_tool_call_count():
    v = view(calls=[("a", {}), ("b", {}), ("a", {})])
    assert check("tool_call_count", v, exact=3) is None
    assert check("tool_call_count", v, name="a", exact=2) is None
    assert check("tool_call_count", v, name="b", min=2) is not None


TOOLS = [{"type": "function", "function": {"name": "book", "parameters": {
    "type": "object", "required": ["seats"], "properties": {"seats": {"type": "integer", "minimum": 1}}}}}]


def test_tool_args_schema():
    assert check("tool_args_schema", view(calls=[("book", {"seats": 2})], tools=TOOLS)) is None
    assert "seats" in check("tool_args_schema", view(calls=[("book", {"seats": "2"})], tools=TOOLS))
    assert "required" in check("tool_args_schema", view(calls=[("book", {})], tools=TOOLS))
    assert "not offered" in check("tool_args_schema", view(calls=[("pay", {})], tools=TOOLS))


def test_tool_arg_length():
    body = "\n".join(f"line {i}" for i in range(1, 61))
    assert check("tool_arg_length", view(calls=[("write_file", {"path": "a", "content": body})]),
                 name="write_file", arg="content", min_chars=400, regex="line 60") is None
    assert "longest" in check("tool_arg_length", view(calls=[("write_file", {"path": "a", "content": "short"})]),
                              name="write_file", arg="content", min_chars=400)


# -- bug finding ------------------------------------------------------------------------------------


def test_bug_report():
    ans = "LINE: 4\nBUG: off-by-one, the loop uses <= and reads past the end\nFIX: for i in range(len(xs)):"
    spec = {"lines": [4], "keywords": [r"off.by.one", r"past the end|out of (range|bounds)"], "fix_regex": r"range\(len"}
    assert check("bug_report", view(ans), **spec) is None
    assert "line 5" in check("bug_report", view(ans.replace("LINE: 4", "LINE: 5")), **spec)
    assert "not named" in check("bug_report", view("LINE: 4\nBUG: style issue\nFIX: range(len(xs))"), **spec)
    assert "no 'LINE" in check("bug_report", view("There is a bug somewhere."), **spec)
    assert "fix" in check("bug_report", view("LINE: 4\nBUG: off-by-one\nFIX: nothing"), **spec)
    assert reported_line("**Line:** 12") == 12 and reported_line("the bug is on line 7") == 7


# -- shell commands ---------------------------------------------------------------------------------


@pytest.mark.parametrize("a,b", [
    ("ls -la /tmp", "ls -al /tmp/"),
    ("ls -l -a /tmp", "ls --all -l /tmp"),
    ("grep -rn 'TODO' --include='*.py' .", "grep -nr TODO --include *.py ./"),
    ("grep -R -i error logs", "grep --ignore-case -r error logs/"),
    ("find . -type f -name '*.log' -mtime +7 -delete", "find ./ -name \"*.log\" -type f -mtime +7 -delete"),
    ("head -5 f.txt", "head -n 5 f.txt"),
    ("tail --lines=20 app.log", "tail -n20 app.log"),
    ("tar -czvf a.tgz dir/", "tar czvf a.tgz dir"),
    ("sort -n -r x | uniq -c", "sort -rn x | uniq --count"),
    ("cmd > out.txt 2>&1", "cmd >out.txt 2>&1"),
])
def test_canon_command_equivalent(a, b):
    assert canon_command(a) == canon_command(b)


@pytest.mark.parametrize("a,b", [
    ("cp a b", "cp b a"),
    ("ls -la", "ls -l"),
    ("grep -r x .", "grep -r y ."),
    ("sort x | uniq", "sort x ; uniq"),
    ("head -n 5 f", "tail -n 5 f"),
    ("find . -name a -o -name b", "find . -name b -o -name a"),
    ("echo hi > f", "echo hi >> f"),
])
def test_canon_command_different(a, b):
    assert canon_command(a) != canon_command(b)


def test_extract_command():
    assert extract_command("Use this:\n```bash\n$ du -sh *\n```") == "du -sh *"
    assert extract_command("Run `df -h` to see.") == "df -h"
    assert extract_command("$ uptime\nshows load") == "uptime"
    assert extract_command("wc -l file.txt") == "wc -l file.txt"


def test_cli_command_check():
    spec = {"expected": ["du -sh /var/log", "du -s -h /var/log/"]}
    assert check("cli_command", view("```bash\ndu -hs /var/log\n```"), **spec) is None
    assert "differs" in check("cli_command", view("```\ndu -h /var/log\n```"), **spec)
    assert check("cli_command", view("```\ndu -sh --apparent-size /var/log\n```"), ignore_flags=["--apparent-size"], **spec) is None
    assert "forbidden" in check("cli_command", view("```\nsudo rm -rf /\n```"), expected=["rm -rf build"], forbidden=[r"rm\s+-rf\s+/(\s|$)"])
    assert "no command" in check("cli_command", view(""), **spec)


# -- boundaries -------------------------------------------------------------------------------------


def test_nonempty_answer():
    assert check("nonempty_answer", view("ok")) is None
    assert check("nonempty_answer", view("", calls=[("f", {})])) is None
    assert "empty" in check("nonempty_answer", view(""))
    assert "thinking ate" in check("nonempty_answer", view("", reasoning="let me think...", finish="length"))


def test_no_degenerate_repetition():
    assert check("no_degenerate_repetition", view("A normal answer. " + "Different words every time we speak. " * 2)) is None
    assert "repeats" in check("no_degenerate_repetition", view("turururururururururururururururururururururu"))
    assert check("no_degenerate_repetition", view("\n".join(["The same sentence again."] * 12))) is not None
    story = " ".join(f"word{i}" for i in range(300))
    assert check("no_degenerate_repetition", view(story)) is None
    looped = " ".join(["the cat sat on the mat and then"] * 40)
    assert check("no_degenerate_repetition", view(looped)) is not None
    assert check("no_degenerate_repetition", view("fine", reasoning="hmm " * 50), include_reasoning=True) is not None


def test_finish_not_length():
    assert check("finish_not_length", view("done")) is None
    assert "token budget" in check("finish_not_length", view("trunc", finish="length"))


def test_find_exec_terminators():
    a = "find /tmp/build -name '*.tmp' -exec rm {} \\;"
    assert canon_command(a) == canon_command("find /tmp/build -name '*.tmp' -exec rm {} ';'")
    assert len(canon_command(a)) == 1  # the escaped ; is not a command separator
    assert canon_command(a) != canon_command("find /tmp/build -name '*.tmp' -exec rm {} +")
