"""Small environments for the smoke pack: plain chat, and a read-only lookup service."""

from __future__ import annotations

from typing import Any

from .base import Environment, ToolError, tool


class ChatEnv(Environment):
    """No tools: the answer is the whole product."""

    name = "chat"


class ToyEnv(Environment):
    """A deterministic directory of cities, users and orders; every call is logged in the state."""

    name = "toy"

    def setup(self, state: dict[str, Any]) -> None:
        self.state = {"weather": {}, "users": {}, "orders": {}, "calls": [], **state}

    def _log(self, tool_name: str, /, **args: Any) -> None:
        self.state["calls"].append({"tool": tool_name, "args": args})

    @tool
    def get_weather(self, city: str) -> dict:
        """Current weather for a city.

        Args:
            city: City name, e.g. "Paris".
        """
        self._log("get_weather", city=city)
        w = self.state["weather"].get(city.strip().lower())
        if w is None:
            raise ToolError(f"no weather station for {city!r}")
        return {"city": city, **w}

    @tool
    def lookup_user(self, name: str) -> dict:
        """Find a user's id by their full name.

        Args:
            name: The user's full name.
        """
        self._log("lookup_user", name=name)
        uid = self.state["users"].get(name.strip().lower())
        if uid is None:
            raise ToolError(f"no user named {name!r}")
        return {"name": name, "user_id": uid}

    @tool
    def get_orders(self, user_id: str) -> dict:
        """List the orders of a user.

        Args:
            user_id: The id returned by lookup_user.
        """
        self._log("get_orders", user_id=user_id)
        orders = self.state["orders"].get(user_id.strip())
        if orders is None:
            raise ToolError(f"no user with id {user_id!r}")
        return {"user_id": user_id, "orders": orders}
