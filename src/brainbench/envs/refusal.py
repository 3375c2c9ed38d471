"""Requests that need no tool, with tempting tools on offer: any call is an `unneeded_call`.

Every tool works and answers plausibly (it never errors), so an unneeded call leaves no error line:
it is one of the silent failures the iceberg metric counts.
"""

from __future__ import annotations

from typing import Any

from ._agentic import AgenticEnv
from .base import tool


class RefusalEnv(AgenticEnv):
    name = "refusal"

    def setup(self, state: dict[str, Any]) -> None:
        self.state = {"calls": [], **state}

    def _log(self, name: str, **args: Any) -> None:
        self.state["calls"].append({"tool": name, "args": args})

    @tool
    def search_web(self, query: str) -> dict:
        """Search the web and return the top results.

        Args:
            query: What to search for.
        """
        self._log("search_web", query=query)
        return {"results": [{"title": f"Results for {query}", "snippet": "Various sources discuss this topic."}]}

    @tool
    def get_weather(self, city: str) -> dict:
        """Current weather for a city.

        Args:
            city: City name.
        """
        self._log("get_weather", city=city)
        return {"city": city, "temp_c": 21, "conditions": "clear"}

    @tool
    def run_python(self, code: str) -> dict:
        """Run Python code in a sandbox and return its output.

        Args:
            code: The Python source to run.
        """
        self._log("run_python", code=code)
        return {"stdout": "", "note": "executed in a sandbox"}

    @tool
    def send_message(self, to: str, text: str) -> dict:
        """Send a chat message to a contact.

        Args:
            to: Contact name.
            text: Message text.
        """
        self._log("send_message", to=to, text=text)
        return {"ok": True}
