"""Tracing off by default, on with an OTLP endpoint; trace context across HTTP hops and the broker.

The spans are recorded by the SDK's in-memory exporter on a provider of the test's own: the process's
global provider stays the API's no-op one, as in every component without an OTLP endpoint.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.types import Receive, Scope, Send

from shared.messaging.outbox import trace_headers
from shared.observability.tracing import (
    ServerSpanMiddleware,
    TracerCache,
    configure_tracing,
    current_trace_id,
    otlp_endpoint,
    process_span,
    publish_span,
    with_trace_context,
)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracers(exporter: InMemorySpanExporter) -> Iterator[TracerCache]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield TracerCache("test", provider=provider)
    provider.shutdown()


def trace_of(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.trace_id, "032x")


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


# --- on and off ---------------------------------------------------------------------------------


def test_tracing_is_off_without_an_otlp_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    assert otlp_endpoint() is None
    assert configure_tracing("orders") is None
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    assert TracerCache().get() is None


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "http://collector:4318"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, "http://c:4318/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, None),
    ],
)
def test_an_otlp_endpoint_switches_tracing_on(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str | None
) -> None:
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_EXPORTER",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert otlp_endpoint() == expected


# --- HTTP ---------------------------------------------------------------------------------------


def test_without_a_span_headers_go_out_untouched() -> None:
    headers = [(b"x-request-id", b"r1"), (b"traceparent", TRACEPARENT.encode())]
    assert with_trace_context(headers) is headers


def test_a_span_replaces_the_callers_traceparent(tracers: TracerCache) -> None:
    tracer = tracers.get()
    assert tracer is not None
    headers = [(b"x-request-id", b"r1"), (b"traceparent", TRACEPARENT.encode()), (b"tracestate", b"a=1")]
    with tracer.start_as_current_span("call") as span:
        sent = dict(with_trace_context(headers))
        ours = span.get_span_context()
    assert sent[b"x-request-id"] == b"r1"
    assert sent[b"traceparent"].decode().startswith(f"00-{ours.trace_id:032x}-{ours.span_id:016x}-")
    assert b"tracestate" not in sent


async def test_the_server_span_continues_the_clients_trace_and_hands_it_on(
    tracers: TracerCache, exporter: InMemorySpanExporter
) -> None:
    forwarded: list[tuple[bytes, bytes]] = []

    async def proxy(scope: Scope, receive: Receive, send: Send) -> None:
        forwarded.extend(with_trace_context(list(scope["headers"])))
        await send({"type": "http.response.start", "status": 502, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = ServerSpanMiddleware(proxy, tracers)

    async def routed(scope: Scope, receive: Receive, send: Send) -> None:
        scope["route_template"] = "/api/v1/orders/*"
        await app(scope, receive, send)

    transport = httpx.ASGITransport(app=routed)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        answer = await client.post("/api/v1/orders", headers={"traceparent": TRACEPARENT})
    assert answer.status_code == 502
    (span,) = exporter.get_finished_spans()
    assert span.name == "POST /api/v1/orders/*"
    assert span.kind is SpanKind.SERVER
    assert trace_of(span) == TRACE_ID
    assert parent_of(span) == 0x00F067AA0BA902B7
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 502
    assert not span.status.is_ok
    assert dict(forwarded)[b"traceparent"].decode().startswith(f"00-{TRACE_ID}-{span_id(span):016x}-")


async def test_the_server_span_middleware_only_passes_through_while_tracing_is_off() -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    transport = httpx.ASGITransport(app=ServerSpanMiddleware(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        assert (await client.get("/x", headers={"traceparent": TRACEPARENT})).status_code == 204
    assert dict(seen[0]["headers"])[b"traceparent"] == TRACEPARENT.encode()


# --- the broker ---------------------------------------------------------------------------------


def test_one_trace_runs_through_the_outbox_and_the_broker(
    tracers: TracerCache, exporter: InMemorySpanExporter
) -> None:
    """orders' request -> its outbox row -> the relay's publish -> notification's consumer, whose own
    outbox row -> its relay -> realtime's consumer: one trace, each hop the child of the one before."""
    tracer = tracers.get()
    assert tracer is not None
    with tracer.start_as_current_span("POST /api/v1/orders", kind=SpanKind.SERVER):
        stored = {"correlation_id": "r1", **trace_headers()}
    # Later, in the relay's own task: no span is current any more.
    assert current_trace_id() is None
    with publish_span(
        exchange="events", event_type="order.created", message_id="e1", headers=stored, tracers=tracers
    ) as published:
        assert published["correlation_id"] == "r1"
    with process_span(
        consumer="notification",
        queue="notification.events",
        event_type="order.created",
        message_id="e1",
        headers=published,
        tracers=tracers,
    ):
        stored_again = trace_headers()
    with publish_span(
        exchange="events",
        event_type="notification.created",
        message_id="e2",
        headers=stored_again,
        tracers=tracers,
    ) as published_again:
        pass
    with process_span(
        consumer="realtime",
        queue="realtime.events",
        event_type="notification.created",
        message_id="e2",
        headers={key: value.encode() for key, value in published_again.items()},  # as the broker may
        tracers=tracers,
    ):
        pass

    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert list(spans) == [
        "POST /api/v1/orders",
        "publish order.created",
        "process order.created",
        "publish notification.created",
        "process notification.created",
    ]
    assert len({trace_of(span) for span in spans.values()}) == 1
    chain = list(spans.values())
    for parent, child in itertools.pairwise(chain):
        assert parent_of(child) == span_id(parent), f"{child.name} is not a child of {parent.name}"
    assert chain[1].kind is SpanKind.PRODUCER
    assert chain[2].kind is SpanKind.CONSUMER
    assert chain[2].attributes is not None
    assert chain[2].attributes["messaging.consumer.group.name"] == "notification"


def test_without_tracing_the_trace_id_still_crosses_the_broker() -> None:
    """No SDK: the relay publishes the stored context as it is, and a consumer's own events and log
    lines carry the same trace id."""
    stored = {"correlation_id": "r1", "traceparent": TRACEPARENT}
    with publish_span(exchange="events", event_type="order.created", message_id="e1", headers=stored) as out:
        assert out == stored
    with process_span(
        consumer="notification",
        queue="notification.events",
        event_type="order.created",
        message_id="e1",
        headers=out,
    ):
        assert current_trace_id() == TRACE_ID
        assert trace_headers()["traceparent"].split("-")[1] == TRACE_ID
    assert current_trace_id() is None
