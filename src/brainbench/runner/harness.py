"""The harness a scenario is wrapped in: `minimal` (the scenario as written) or `agent` (as agent frameworks do it).

Packs are written minimal: a short system prompt, the task, only the tools it needs. Real agent frameworks
send something else: a long system prompt (persona, policy, tool-use rules, the close-out protocol stated
once, far from the task), 20-40 tool schemas, most of them irrelevant, and a task buried in paragraphs of
ticket context. `agent` sends that, so the realism gap (minimal against agent, same brain) can be measured.

The wrapping is deterministic: seeded by the scenario's content hash, the same scenario always gets the
same prompt and tool list. The wrapped request is what the attempt stores (its dispatch messages and each
turn's request tools), so `brainbench score` re-scores without wrapping again.

A call to a distractor is answered with an error the model sees, "tool X is not available in this
workspace", classified `unknown_tool`: an error-line failure and a denial (the recovery rate's base), so a
model that wanders into tools it does not need is counted, and one that pivots back is credited.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field

from ..envs.base import ToolOutcome
from ..packs import Scenario

Harness = Literal["minimal", "agent"]
HARNESSES: tuple[str, ...] = get_args(Harness)
TOOLS_MIN, TOOLS_MAX = 20, 40
"""How many tool schemas the agent harness offers (the scenario's own included)."""


class Wrapped(BaseModel):
    """A scenario's opening request as the harness sends it."""

    harness: Harness
    """Which harness wrapped it."""
    system: str | None
    """The system prompt (None: the scenario has none and the harness adds none)."""
    messages: list[dict[str, Any]]
    """The opening conversation after the system prompt (the task)."""
    tools: list[dict[str, Any]]
    """Every tool schema offered, in the order sent (the scenario's own and the distractors)."""
    distractors: list[str] = Field(default_factory=list)
    """Names of the offered tools that are not the scenario's: a call to one is denied as `unknown_tool`."""

    def deny(self, name: str) -> ToolOutcome | None:
        """The answer to a call of a distractor (None for any other name: the environment answers it)."""
        if name not in self.distractors:
            return None
        msg = f"tool {name!r} is not available in this workspace"
        return ToolOutcome(False, json.dumps({"error": msg}), "unknown_tool")


def plan_config(harness: str) -> dict[str, Any]:
    """The harness's part of the plan's config: nothing for `minimal`, so runs without --harness keep their keys."""
    return {} if harness == "minimal" else {"harness": harness}


def wrap(harness: str, scenario: Scenario, own: list[dict[str, Any]], reserved: Iterable[str] = ()) -> Wrapped:
    """The opening request for `scenario` with its own tool schemas `own`; `reserved` are names the
    environment knows (never used for a distractor, even where not offered)."""
    if harness == "minimal":
        return Wrapped(harness="minimal", system=scenario.system, messages=[dict(m) for m in scenario.messages],
                       tools=own)
    rng = random.Random(int(scenario.content_hash()[:16], 16))
    names = {t["function"]["name"] for t in own} | set(reserved)
    pool = [d for d in DISTRACTORS if d[0] not in names]
    total = rng.randint(max(TOOLS_MIN, len(own)), max(TOOLS_MAX, len(own)))
    picked = rng.sample(pool, min(len(pool), max(0, total - len(own))))
    tools = own + [_schema(*d) for d in picked]
    rng.shuffle(tools)
    return Wrapped(harness="agent", system=_system(rng, scenario.system), messages=_task(rng, scenario.messages),
                   tools=tools, distractors=sorted(d[0] for d in picked))


# -- the agent-shaped prompt --------------------------------------------------------------------------

_PERSONAS = [("Atlas", "Northwind Labs"), ("Juniper", "Halcyon Systems"), ("Orca", "Bluefield Analytics"),
             ("Sable", "Meridian Health IT"), ("Quill", "Copperline Logistics")]

_POLICY = """\
## Operating policy
- Work autonomously. The person who queued the task is not watching; do not stop to ask for confirmation of
  routine steps, and do not end your turn with a question unless the task truly cannot proceed.
- Never invent facts, file contents, numbers or results. If information is missing, say so plainly and treat
  it as a blocker rather than guessing.
- Treat credentials, personal data and customer records as confidential: never print them in full, never copy
  them into notes, tickets or summaries.
- Prefer the smallest change that does the job. Do not refactor, rename or reorganise things you were not asked
  to touch, and never delete data unless the task says so explicitly.
- Destructive or irreversible actions (deleting, overwriting, sending messages outside the team) need an explicit
  instruction in the task; when in doubt, leave things as they are and report.
- Stay within the workspace you were given. Do not try to reach the network, other machines or other users'
  files, and do not try to work around a tool that refuses a request: the refusal is the policy."""

_TOOL_RULES = """\
## Tool use
- You act only through the tools listed with this conversation. Call them through the function-calling
  interface; a tool call written out as text in your reply is not executed.
- Not every tool listed is connected in every workspace. If a tool answers that it is not available, do not
  retry it: use the tools that work.
- Read before you write: inspect the current state (files, cards, devices) before changing it, and check the
  result of each change instead of assuming it worked.
- Pass arguments exactly as each tool's schema describes them; do not add parameters the schema does not list.
- Make independent calls one after another, and keep the number of calls proportionate to the task.
- When a tool returns an error, read it: it usually says what to do differently."""

_CLOSEOUT = """\
## Finishing a task
A task is finished only when its completion protocol has run. Where the workspace gives you a closing call
(marking a card done or blocked, a status update, a hand-off script), the task is done only once that call has
succeeded; a plain-text message saying you are done does not close anything, and work left unclosed is picked
up again by the dispatcher as if nothing happened. If the task cannot be done, close it as blocked with the
reason instead of walking away."""

_STYLE = """\
## Communication
- Keep replies short and factual: what you did, what you found, what is left. No apologies, no filler.
- Use plain text; Markdown lists are fine, headings are not needed.
- Quote file names, identifiers and numbers exactly as they appear.
- Write in the language of the task.

## Environment notes
- The workspace is reset between tasks; nothing you write persists beyond this task except through the tools.
- Timestamps are UTC. Paths are relative to the workspace root unless a tool says otherwise.
- Logs of every tool call are kept for audit; reviewers read them when a task is re-opened.
- Several agents share the task queue. Do not pick up, edit or close work that was not assigned to you."""

_OPENERS = [
    "A new task was assigned to you from the team queue (ticket {ticket}, priority P{prio}). The requester wrote:",
    "You picked up ticket {ticket} (priority P{prio}) from the shared board. Here is the request as filed:",
    "Dispatch: ticket {ticket}, priority P{prio}, assigned to you by the scheduler. Original request below.",
]

_BACKGROUND = [
    "Some background: this comes out of last week's planning review, where the team agreed to clear the small "
    "operational items before the next release. Nobody else is working on it, and earlier attempts, if any, "
    "did not leave notes you can rely on.",
    "Context: the team is short-staffed this week and the queue is long, so the requester will not be around "
    "to answer questions. Related tickets exist in the tracker but are handled separately; they are not part of "
    "this one.",
    "For context, this request was triaged by the on-call engineer this morning. The triage note only says it "
    "should be handled by an agent end to end; there is no further written specification than what follows.",
]

_CLOSERS = [
    "Work through it with the tools you have. If something in the request cannot be done, say why rather than "
    "improvising around it.",
    "Please handle it end to end. The reviewer will check the final state of the workspace, not your message.",
    "Take it from here; the requester reads the outcome later, from the workspace and the call log.",
]


def _system(rng: random.Random, own: str | None) -> str:
    name, org = rng.choice(_PERSONAS)
    persona = (f"You are {name}, an autonomous operations agent deployed by {org}. You take tasks from the team "
               f"queue and carry them out end to end inside a sandboxed workspace, using the tools provided. You "
               f"are careful, terse and reliable; people trust your work because you never claim what you did not "
               f"do and you always leave the workspace in a state the next person can understand.")
    project = f"## Project instructions\n{own}" if own else ""
    return "\n\n".join(p for p in (persona, _POLICY, _TOOL_RULES, _CLOSEOUT, project, _STYLE) if p)


def _task(rng: random.Random, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first user message buried in ticket context (a non-text first message is kept as it is)."""
    out = [dict(m) for m in messages]
    first = next((m for m in out if m.get("role") == "user" and isinstance(m.get("content"), str)), None)
    if first is not None:
        opener = rng.choice(_OPENERS).format(ticket=f"OPS-{rng.randint(1000, 9999)}", prio=rng.randint(1, 3))
        first["content"] = "\n\n".join([opener, first["content"], rng.choice(_BACKGROUND), rng.choice(_CLOSERS)])
    return out


# -- distractor tools ---------------------------------------------------------------------------------


def _schema(name: str, description: str, params: dict[str, str]) -> dict[str, Any]:
    """An OpenAI tool schema; `params` maps `name[:type][?]` (`?`: optional) to its description."""
    props: dict[str, dict[str, Any]] = {}
    required: list[str] = []
    for spec, desc in params.items():
        pname, _, ptype = spec.rstrip("?").partition(":")
        props[pname] = {"type": ptype or "string", "description": desc}
        if ptype == "array":
            props[pname]["items"] = {"type": "string"}
        if not spec.endswith("?"):
            required.append(pname)
    return {"type": "function", "function": {"name": name, "description": description,
                                             "parameters": {"type": "object", "properties": props,
                                                            "required": required}}}


DISTRACTORS: list[tuple[str, str, dict[str, str]]] = [
    ("fs_read_file", "Read a text file from the shared drive.", {"path": "Path of the file.", "max_bytes:integer?": "Read at most this many bytes."}),
    ("fs_write_file", "Write a text file on the shared drive, replacing it.", {"path": "Path of the file.", "content": "The new content."}),
    ("fs_list_dir", "List a folder on the shared drive.", {"path": "Folder path.", "recursive:boolean?": "Include sub-folders."}),
    ("fs_search", "Search file names and contents on the shared drive.", {"query": "Text to look for.", "path?": "Folder to search under."}),
    ("fs_move", "Move or rename a file on the shared drive.", {"source": "Current path.", "destination": "New path."}),
    ("web_search", "Search the web and return the top results with snippets.", {"query": "Search terms.", "num_results:integer?": "How many results (default 5)."}),
    ("web_fetch", "Fetch a web page and return its readable text.", {"url": "The page URL."}),
    ("browser_open", "Open a URL in the headless browser session.", {"url": "The page URL."}),
    ("browser_click", "Click an element in the headless browser session.", {"selector": "CSS selector of the element."}),
    ("kanban_list_cards", "List the cards on a board column.", {"column": "Column name, e.g. todo.", "assignee?": "Only cards of this person."}),
    ("kanban_comment", "Add a comment to a card.", {"task_id": "The card id.", "text": "The comment."}),
    ("kanban_assign", "Assign a card to a team member.", {"task_id": "The card id.", "assignee": "User name."}),
    ("kanban_move", "Move a card to another column.", {"task_id": "The card id.", "column": "Target column."}),
    ("kanban_archive", "Archive a card.", {"task_id": "The card id."}),
    ("mcp__github__create_issue", "Create an issue in a GitHub repository.", {"repo": "owner/name.", "title": "Issue title.", "body?": "Issue body."}),
    ("mcp__github__list_pull_requests", "List open pull requests of a repository.", {"repo": "owner/name.", "state?": "open, closed or all."}),
    ("mcp__github__get_file_contents", "Read a file from a GitHub repository.", {"repo": "owner/name.", "path": "File path.", "ref?": "Branch or commit."}),
    ("mcp__slack__post_message", "Post a message to a Slack channel.", {"channel": "Channel name.", "text": "Message text."}),
    ("mcp__slack__search_messages", "Search Slack messages.", {"query": "Search terms."}),
    ("mcp__jira__create_ticket", "Create a Jira ticket.", {"project": "Project key.", "summary": "One-line summary.", "description?": "Details."}),
    ("mcp__jira__transition", "Move a Jira ticket to another status.", {"ticket": "Ticket key.", "status": "Target status."}),
    ("mcp__postgres__query", "Run a read-only SQL query on the analytics database.", {"sql": "The SQL statement."}),
    ("mcp__calendar__create_event", "Create a calendar event.", {"title": "Event title.", "start": "ISO 8601 start time.", "minutes:integer?": "Duration."}),
    ("mcp__notion__search", "Search the Notion workspace.", {"query": "Search terms."}),
    ("mcp__sentry__list_issues", "List recent Sentry issues of a project.", {"project": "Project slug.", "limit:integer?": "How many."}),
    ("email_send", "Send an email on behalf of the team.", {"to": "Recipient address.", "subject": "Subject line.", "body": "Message body."}),
    ("email_search", "Search the team mailbox.", {"query": "Search terms.", "limit:integer?": "How many messages."}),
    ("code_execute", "Run a Python snippet in a sandbox and return its output.", {"code": "Python source.", "timeout_s:integer?": "Time limit."}),
    ("code_lint", "Lint a file and return the findings.", {"path": "File path."}),
    ("git_status", "Show the working-tree status of the repository.", {}),
    ("git_commit", "Commit staged changes.", {"message": "Commit message."}),
    ("git_diff", "Show the diff of the working tree.", {"path?": "Limit to this path."}),
    ("memory_store", "Store a note in long-term agent memory.", {"key": "Note key.", "value": "Note text."}),
    ("memory_recall", "Recall notes from long-term agent memory.", {"query": "What to look for."}),
    ("todo_write", "Replace the agent's private to-do list.", {"items:array": "The to-do items, in order."}),
    ("ask_human", "Ask the requester a question and wait for the answer.", {"question": "The question."}),
    ("http_request", "Make an HTTP request to an internal service.", {"method": "GET, POST, PUT or DELETE.", "url": "The URL.", "body?": "Request body."}),
    ("image_generate", "Generate an image from a prompt.", {"prompt": "What to draw.", "size?": "e.g. 1024x1024."}),
    ("translate_text", "Translate text into another language.", {"text": "The text.", "target_language": "e.g. de."}),
    ("weather_forecast", "Get the weather forecast for a city.", {"city": "City name.", "days:integer?": "How many days."}),
    ("crm_lookup_customer", "Look a customer up in the CRM.", {"query": "Name, email or customer id."}),
    ("metrics_query", "Query the monitoring system for a metric.", {"metric": "Metric name.", "range?": "e.g. 1h, 24h."}),
    ("deploy_service", "Deploy a service to an environment.", {"service": "Service name.", "environment": "staging or production."}),
    ("schedule_job", "Schedule a background job.", {"name": "Job name.", "cron": "Cron expression."}),
    ("docs_search", "Search the internal documentation.", {"query": "Search terms."}),
]
"""Realistic tools of other integrations (files, web, boards, MCP servers, mail, code, memory): offered by the
agent harness, connected nowhere."""
