"""Per-request figures from one timed ChatResult (definitions in `definitions.py`).

Token counts come from the server's `usage`, never from counting chunks. Times come from the client's
monotonic clock (`Timing`): `sent` just before the HTTP send, one timestamp per chunk that carried content,
reasoning or a tool-call delta (role-only and empty chunks do not count), `end` when the stream closed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..core.types import ChatResult

MIN_DECODE_WINDOW_S = 0.001
"""A decode window (E2E − TTFT) shorter than this is degenerate: decode tok/s and ITL are "n/a"."""


@dataclass
class Sample:
    """One request as measured. Times in seconds; `sent`/`end` are perf_counter stamps."""

    ok: bool
    error: str | None = None
    sent: float | None = None
    end: float | None = None
    ttft_s: float | None = None
    ttfb_s: float | None = None
    """Time to the response head. llama-server sends it after templating and tokenising the prompt (and its host
    prompt cache), before prefill: the part of TTFT the server spends before its own prompt clock starts."""
    ttft_content_s: float | None = None
    ttft_reasoning_s: float | None = None
    ttft_tool_s: float | None = None
    e2e_s: float | None = None
    chunk_gaps_s: list[float] = field(default_factory=list)
    n_chunks: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    finish_reason: str | None = None
    server: dict[str, Any] | None = None
    """The server's own clock for this request (llama-server `timings`, Ollama eval counts), verbatim."""
    queue_s: float | None = None
    """Client-side time from the call to the first request-header write (not part of TTFT or E2E)."""
    turn: int | None = None
    label: str | None = None
    """Which part of a leg this request belongs to (e.g. 'c=8', 'cold 512', 'warm c=1')."""

    # -- derived figures (None = "n/a") ----------------------------------------------------------------

    @property
    def decode_window_s(self) -> float | None:
        if self.e2e_s is None or self.ttft_s is None:
            return None
        return self.e2e_s - self.ttft_s

    def _decodable(self) -> bool:
        w = self.decode_window_s
        n = self.completion_tokens
        return bool(self.ok and n is not None and n >= 2 and self.n_chunks >= 2 and w is not None
                    and w >= MIN_DECODE_WINDOW_S)

    @property
    def decode_tps(self) -> float | None:
        """completion_tokens ÷ (E2E − TTFT); None when the decode window is degenerate."""
        return self.completion_tokens / self.decode_window_s if self._decodable() else None  # type: ignore[operator]

    @property
    def itl_s(self) -> float | None:
        """Per-token inter-token latency: (E2E − TTFT) ÷ (completion_tokens − 1)."""
        return self.decode_window_s / (self.completion_tokens - 1) if self._decodable() else None  # type: ignore[operator]

    @property
    def wall_tps(self) -> float | None:
        if not self.ok or not self.completion_tokens or not self.e2e_s:
            return None
        return self.completion_tokens / self.e2e_s

    @property
    def tpot_s(self) -> float | None:
        """E2E ÷ completion_tokens (TTFT included, as GuideLLM's TPOT)."""
        if not self.ok or not self.completion_tokens or self.e2e_s is None:
            return None
        return self.e2e_s / self.completion_tokens

    @property
    def new_prompt_tokens(self) -> int | None:
        """Prompt tokens the server had to process: prompt_tokens − cached_tokens."""
        if self.prompt_tokens is None:
            return None
        return self.prompt_tokens - (self.cached_tokens or 0)

    @property
    def prefill_tps(self) -> float | None:
        """(prompt_tokens − cached_tokens) ÷ TTFT."""
        n = self.new_prompt_tokens
        if not self.ok or n is None or not self.ttft_s:
            return None
        return n / self.ttft_s

    @property
    def tokens_per_chunk(self) -> float | None:
        if not self.ok or not self.completion_tokens or not self.n_chunks:
            return None
        return self.completion_tokens / self.n_chunks

    def to_dict(self, gaps: bool = True) -> dict[str, Any]:
        d = asdict(self)
        d.pop("sent"), d.pop("end")
        for k in list(d):
            if k.endswith("_s") and isinstance(d[k], float):
                d[k] = round(d[k], 6)
        d["chunk_gaps_ms"] = [round(g * 1000, 3) for g in self.chunk_gaps_s] if gaps else None
        d.pop("chunk_gaps_s")
        for name in ("decode_tps", "itl_s", "wall_tps", "tpot_s", "prefill_tps", "tokens_per_chunk"):
            v = getattr(self, name)
            d[name] = None if v is None else round(v, 6)
        return d


def failed(error: str, sent: float | None = None, end: float | None = None) -> Sample:
    return Sample(ok=False, error=error[:300], sent=sent, end=end)


def _openai_kinds(chunk: dict[str, Any]) -> list[set[str]]:
    """For each choice in one SSE chunk that the client timestamped: which kinds of delta it carried."""
    out = []
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") or {}
        kinds = set()
        if delta.get("content"):
            kinds.add("content")
        if delta.get("reasoning_content") or delta.get("reasoning"):
            kinds.add("reasoning")
        if delta.get("tool_calls"):
            kinds.add("tool")
        if kinds:
            out.append(kinds)
    return out


def _ollama_kinds(chunk: dict[str, Any]) -> list[set[str]]:
    msg = chunk.get("message") or {}
    kinds = set()
    if msg.get("content"):
        kinds.add("content")
    if msg.get("thinking"):
        kinds.add("reasoning")
    if msg.get("tool_calls"):
        kinds.add("tool")
    return [kinds] if kinds else []


def sample_from_result(result: ChatResult, api: str = "openai") -> Sample:
    """Measure one finished request."""
    t = result.timing
    u = result.usage
    server = result.server_timings
    cached = u.cached_tokens
    if cached is None and isinstance(server, dict) and isinstance(server.get("cache_n"), int):
        cached = server["cache_n"]
    s = Sample(ok=True, sent=t.sent, end=t.end, prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens,
               cached_tokens=cached, finish_reason=result.finish_reason, server=server)
    if t.end is not None:
        s.e2e_s = t.end - t.sent
    if t.first_token is not None:
        s.ttft_s = t.first_token - t.sent
    if t.first_byte is not None and t.first_byte >= t.sent:
        s.ttfb_s = t.first_byte - t.sent
    stamps = list(t.chunks)
    s.n_chunks = len(stamps)
    s.chunk_gaps_s = [b - a for a, b in zip(stamps, stamps[1:])]
    firsts: dict[str, float] = {}
    if isinstance(result.response, list):
        kinds_of = _ollama_kinds if api == "ollama" else _openai_kinds
        i = 0
        for chunk in result.response:
            if not isinstance(chunk, dict):
                continue
            for kinds in kinds_of(chunk):
                if i >= len(stamps):
                    break
                for k in kinds:
                    firsts.setdefault(k, stamps[i])
                i += 1
    elif t.first_token is not None:  # non-streaming: everything arrives at the end
        if result.content:
            firsts["content"] = t.first_token
        if result.reasoning:
            firsts["reasoning"] = t.first_token
        if result.tool_calls:
            firsts["tool"] = t.first_token
    for kind, attr in (("content", "ttft_content_s"), ("reasoning", "ttft_reasoning_s"), ("tool", "ttft_tool_s")):
        if kind in firsts:
            setattr(s, attr, firsts[kind] - t.sent)
    return s
