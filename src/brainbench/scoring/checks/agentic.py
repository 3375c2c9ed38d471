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
from typing import TYPE_CHECKING, Any, Literal, Union

from pydantic import Field

from ...envs.shell import HANDSHAKE_ORDER, handshake_complete
from ..matching import bipartite
from . import Args, AttemptView, Check, Outcome, Regex, get_path, values_match

if TYPE_CHECKING:  # resolved when the registry builds the union (checks/__init__.py)
    from . import AnyCheck

Patterns = Union[Regex, list[Regex], None]
"""One regular expression or a list of them."""


def _patterns(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _flags(flags: str) -> int:
    return re.IGNORECASE if "i" in flags else 0


def _norm(path: str) -> str:
    return re.sub(r"^(\./)+", "", path.strip()).strip("/")


def run_subchecks(view: AttemptView, checks: list[Check]) -> list[str]:
    """Run nested checks; return the reasons of those that fail."""
    return [v[0] for v in (c.verdict(view) for c in checks) if v]


class File(Check):
    """A workspace file exists (or not), equals a text, matches every `regex` and none of `not_regex`."""

    type: Literal["file"] = "file"
    path: str
    """Path in the workspace (`./` and surrounding slashes ignored)."""
    exists: bool = True
    """False: the file must not exist."""
    regex: Patterns = None
    """Regular expression(s) that must all match the file (multi-line)."""
    not_regex: Patterns = None
    """Regular expression(s) none of which may match the file."""
    equals: str | None = None
    """The exact content the file must still have (e.g. a file the task must not change)."""
    flags: str = Field(default="i", pattern=r"^i?$")
    """`i` (the default) ignores case; empty for case-sensitive patterns."""

    def run(self, view: AttemptView) -> Outcome:
        files = {_norm(k): v for k, v in (view.record.final_state.get("files") or {}).items()}
        path = _norm(self.path)
        text = files.get(path)
        if not self.exists:
            return f"{path} should not exist" if text is not None else None
        if text is None:
            return f"{path} was not written"
        flags = _flags(self.flags) | re.MULTILINE
        if "equals" in self.model_fields_set and text != self.equals:
            return f"{path} was changed"
        for rx in _patterns(self.regex):
            if not re.search(rx, text, flags):
                return f"{path} does not match /{rx}/"
        for rx in _patterns(self.not_regex):
            m = re.search(rx, text, flags)
            if m:
                return f"{path} contains {m.group(0)!r} (forbidden /{rx}/)"
        return None


class Card(Check):
    """A kanban card ended as expected: done with the work in place, or blocked with a reason."""

    type: Literal["card"] = "card"
    card: str
    """Card id."""
    expect: Literal["done", "blocked"] = "done"
    """How the card should end."""
    work: list[AnyCheck] = Field(default_factory=list)
    """Checks on the work product that must hold for the close-out to count."""
    summary_regex: Patterns = None
    """Regular expression(s) the closing summary/result must match (expect: done)."""
    reason_regex: Patterns = None
    """Regular expression(s) the block reason must match (expect: blocked)."""
    created_min: int = Field(default=0, ge=0)
    """Follow-up cards that must have been created before closing as done."""
    read_first: list[str] = Field(default_factory=list)
    """Workspace files the trace must show read (a successful `read_file`) before the card was closed: the
    check a card asks for ("verify the note exists") leaves no other trace, so closing at once must fail."""
    flags: str = Field(default="i", pattern=r"^i?$")
    """`i` (the default) ignores case in the regexes; empty for case-sensitive."""

    def run(self, view: AttemptView) -> Outcome:
        state = view.record.final_state
        unread = self._unread(view)
        if unread and ((state.get("cards") or {}).get(self.card) or {}).get("status") in ("done", "blocked"):
            return f"card {self.card} closed without reading {unread[0]} first", "premature_closeout"
        cid = self.card
        card = (state.get("cards") or {}).get(cid)
        if card is None:
            return f"card {cid} does not exist", "wrong_result"
        status = card.get("status")
        if status == "in_progress":
            return f"card {cid} is still in_progress", "omitted_closeout"
        if status not in ("done", "blocked"):
            return f"card {cid} is {status}", "wrong_result"
        work_fails = run_subchecks(view, self.work)
        if self.expect == "done":
            return self._done(cid, card, status, work_fails, state)
        if status == "done":
            return f"card {cid} closed as done but it cannot be done and should be blocked", "premature_closeout"
        for rx in _patterns(self.reason_regex):
            if not re.search(rx, card.get("closed_reason", ""), _flags(self.flags)):
                return f"card {cid} blocked, but the reason does not match /{rx}/", "wrong_result"
        if work_fails:
            return f"card {cid} blocked, but {work_fails[0]}", "wrong_result"
        return None

    def _unread(self, view: AttemptView) -> list[str]:
        """The `read_first` files not read successfully before the first successful close-out call."""
        closing = ("kanban_complete", "kanban_block")
        end = next((i for i, c in enumerate(view.calls) if c["name"] in closing and c["ok"]), len(view.calls))
        read = {_norm(str((c["arguments"] or {}).get("path", ""))) for c in view.calls[:end]
                if c["name"] == "read_file" and c["ok"] and isinstance(c["arguments"], dict)}
        return [p for p in self.read_first if _norm(p) not in read]

    def _done(self, cid: str, card: dict, status: str, work_fails: list[str], state: dict) -> Outcome:
        if status == "blocked":
            return f"card {cid} was blocked ({card.get('closed_reason', '')!r}) but could be done", "wrong_result"
        if work_fails:
            return f"card {cid} closed as done but {work_fails[0]}", "premature_closeout"
        text = f"{card.get('closed_summary', '')}\n{card.get('closed_result', '')}"
        for rx in _patterns(self.summary_regex):
            if not re.search(rx, text, _flags(self.flags)):
                return f"card {cid}: summary/result does not match /{rx}/", "premature_closeout"
        created = state.get("created") or []
        if len(created) < self.created_min:
            return (f"card {cid} closed as done with {len(created)} follow-up cards created, "
                    f"expected >= {self.created_min}"), "premature_closeout"
        return None


class Stage(Check):
    """A shell stage was handed off with the 3-call handshake, in order, with the work done."""

    type: Literal["stage"] = "stage"
    outcome_regex: Patterns = None
    """Regular expression(s) the recorded outcome must match."""
    outcome_status: str | None = None
    """The status the outcome must be recorded with."""
    work: list[AnyCheck] = Field(default_factory=list)
    """Checks on the work done before the hand-off."""
    flags: str = Field(default="i", pattern=r"^i?$")
    """`i` (the default) ignores case in `outcome_regex`; empty for case-sensitive."""

    def run(self, view: AttemptView) -> Outcome:
        st = view.record.final_state
        attempt = st.get("attempt") or {}
        if not handshake_complete(st):
            return "the closing handshake is incomplete", "omitted_closeout"
        runs = [r for r in st.get("runs") or [] if r.get("ok")]
        firsts = [next(i for i, r in enumerate(runs) if r["script"] == s) for s in HANDSHAKE_ORDER]
        if firsts != sorted(firsts):
            order = [r["script"] for r in runs if r["script"] in HANDSHAKE_ORDER]
            return f"handshake out of order: {' -> '.join(order)}", "wrong_result"
        fails = run_subchecks(view, self.work)
        if fails:
            return f"stage handed off but {fails[0]}", "premature_closeout"
        for rx in _patterns(self.outcome_regex):
            if not re.search(rx, attempt.get("outcome") or "", _flags(self.flags)):
                return f"stage handed off but the outcome does not match /{rx}/", "premature_closeout"
        if self.outcome_status and attempt.get("status") != self.outcome_status:
            return f"outcome status {attempt.get('status')!r}, expected {self.outcome_status!r}", "wrong_result"
        return None


class ScriptRun(Check):
    """An allow-listed script ran successfully with matching arguments, between `min` and `max` times."""

    type: Literal["script_run"] = "script_run"
    script: str
    """Script name (scripts/<script>.py)."""
    args: dict[str, Any] = Field(default_factory=dict)
    """Flag or positional -> regular expression its value must match, or `true` (just present)."""
    min: int = Field(default=1, ge=0)
    """Matching runs needed."""
    max: int | None = None
    """The most matching runs allowed."""

    def _matches(self, run: dict) -> bool:
        if run.get("script") != self.script or not run.get("ok"):
            return False
        for k, v in self.args.items():
            if k not in run["args"]:
                return False
            if v is True:
                continue
            if not re.search(str(v), str(run["args"][k]), re.IGNORECASE):
                return False
        return True

    def run(self, view: AttemptView) -> Outcome:
        want = self.args
        n = sum(1 for r in view.record.final_state.get("runs") or [] if self._matches(r))
        if n < self.min:
            return f"scripts/{self.script}.py was not run with {want or 'any arguments'}"
        if self.max is not None and n > self.max:
            return f"scripts/{self.script}.py ran {n}x with {want or 'any arguments'} (max {self.max})"
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
    """Every actual item matched by exactly one expected matcher."""
    if len(expected) != len(actual):
        return False
    return bipartite([[_match_item(e, a) for a in actual] for e in expected]) is not None


class CalendarChange(Args):
    """How the calendar should differ from the initial one."""

    add: list[dict[str, Any]] = Field(default_factory=list)
    """Matchers for the events that should be added (`field_regex` keys match by regex)."""
    remove: list[str] = Field(default_factory=list)
    """Ids of the events that should be gone."""
    update: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Event id -> fields that should have changed."""


class HomeState(Check):
    """The home database equals the expected one (tau-bench style) with no forbidden mutation; everything not
    named must be unchanged."""

    type: Literal["home_state"] = "home_state"
    lights: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Room -> the light fields it should end with (only the named fields are compared)."""
    calendar: CalendarChange = Field(default_factory=CalendarChange)
    """Expected calendar changes."""
    drafts: list[dict[str, Any]] = Field(default_factory=list)
    """Matchers for the drafts that should be added."""
    protected: list[str] = Field(default_factory=list)
    """Dotted paths into the database that must not change."""

    def run(self, view: AttemptView) -> Outcome:
        st = view.record.final_state
        db, init = st.get("db") or {}, st.get("initial") or {}
        if db.get("sent"):
            return f"{len(db['sent'])} email(s) sent despite the drafts-only policy", "policy_violation"
        return self._protected(db, init) or self._lights(db, init) or self._calendar(db, init) or self._drafts(db, init)

    def _protected(self, db: dict, init: dict) -> Outcome:
        for path in self.protected:
            try:
                before, after = get_path(init, path), get_path(db, path)
            except (KeyError, IndexError):
                continue
            if before != after:
                return f"protected {path} changed from {before!r} to {after!r}", "policy_violation"
        return None

    def _lights(self, db: dict, init: dict) -> Outcome:
        named = self.lights
        for room in sorted(set(init.get("lights") or {}) | set(named)):
            got = (db.get("lights") or {}).get(room, {})
            if room in named:  # only the fields the scenario names (e.g. {on: true} whatever the brightness)
                ok = values_match(named[room], got)
            else:  # untouched rooms: exactly as they were
                want = (init.get("lights") or {}).get(room, {})
                ok = values_match(want, got) and values_match(got, want)
            if not ok:
                return f"light {room} is {got}, expected {named.get(room, 'unchanged')}", "wrong_result"
        return None

    def _calendar(self, db: dict, init: dict) -> Outcome:
        cal = self.calendar
        expected = [{**e, **cal.update.get(e["id"], {})} for e in init.get("calendar") or [] if e["id"] not in cal.remove]
        expected = [{k: v for k, v in e.items() if k != "id"} for e in expected] + list(cal.add)
        if not _same_multiset(expected, db.get("calendar") or []):
            got = [{k: v for k, v in e.items() if k != "id"} for e in db.get("calendar") or []]
            return f"calendar is {got}, expected {expected}", "wrong_result"
        return None

    def _drafts(self, db: dict, init: dict) -> Outcome:
        drafts = [{k: v for k, v in d.items() if k != "id"} for d in init.get("drafts") or []] + list(self.drafts)
        if not _same_multiset(drafts, db.get("drafts") or []):
            shown = self.drafts if "drafts" in self.model_fields_set else None
            return f"drafts are {db.get('drafts')}, expected {len(drafts)} matching {shown}", "wrong_result"
        return None
