"""OpenTelemetry tracing: on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, a no-op otherwise.

Each component calls ``configure_tracing`` once when it starts serving (``shared.web.server.serve``). With an
endpoint it installs the SDK's tracer provider, exporting in batches over OTLP/HTTP (protobuf); the other
``OTEL_*`` variables the SDK reads apply as usual (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_TRACES_SAMPLER``, ``OTEL_BSP_*``, ``OTEL_EXPORTER_OTLP_HEADERS``, ...). Without one nothing is
installed: the API's no-op tracer costs next to nothing, and W3C ``traceparent`` headers are still carried
along unchanged, so log lines keep a common trace id across components that do not record.

Where the spans come from:

- FastAPI's native telemetry (``shared.web.app``): a server span per request, continuing an incoming
  ``traceparent``; probes and scrapes are left out;
- ``ServerSpanMiddleware``: the same for the gateway's proxy chain, which runs outside FastAPI;
- ``client_span`` and ``with_trace_context``: a client span and the ``traceparent`` header on calls through
  ``shared.http`` (the gateway's proxy, orders' account check); httpx calls (JWKS, the users directory)
  are instrumented by opentelemetry-instrumentation-httpx; readiness checks make none (``untraced``);
- ``publish_span`` and ``process_span``: a producer span when an outbox relay publishes a row, continuing
  the trace stored with the row (``shared.messaging.outbox.trace_headers``) although it runs later and in
  another
  task, and a consumer span around each message a consumer handles, continuing the trace in its headers.
  One trace therefore runs from the gateway through a service, its outbox and RabbitMQ into every
  consumer, and on through the events those consumers publish in turn.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    # The SDK is imported only when tracing is switched on.
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger(__name__)

Header = tuple[bytes, bytes]

TRACER_NAME = "shared"
# Trace context headers (W3C); a proxy replaces the client's with its own span's.
_CONTEXT_HEADERS = frozenset({b"traceparent", b"tracestate"})


# --- set-up -------------------------------------------------------------------------------------


def otlp_endpoint() -> str | None:
    """Where spans are exported, or None when tracing is off (no endpoint, or switched off)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return None
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT", ""
    )
    return endpoint.strip() or None


def build_provider(service: str, exporter: SpanExporter) -> TracerProvider:
    """A provider whose spans name ``service`` (unless ``OTEL_SERVICE_NAME`` says otherwise)."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service}
    # The sampler comes from OTEL_TRACES_SAMPLER (default: parent-based, always on).
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def install(provider: TracerProvider) -> None:
    """Make ``provider`` the process's tracer provider and trace every httpx client made from now on."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)


def configure_tracing(service: str) -> TracerProvider | None:
    """Export spans over OTLP/HTTP when an endpoint is configured; return the provider to shut down."""
    endpoint = otlp_endpoint()
    if endpoint is None:
        return None
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    if protocol != "http/protobuf":
        log.warning("only OTLP over http/protobuf is installed; using it", extra={"requested": protocol})
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    # The exporter reads the endpoint (appending /v1/traces to the generic one), headers and timeout itself.
    provider = build_provider(service, OTLPSpanExporter())
    install(provider)
    parts = urlsplit(endpoint)
    # Scheme, host and port only: whatever else an endpoint URL holds stays out of the logs.
    log.info("tracing on", extra={"otlp_endpoint": f"{parts.scheme}://{parts.hostname}:{parts.port or ''}"})
    return provider


class TracerCache:
    """The named tracer of the global provider, or None while none is installed.

    A component's app is built before ``serve`` installs the provider, so this looks again, at most
    once a second, while it has found none (the lookup reads the environment: ~1 us a time, on every
    request otherwise); once it has one it keeps it, as the global provider can be set only once.
    Hot paths skip all tracing work while this returns None.
    """

    def __init__(self, name: str = TRACER_NAME, provider: trace.TracerProvider | None = None) -> None:
        self.name = name
        # A fixed provider instead of the global one (tests with an in-memory exporter).
        self.fixed = provider
        self._tracer: Tracer | None = None
        self._look_again_at = 0.0

    def get(self) -> Tracer | None:
        if self._tracer is not None:
            return self._tracer
        now = time.monotonic()
        if now >= self._look_again_at:
            self._look_again_at = now + 1.0
            provider = self.fixed or trace.get_tracer_provider()
            if not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
                self._tracer = provider.get_tracer(self.name)
        return self._tracer

    def get_or_noop(self) -> Tracer:
        """The tracer, or the no-op one, which still hands a remote parent's context on unchanged."""
        return self.get() or _NOOP


_NOOP = trace.NoOpTracer()


_TRACERS = TracerCache()


def untraced() -> AbstractContextManager[object]:
    """Calls made inside make no spans: readiness probes ask every dependency every few seconds."""
    if _TRACERS.get() is None:
        return nullcontext()
    # Imported here: it pulls in wrapt and more, needed only once tracing is on.
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    return suppress_instrumentation()


# --- HTTP ---------------------------------------------------------------------------------------


