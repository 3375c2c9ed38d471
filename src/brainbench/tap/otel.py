"""Optional OpenTelemetry export of the tap's exchanges (extra `tap-otel`, imported only when asked for).

One span per chat exchange, named `chat MODEL`, with the GenAI semantic-convention attributes (`gen_ai.*`) and
`brainbench.failure.kind`: the failure ids the tap found in that reply (a list; empty when clean). An exchange
that met infrastructure trouble has status ERROR and `brainbench.infra.kind`. Sent over OTLP/HTTP (protobuf),
batched in the SDK's own thread.
"""

from __future__ import annotations

import time
from typing import Any

from ..core.errors import BrainbenchError
from ..core.records import AttemptRecord, Turn
from ..core.types import InfraEvent


def turn_failures(turn: Turn) -> list[str]:
    """The failure ids visible in one reply on its own (conversation-level ones are in the stored verdict)."""
    r = turn.result
    out = [t.error_kind for t in turn.tool_results if t.error_kind]
    out += ["tool_call_in_text" for c in r.tool_calls if c.in_text]
    if not r.content.strip() and not r.reasoning.strip() and not r.tool_calls:
        out.append("empty_response")
    return out


class OtelExport:
    """Spans for exchanges; `exporter` (tests: an in-memory one) replaces the OTLP/HTTP exporter to `endpoint`."""

    def __init__(self, endpoint: str | None, exporter: Any = None):
        try:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        except ImportError:
            raise BrainbenchError("--otlp needs the OpenTelemetry SDK: pip install 'brainbench[tap-otel]'") from None
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=endpoint)
        self.provider = TracerProvider(resource=Resource.create({"service.name": "brainbench-tap"}))
        proc = SimpleSpanProcessor(exporter) if endpoint is None else BatchSpanProcessor(exporter)
        self.provider.add_span_processor(proc)
        self.tracer = self.provider.get_tracer("brainbench.tap")

    def exchange(self, rec: AttemptRecord, api: str, body: dict[str, Any], turn: Turn | None,
                 events: list[InfraEvent], t_in: float) -> None:
        """One span for one exchange (`turn` None: no reply, only infrastructure events)."""
        from opentelemetry.trace import SpanKind, Status, StatusCode

        now_ns, now = time.time_ns(), time.perf_counter()
        start = now_ns - int((now - t_in) * 1e9)
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "ollama" if api == "ollama" else "openai",
            "gen_ai.request.model": rec.model, "gen_ai.conversation.id": rec.key,
            "brainbench.scenario": rec.scenario_id, "brainbench.turn": len(rec.turns) - 1 if turn else -1,
            "brainbench.failure.kind": turn_failures(turn) if turn else [],
        }
        for k in ("temperature", "top_p", "max_tokens"):
            if isinstance(body.get(k), (int, float)) and not isinstance(body.get(k), bool):
                attrs[f"gen_ai.request.{k}"] = body[k]
        if turn is not None:
            r = turn.result
            attrs["gen_ai.response.finish_reasons"] = [r.finish_reason or ""]
            attrs["brainbench.tool_calls"] = len(r.tool_calls)
            if r.usage.prompt_tokens is not None:
                attrs["gen_ai.usage.input_tokens"] = r.usage.prompt_tokens
            if r.usage.completion_tokens is not None:
                attrs["gen_ai.usage.output_tokens"] = r.usage.completion_tokens
        if events:
            attrs["brainbench.infra.kind"] = [e.kind for e in events]
        span = self.tracer.start_span(f"chat {rec.model}", kind=SpanKind.CLIENT, start_time=start, attributes=attrs)
        if events and turn is None:
            span.set_status(Status(StatusCode.ERROR, events[-1].detail[:200]))
        span.end(end_time=now_ns)

    def shutdown(self) -> None:
        self.provider.shutdown()
