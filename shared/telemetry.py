"""OpenTelemetry set-up and trace-context helpers.

The trace context travels as a W3C ``traceparent`` in the outbox row and in Kafka headers, so one
trace spans HTTP request -> outbox -> Kafka -> consumer. A real SDK tracer provider is always
installed (even with export off) because only a recording provider mints trace ids to propagate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

_installed = False


def setup_tracing(service: str, mode: str, otlp_endpoint: str) -> None:
    global _installed
    if _installed:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": f"gonghui-{service}"}))
    exporter: SpanExporter | None = None
    if mode == "console":
        exporter = ConsoleSpanExporter()
    elif mode == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=otlp_endpoint)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _installed = True


def current_trace_headers() -> dict[str, str]:
    """``traceparent`` (and ``tracestate``) of the current span, empty when there is none."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from_headers(headers: Iterable[tuple[str, bytes]] | Mapping[str, str]) -> Context:
    if isinstance(headers, Mapping):
        carrier = dict(headers)
    else:
        carrier = {k: v.decode() for k, v in headers if k in ("traceparent", "tracestate")}
    return propagate.extract(carrier)


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


tracer = trace.get_tracer("gonghui")
