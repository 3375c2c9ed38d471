"""`--think on|off|both`: switch a reasoning model's thinking through the chat template, and count it apart.

The switch is `chat_template_kwargs: {enable_thinking: true|false}` in every request (llama.cpp `--jinja`,
vLLM and SGLang pass it to templates such as Qwen3's). A mode is part of the run config (so attempts of
the two modes never share a key) and of the model label (`<brain> [think]`, `<brain> [no-think]`), so
`both` gives two rows in every table. Thinking text is always stored apart from the answer (ChatResult
.reasoning) and never graded; `reasoning_stats` counts it per model label.
"""

from __future__ import annotations

from typing import Any

from .core.errors import BrainbenchError

MODES = ("on", "off", "both")


def think_modes(value: str | None) -> list[str | None]:
    if value in (None, ""):
        return [None]
    if value not in MODES:
        raise BrainbenchError(f"--think must be one of {', '.join(MODES)}, not {value!r}")
    return ["on", "off"] if value == "both" else [value]


def think_label(label: str, mode: str | None) -> str:
    return label if mode is None else f"{label} [{'think' if mode == 'on' else 'no-think'}]"


def think_config(mode: str | None) -> dict[str, Any]:
    return {} if mode is None else {"think": mode}


def think_params(mode: str | None) -> dict[str, Any]:
    return {} if mode is None else {"chat_template_kwargs": {"enable_thinking": mode == "on"}}


class ThinkClient:
    """Wraps a ChatClient: every request carries the thinking switch (merged into any template kwargs)."""

    def __init__(self, client: Any, mode: str | None):
        self._client = client
        self.mode = mode
        self.endpoint = getattr(client, "endpoint", None)

    async def chat(self, messages: list[dict[str, Any]], **params: Any):
        extra = think_params(self.mode)
        if extra:
            kwargs = {**(params.get("chat_template_kwargs") or {}), **extra["chat_template_kwargs"]}
            params = {**params, "chat_template_kwargs": kwargs}
        return await self._client.chat(messages, **params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def with_think(client: Any, mode: str | None) -> Any:
    return client if mode is None else ThinkClient(client, mode)


def reasoning_stats(store: Any) -> dict[str, dict[str, int]]:
    """Per model label: turns, turns that thought, reasoning tokens as the server reported them, reasoning
    words (for servers that do not report), answer tokens, and replies cut off while thinking."""
    out: dict[str, dict[str, int]] = {}
    for rec in store.attempts(status="completed"):
        s = out.setdefault(rec.model, {"turns": 0, "thinking_turns": 0, "reasoning_tokens": 0, "reasoning_words": 0,
                                       "completion_tokens": 0, "cut_while_thinking": 0})
        for t in rec.turns:
            r = t.result
            s["turns"] += 1
            s["completion_tokens"] += r.usage.completion_tokens or 0
            if r.reasoning.strip():
                s["thinking_turns"] += 1
                s["reasoning_words"] += len(r.reasoning.split())
                s["reasoning_tokens"] += r.usage.reasoning_tokens or 0
                if r.finish_reason == "length" and not r.content.strip() and not r.tool_calls:
                    s["cut_while_thinking"] += 1
    return out
