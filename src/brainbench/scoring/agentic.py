"""Check types for the agentic packs (kanban, shell, home). Each is a pure function of the stored attempt.

    file        a workspace file exists / matches / avoids patterns (kanban work products)
    card        a kanban card ended as expected: done with the work in place, or blocked with a reason
    stage       a shell stage was handed off with the 3-call handshake, in order, with the work done
    script_run  an allow-listed script ran (successfully) with matching arguments, at least `min` times
    home_state  the home database equals the expected one (tau-bench style) with no forbidden mutation

`card` and `stage` decide the failure id themselves: still open -> omitted_closeout, closed as done with
the work missing or wrong -> premature_closeout, anything else wrong -> wrong_result.
"""

from __future__ import annotations

import re
from typing import Any

from ..envs.shell import HANDSHAKE_ORDER, handshake_complete
from .checks import CHECKS, AttemptView, get_path, register, values_match


def _patterns(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _flags(spec: dict) -> int:
    return re.IGNORECASE if "i" in spec.get("flags", "i") else 0


def _norm(path: str) -> str:
    return re.sub(r"^(\./)+", "", path.strip()).strip("/")


def run_subchecks(view: AttemptView, specs: list[dict]) -> list[str]:
    """Run nested checks; return the reasons of those that fail."""
    out = []
    for spec in specs or []:
        fn = CHECKS.get(spec.get("type", ""))
        why = f"unknown check type {spec.get('type')!r}" if fn is None else fn(view, spec)
        if why:
            out.append(why[0] if isinstance(why, tuple) else why)
    return out


@register("file")
def check_file(view: AttemptView, spec: dict) -> str | None:
    """spec: path, exists (default true), regex (all must match), not_regex (none may match), equals."""
    files = {_norm(k): v for k, v in (view.record.final_state.get("files") or {}).items()}
    path = _norm(spec["path"])
    text = files.get(path)
    if not spec.get("exists", True):
        return f"{path} should not exist" if text is not None else None
    if text is None:
        return f"{path} was not written"
    flags = _flags(spec) | re.MULTILINE
    if "equals" in spec and text != spec["equals"]:
        return f"{path} was changed"
    for rx in _patterns(spec.get("regex")):
        if not re.search(rx, text, flags):
            return f"{path} does not match /{rx}/"
    for rx in _patterns(spec.get("not_regex")):
        m = re.search(rx, text, flags)
        if m:
            return f"{path} contains {m.group(0)!r} (forbidden /{rx}/)"
    return None


@register("card")
def check_card(view: AttemptView, spec: dict) -> str | tuple[str, str] | None:
    """spec: card, expect (done|blocked), work [checks], summary_regex, reason_regex, created_min."""
    state = view.record.final_state
    cid = spec["card"]
    card = (state.get("cards") or {}).get(cid)
    if card is None:
        return f"card {cid} does not exist", "wrong_result"
    status, expect = card.get("status"), spec.get("expect", "done")
    if status == "in_progress":
        return f"card {cid} is still in_progress", "omitted_closeout"
    if status not in ("done", "blocked"):
        return f"card {cid} is {status}", "wrong_result"
    work_fails = run_subchecks(view, spec.get("work") or [])
    if expect == "done":
        if status == "blocked":
            return f"card {cid} was blocked ({card.get('closed_reason', '')!r}) but could be done", "wrong_result"
        if work_fails:
            return f"card {cid} closed as done but {work_fails[0]}", "premature_closeout"
        text = f"{card.get('closed_summary', '')}\n{card.get('closed_result', '')}"
        for rx in _patterns(spec.get("summary_regex")):
            if not re.search(rx, text, _flags(spec)):
                return f"card {cid}: summary/result does not match /{rx}/", "premature_closeout"
        created = state.get("created") or []
        if len(created) < spec.get("created_min", 0):
            return (f"card {cid} closed as done with {len(created)} follow-up cards created, "
                    f"expected >= {spec['created_min']}"), "premature_closeout"
        return None
    if status == "done":
        return f"card {cid} closed as done but it cannot be done and should be blocked", "premature_closeout"
    for rx in _patterns(spec.get("reason_regex")):
        if not re.search(rx, card.get("closed_reason", ""), _flags(spec)):
            return f"card {cid} blocked, but the reason does not match /{rx}/", "wrong_result"
    if work_fails:
        return f"card {cid} blocked, but {work_fails[0]}", "wrong_result"
    return None


@register("stage")
def check_stage(view: AttemptView, spec: dict) -> str | tuple[str, str] | None:
    """spec: outcome_regex, outcome_status, work [checks] (all about the work before the hand-off)."""
    st = view.record.final_state
    attempt = st.get("attempt") or {}
    if not handshake_complete(st):
        return "the closing handshake is incomplete", "omitted_closeout"
    runs = [r for r in st.get("runs") or [] if r.get("ok")]
    firsts = [next(i for i, r in enumerate(runs) if r["script"] == s) for s in HANDSHAKE_ORDER]
    if firsts != sorted(firsts):
        order = [r["script"] for r in runs if r["script"] in HANDSHAKE_ORDER]
        return f"handshake out of order: {' -> '.join(order)}", "wrong_result"
    fails = run_subchecks(view, spec.get("work") or [])
    if fails:
        return f"stage handed off but {fails[0]}", "premature_closeout"
    for rx in _patterns(spec.get("outcome_regex")):
        if not re.search(rx, attempt.get("outcome") or "", _flags(spec)):
            return f"stage handed off but the outcome does not match /{rx}/", "premature_closeout"
    if spec.get("outcome_status") and attempt.get("status") != spec["outcome_status"]:
        return f"outcome status {attempt.get('status')!r}, expected {spec['outcome_status']!r}", "wrong_result"
    return None


@register("script_run")
def check_script_run(view: AttemptView, spec: dict) -> str | None:
    """spec: script, args {flag or positional: regex | true}, min (default 1), max."""
    want = spec.get("args") or {}

    def matches(run: dict) -> bool:
        if run.get("script") != spec["script"] or not run.get("ok"):
            return False
        for k, v in want.items():
            if k not in run["args"]:
                return False
            if v is True:
                continue
            if not re.search(str(v), str(run["args"][k]), re.IGNORECASE):
                return False
        return True

    n = sum(1 for r in view.record.final_state.get("runs") or [] if matches(r))
    if n < spec.get("min", 1):
        return f"scripts/{spec['script']}.py was not run with {want or 'any arguments'}"
    if "max" in spec and n > spec["max"]:
        return f"scripts/{spec['script']}.py ran {n}x with {want or 'any arguments'} (max {spec['max']})"
    return None


def _match_item(matcher: dict, item: dict) -> bool:
    for k, v in matcher.items():
        if k.endswith("_regex"):
            field = k[: -len("_regex")]
            if not all(re.search(rx, str(item.get(field, "")), re.IGNORECASE | re.DOTALL) for rx in _patterns(v)):
                return False
        elif k == "id":
            continue
        elif k not in item or not values_match(v, item[k]):
            return False
    return True


def _same_multiset(expected: list[dict], actual: list[dict]) -> bool:
    """Every actual item matched by exactly one expected matcher (small lists: plain backtracking)."""
    if len(expected) != len(actual):
        return False

    def assign(i: int, used: set[int]) -> bool:
        if i == len(expected):
            return True
        return any(j not in used and _match_item(expected[i], actual[j]) and assign(i + 1, used | {j})
                   for j in range(len(actual)))

    return assign(0, set())


@register("home_state")
def check_home_state(view: AttemptView, spec: dict) -> str | tuple[str, str] | None:
    """spec: lights {room: {fields}} (only the named fields are compared), calendar {add, remove, update},
    drafts [matchers], protected [dotted paths that must not change]. Everything not named must be unchanged."""
    st = view.record.final_state
    db, init = st.get("db") or {}, st.get("initial") or {}
    if db.get("sent"):
        return f"{len(db['sent'])} email(s) sent despite the drafts-only policy", "policy_violation"
    for path in spec.get("protected") or []:
        try:
            before, after = get_path(init, path), get_path(db, path)
        except (KeyError, IndexError):
            continue
        if before != after:
            return f"protected {path} changed from {before!r} to {after!r}", "policy_violation"
    named = spec.get("lights") or {}
    for room in sorted(set(init.get("lights") or {}) | set(named)):
        got = (db.get("lights") or {}).get(room, {})
        if room in named:  # only the fields the scenario names (e.g. {on: true} whatever the brightness)
            ok = values_match(named[room], got)
        else:  # untouched rooms: exactly as they were
            want = (init.get("lights") or {}).get(room, {})
            ok = values_match(want, got) and values_match(got, want)
        if not ok:
            return f"light {room} is {got}, expected {named.get(room, 'unchanged')}", "wrong_result"
    cal = spec.get("calendar") or {}
    updates = cal.get("update") or {}
    expected = [{**e, **updates.get(e["id"], {})} for e in init.get("calendar") or [] if e["id"] not in (cal.get("remove") or [])]
    expected = [{k: v for k, v in e.items() if k != "id"} for e in expected] + list(cal.get("add") or [])
    if not _same_multiset(expected, db.get("calendar") or []):
        got = [{k: v for k, v in e.items() if k != "id"} for e in db.get("calendar") or []]
        return f"calendar is {got}, expected {expected}", "wrong_result"
    drafts = [{k: v for k, v in d.items() if k != "id"} for d in init.get("drafts") or []] + list(spec.get("drafts") or [])
    if not _same_multiset(drafts, db.get("drafts") or []):
        return f"drafts are {db.get('drafts')}, expected {len(drafts)} matching {spec.get('drafts')}", "wrong_result"
    return None
