"""A kanban board with a workspace: the worker does the card's work, then must close the card.

Mirrors hermes-agent's worker protocol: `kanban_complete {task_id?, summary, result, metadata,
created_cards[], artifacts[]}` (requires a summary or a result, refused with exactly
`{"error": "provide at least one of: summary (preferred), result"}` otherwise) and
`kanban_block {task_id?, reason}`. A card left `in_progress` when the worker stops is the invisible
failure this environment exists to catch: the turn-end guard nudges once, the dispatcher re-dispatches
once, and scoring records `omitted_closeout` if the card is still open at the end.

State (scenario `state`):

    cards:  {id: {title, body, status: todo|in_progress|done|blocked, assignee, ...}}
    mine:   [ids of the cards assigned to this worker]   (default: every in_progress card)
    files:  {relative path: text}                          (written into the per-attempt workdir)
"""

from __future__ import annotations

from typing import Any

from ._agentic import AgenticEnv
from .base import ToolError, tool

STATUSES = ("todo", "in_progress", "done", "blocked")
NEEDS_SUMMARY = "provide at least one of: summary (preferred), result"


class KanbanEnv(AgenticEnv):
    name = "kanban"
    terminal_tools = ("kanban_complete", "kanban_block")

    def setup(self, state: dict[str, Any]) -> None:
        cards = state.get("cards") or {}
        for cid, card in cards.items():
            card.setdefault("status", "todo")
            card.setdefault("title", cid)
            card.setdefault("body", "")
            if card["status"] not in STATUSES:
                raise ValueError(f"card {cid}: bad status {card['status']!r}")
        mine = state.get("mine") or [c for c, v in cards.items() if v["status"] == "in_progress"]
        self.state = {"cards": cards, "mine": mine, "created": [], "closeouts": []}
        self.write_workspace(state.get("files") or {})

    @classmethod
    def requires_closeout(cls, state: dict[str, Any]) -> bool:
        return True

    def final_state(self) -> dict[str, Any]:
        return {**super().final_state(), "files": self.read_workspace()}

    def open_obligation(self) -> str | None:
        open_cards = [c for c in self.state["mine"] if self.state["cards"][c]["status"] == "in_progress"]
        if not open_cards:
            return None
        which = ", ".join(open_cards)
        return (f"card {which} is still in_progress; close it with kanban_complete (with a summary) "
                f"or kanban_block (with a reason)")

    # -- helpers ------------------------------------------------------------------------------------

    def _card(self, task_id: str | None) -> tuple[str, dict[str, Any]]:
        if task_id is None or not str(task_id).strip():
            open_cards = [c for c in self.state["mine"] if self.state["cards"][c]["status"] == "in_progress"]
            if len(open_cards) != 1:
                raise ToolError("task_id is required: you have "
                                f"{len(open_cards)} cards in progress ({', '.join(open_cards) or 'none'})",
                                kind="malformed_args")
            task_id = open_cards[0]
        task_id = str(task_id).strip()
        if task_id not in self.state["cards"]:
            raise ToolError(f"no card {task_id!r}; your cards: {', '.join(self.state['mine'])}")
        return task_id, self.state["cards"][task_id]

    def _closable(self, task_id: str | None) -> tuple[str, dict[str, Any]]:
        cid, card = self._card(task_id)
        if cid not in self.state["mine"]:
            raise ToolError(f"card {cid} is not assigned to you")
        if card["status"] != "in_progress":
            raise ToolError(f"card {cid} is {card['status']}, not in_progress")
        return cid, card

    # -- board tools --------------------------------------------------------------------------------

    @tool
    def kanban_show(self, task_id: str | None = None) -> dict:
        """Show a card: title, body (what to do), status. Without task_id, shows your card in progress.

        Args:
            task_id: Card id, e.g. "t_1a2b". Optional when you have exactly one card in progress.
        """
        cid, card = self._card(task_id)
        return {"id": cid, **{k: v for k, v in card.items() if k not in ("closed_summary", "closed_reason")}}

    @tool
    def kanban_complete(self, task_id: str | None = None, summary: str | None = None, result: str | None = None,
                        metadata: dict | None = None, created_cards: list[str] | None = None,
                        artifacts: list[str] | None = None) -> dict:
        """Mark your card done. This is a terminal call: make it once the work is finished.

        Args:
            task_id: Card id. Optional when you have exactly one card in progress.
            summary: One or two lines on what was done (preferred).
            result: The result, when the card asks for a value rather than a file.
            metadata: Optional extra key/values.
            created_cards: Ids of follow-up cards you created with kanban_create.
            artifacts: Workspace paths of the files you produced.
        """
        if not (summary or "").strip() and not (result or "").strip():
            raise ToolError(NEEDS_SUMMARY, kind="malformed_args")
        cid, card = self._closable(task_id)
        card.update(status="done", closed_summary=summary or "", closed_result=result or "")
        self.state["closeouts"].append({"card": cid, "status": "done", "summary": summary or "",
                                        "result": result or "", "metadata": metadata or {},
                                        "created_cards": created_cards or [], "artifacts": artifacts or []})
        self.mark_closed_if_all()
        return {"ok": True, "card": cid, "status": "done"}

    @tool
    def kanban_block(self, reason: str, task_id: str | None = None) -> dict:
        """Mark your card blocked because it cannot be done (missing input, contradiction, no access). Terminal.

        Args:
            reason: What is missing or wrong, so a person can unblock it.
            task_id: Card id. Optional when you have exactly one card in progress.
        """
        if not reason.strip():
            raise ToolError("reason must not be empty", kind="malformed_args")
        cid, card = self._closable(task_id)
        card.update(status="blocked", closed_reason=reason)
        self.state["closeouts"].append({"card": cid, "status": "blocked", "reason": reason})
        self.mark_closed_if_all()
        return {"ok": True, "card": cid, "status": "blocked"}

    @tool
    def kanban_create(self, title: str, body: str = "") -> dict:
        """Create a follow-up card in todo (for work you found but should not do now).

        Args:
            title: Short title of the new card.
            body: What the new card asks for.
        """
        if not title.strip():
            raise ToolError("title must not be empty", kind="malformed_args")
        cid = f"t_new{len(self.state['created']) + 1}"
        self.state["cards"][cid] = {"title": title, "body": body, "status": "todo"}
        self.state["created"].append(cid)
        return {"ok": True, "card": cid, "status": "todo"}

    def mark_closed_if_all(self) -> None:
        if self.open_obligation() is None:
            self.mark_closed()

    # -- workspace tools ----------------------------------------------------------------------------

    @tool
    def list_files(self, path: str = ".") -> dict:
        """List the files in a workspace folder.

        Args:
            path: Folder inside the workspace (default: the workspace root).
        """
        folder = self.confine(path)
        if not folder.is_dir():
            raise ToolError(f"{path!r} is not a folder in the workspace")
        root = self.workdir.resolve()
        return {"files": sorted(p.relative_to(root).as_posix() for p in folder.rglob("*") if p.is_file())}

    @tool
    def read_file(self, path: str) -> str:
        """Read a text file from the workspace.

        Args:
            path: Path inside the workspace, e.g. "notes.md".
        """
        p = self.confine(path)
        if not p.is_file():
            raise ToolError(f"no file {path!r} in the workspace")
        return p.read_text(encoding="utf-8", errors="replace")

    @tool
    def write_file(self, path: str, content: str) -> dict:
        """Create or overwrite a text file in the workspace.

        Args:
            path: Path inside the workspace, e.g. "summary.md".
            content: The full text of the file.
        """
        p = self.confine(path)
        if p.is_dir():
            raise ToolError(f"{path!r} is a folder")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content, encoding="utf-8")
        return {"ok": True, "path": path, "bytes": len(content.encode())}