class _AsgiHeaders(Getter[Iterable[Header]]):
    """Reads trace context from ASGI headers (lower-case byte names)."""

    def get(self, carrier: Iterable[Header], key: str) -> list[str] | None:
        wanted = key.lower().encode("latin-1")
        values = [value.decode("latin-1") for name, value in carrier if name == wanted]
        return values or None

    def keys(self, carrier: Iterable[Header]) -> list[str]:
        return [name.decode("latin-1") for name, _ in carrier]


ASGI_HEADERS = _AsgiHeaders()


def with_trace_context(headers: list[Header]) -> list[Header]:
    """``headers`` plus the current span's ``traceparent`` (replacing a client's); as is without a span.

    Without a current span (tracing off, outside a request) the list is returned unchanged, not copied:
    a proxy then passes the client's own ``traceparent`` along untouched.
    """
    if not trace.get_current_span().get_span_context().is_valid:
        return headers
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    names = {key.encode("latin-1") for key in carrier} | _CONTEXT_HEADERS
    out = [(name, value) for name, value in headers if name.lower() not in names]
    out += [(key.encode("latin-1"), value.encode("latin-1")) for key, value in carrier.items()]
    return out


def client_span(
    tracers: TracerCache, name: str, attributes: Mapping[str, str | int]
) -> AbstractContextManager[Span | None]:
    """A client span around one outgoing call, current while it runs; nothing while tracing is off."""
    tracer = tracers.get()
    if tracer is None:
        return nullcontext()
    return tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes)


class ServerSpanMiddleware:
    """A server span per HTTP request for an ASGI chain that runs outside FastAPI (the gateway's proxy).

    It continues the client's ``traceparent`` and is named after the route template the dispatcher put
    in ``scope["route_template"]``, like FastAPI's own spans. While tracing is off it only passes through.
    """

    def __init__(self, app: ASGIApp, tracers: TracerCache | None = None) -> None:
        self.app = app
        self.tracers = tracers or TracerCache()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracer = self.tracers.get() if scope["type"] == "http" else None
        if tracer is None:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        route = scope.get("route_template") or scope["path"]
        parent = propagate.extract(scope["headers"], getter=ASGI_HEADERS)
        attributes: dict[str, str | int] = {
            "http.request.method": method,
            "http.route": route,
            "url.path": scope["path"],
            "url.scheme": scope.get("scheme", "http"),
        }
        client = scope.get("client")
        if client:
            attributes["client.address"] = client[0]
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with tracer.start_as_current_span(
            f"{method} {route}", context=parent, kind=SpanKind.SERVER, attributes=attributes
        ) as span:
            await self.app(scope, receive, send_status)
            if status:
                span.set_attribute("http.response.status_code", status)
            if status >= 500 or not status:
                span.set_status(StatusCode.ERROR)


# --- messaging ----------------------------------------------------------------------------------

_MESSAGING_TRACERS = TracerCache("shared.messaging")


def _text_headers(headers: Mapping[str, Any] | None) -> dict[str, str]:
    """AMQP header values as text (the broker may hand strings back as bytes)."""
    out: dict[str, str] = {}
    for key, value in (headers or {}).items():
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, bytes):
            out[key] = value.decode("utf-8", "replace")
    return out


@contextmanager
def publish_span(
    *,
    exchange: str,
    event_type: str,
    message_id: str,
    headers: Mapping[str, Any],
    tracers: TracerCache | None = None,
) -> Iterator[dict[str, Any]]:
    """A producer span continuing the trace an outbox row was written in; yields the headers to publish.

    The relay runs after the request that wrote the row has answered, in a task of its own, so the
    parent comes from the row's stored ``traceparent``; the published headers carry this span's context,
    making each consumer's span its child. While tracing is off the stored context goes out unchanged.
    """
    tracer = (tracers or _MESSAGING_TRACERS).get()
    if tracer is None:
        yield dict(headers)
        return
    parent = propagate.extract(_text_headers(headers))
    attributes = {
        "messaging.system": "rabbitmq",
        "messaging.operation.type": "send",
        "messaging.destination.name": exchange,
        "messaging.rabbitmq.destination.routing_key": event_type,
        "messaging.message.id": message_id,
    }
    with tracer.start_as_current_span(
        f"publish {event_type}", context=parent, kind=SpanKind.PRODUCER, attributes=attributes
    ):
        carrier = dict(headers)
        propagate.inject(carrier)
        yield carrier


def process_span(
    *,
    consumer: str,
    queue: str,
    event_type: str,
    message_id: str,
    headers: Mapping[str, Any] | None,
    tracers: TracerCache | None = None,
) -> AbstractContextManager[Span]:
    """A consumer span around handling one message, continuing the trace its headers carry."""
    parent = propagate.extract(_text_headers(headers))
    attributes = {
        "messaging.system": "rabbitmq",
        "messaging.operation.type": "process",
        "messaging.consumer.group.name": consumer,
        "messaging.destination.name": queue,
        "messaging.rabbitmq.destination.routing_key": event_type,
        "messaging.message.id": message_id,
    }
    tracer = (tracers or _MESSAGING_TRACERS).get_or_noop()
    return tracer.start_as_current_span(
        f"process {event_type}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
    )


def current_trace_id() -> str | None:
    """The current trace id (32 hex digits) for log lines, or None outside any trace."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
