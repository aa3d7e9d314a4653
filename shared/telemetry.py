"""OpenTelemetry set-up and trace-context helpers.

The trace context travels as a W3C ``traceparent`` in the outbox row and in Kafka headers, so one
trace spans HTTP request -> outbox -> Kafka -> consumer -> WeChat call. A real SDK tracer provider
is always installed (even with export off) because only a recording provider mints trace ids to
propagate. Spans follow OpenTelemetry's semantic conventions: the relay's ``send <topic>`` producer
span and each consumer's ``process <topic>`` span (messaging: kafka), the HTTP server span of
FastAPI's instrumentation and an HTTP client span around each WeChat call.
"""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

if TYPE_CHECKING:  # a process that serves no HTTP (a roster job's) never loads the web stack
    import httpx
    from fastapi import FastAPI

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


def instrument_app(app: FastAPI) -> None:
    """One server span per request, with OpenTelemetry's stable HTTP conventions
    (http.request.method, http.route, http.response.status_code) rather than the
    instrumentation's older default names. Spans for each ASGI receive and send would triple the
    tracing cost of every call and tell nothing more."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="healthz,readyz,metrics", exclude_spans=["receive", "send"]
    )


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
# The SDK keeps at most 128 links a span.
MAX_LINKS = 128


@contextmanager
def send_span(
    topic: str, partition: int, count: int, traces: Sequence[Mapping[str, str]]
) -> Iterator[trace.Span]:
    """The relay's producer span for the messages it sends to one partition at once: a child of
    the first message's trace (the request that wrote it), linked to the others' (a batch
    serves many requests, a span has one parent)."""
    parent = context_from_headers(traces[0]) if traces else None
    links = [
        trace.Link(trace.get_current_span(context_from_headers(t)).get_span_context())
        for t in traces[1:MAX_LINKS]
    ]
    attributes: dict[str, str | int] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": topic,
        "messaging.destination.partition.id": str(partition),
    }
    if count > 1:
        attributes["messaging.batch.message_count"] = count
    with tracer.start_as_current_span(
        f"send {topic}",
        context=parent,
        kind=trace.SpanKind.PRODUCER,
        links=links,
        attributes=attributes,
    ) as span:
        yield span


def process_span(
    trace_headers: Mapping[str, str],
    *,
    topic: str,
    partition: int,
    group: str,
    message_id: str,
    offset: int | None = None,
    count: int = 1,
) -> trace.Span:
    """A consumer's span for applying a message (or a run of ``count`` from one partition),
    a child of the trace the message carries. Use as a context manager."""
    attributes: dict[str, str | int] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": topic,
        "messaging.destination.partition.id": str(partition),
        "messaging.consumer.group.name": group,
        "messaging.message.id": message_id,
    }
    if offset is not None:
        attributes["messaging.kafka.offset"] = offset
    if count > 1:
        attributes["messaging.batch.message_count"] = count
    return _consumer_tracer.start_span(
        f"process {topic}",
        context=context_from_headers(trace_headers),
        kind=trace.SpanKind.CONSUMER,
        attributes=attributes,
    )


_consumer_tracer = trace.get_tracer("gonghui.consumer")
# Credentials in a query (WeChat's access_token, the token call's secret) never reach a span.
_SECRET_QUERY = re.compile(r"((?:^|[?&])(?:access_token|secret|appid)=)[^&]*")


def redacted_url(url: httpx.URL) -> str:
    return _SECRET_QUERY.sub(r"\1REDACTED", str(url))


async def traced_request(
    request: httpx.Request, send: Callable[[httpx.Request], Awaitable[httpx.Response]]
) -> httpx.Response:
    """Send ``request`` inside an HTTP client span carrying the trace to the server
    (``traceparent``). Outside any trace it is sent as is: a root span per call of a busy
    sender would cost more than it tells."""
    if not trace.get_current_span().is_recording():
        return await send(request)
    method = request.method
    attributes: dict[str, str | int] = {
        "http.request.method": method,
        "url.full": redacted_url(request.url),
        "server.address": request.url.host,
    }
    if request.url.port is not None:
        attributes["server.port"] = request.url.port
    with tracer.start_as_current_span(
        method, kind=trace.SpanKind.CLIENT, attributes=attributes
    ) as span:
        propagate.inject(request.headers)  # this span is the server's parent
        try:
            response = await send(request)
        except httpx.HTTPError as exc:
            span.set_attribute("error.type", type(exc).__name__)
            span.set_status(trace.StatusCode.ERROR)
            raise
        span.set_attribute("http.response.status_code", response.status_code)
        if response.status_code >= 400:
            span.set_attribute("error.type", str(response.status_code))
            span.set_status(trace.StatusCode.ERROR)
        return response
