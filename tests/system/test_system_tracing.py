"""One trace from the gateway through orders, its outbox and RabbitMQ, into notification and on to realtime.

Every component runs as a real process with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at a receiver in
this test (``opsstack.OtlpReceiver``), so what is checked is what an OpenTelemetry collector would get:
the spans each process exports over OTLP/HTTP, named by its ``service.name``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.devstack import Stack
from shared.testing.waits import eventually_blocking

from .opsstack import OtlpReceiver, ReceivedSpan, register, running_stack

pytestmark = pytest.mark.system

ORDER = {
    "currency": "EUR",
    "items": [{"sku": "TRACE-1", "name": "Traced widget", "quantity": 1, "unit_price_cents": 990}],
}


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver().start()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def traced_stack(
    test_database_url: str,
    test_amqp_url: str,
    signing_key_file: Path,
    receiver: OtlpReceiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    with running_stack(
        test_database_url, test_amqp_url, signing_key_file, tmp_path_factory.mktemp("traced"), env=env
    ) as stack:
        yield stack


def one(spans: list[ReceivedSpan], service: str, kind: str, name: str) -> ReceivedSpan:
    found = [s for s in spans if (s.service, s.kind, s.name) == (service, kind, name)]
    assert len(found) == 1, f"{service} {kind} {name!r}: {len(found)} spans in {sorted_names(spans)}"
    return found[0]


def sorted_names(spans: list[ReceivedSpan]) -> list[str]:
    return sorted(f"{s.service}:{s.kind}:{s.name}" for s in spans)


# (service, kind, name) of every hop, in the order the work flows.
GATEWAY_IN = ("gateway", "SERVER", "POST /api/v1/orders/*")
GATEWAY_OUT = ("gateway", "CLIENT", "POST orders")
ORDERS_IN = ("orders", "SERVER", "POST /api/v1/orders")
USERS_CHECK = ("users", "SERVER", "GET /internal/users/{user_id}")
ORDERS_PUBLISH = ("orders", "PRODUCER", "publish order.created")
NOTIFICATION_IN = ("notification", "CONSUMER", "process order.created")
NOTIFICATION_PUBLISH = ("notification", "PRODUCER", "publish notification.created")
REALTIME_ORDER = ("realtime", "CONSUMER", "process order.created")
REALTIME_NOTIFICATION = ("realtime", "CONSUMER", "process notification.created")
HOPS = [
    GATEWAY_IN,
    GATEWAY_OUT,
    ORDERS_IN,
    USERS_CHECK,
    ORDERS_PUBLISH,
    NOTIFICATION_IN,
    NOTIFICATION_PUBLISH,
    REALTIME_ORDER,
    REALTIME_NOTIFICATION,
]


def test_one_trace_runs_from_the_gateway_through_the_broker_to_realtime(
    traced_stack: Stack, receiver: OtlpReceiver
) -> None:
    gateway = traced_stack.url("gateway")
    _, auth = register(gateway)
    # The client starts the trace; the gateway continues it.
    trace_id, client_span_id = secrets.token_hex(16), secrets.token_hex(8)
    created = httpx.post(
        gateway + "/api/v1/orders",
        json=ORDER,
        headers={**auth, "traceparent": f"00-{trace_id}-{client_span_id}-01"},
        timeout=10,
    )
    assert created.status_code == 201, created.text

    def complete() -> list[ReceivedSpan]:
        spans = receiver.trace(trace_id)
        seen = {(s.service, s.kind, s.name) for s in spans}
        return spans if all(hop in seen for hop in HOPS) else []

    spans = eventually_blocking(complete, timeout=30)
    hop = {key: one(spans, *key) for key in HOPS}

    def parent(child: tuple[str, str, str], of: tuple[str, str, str]) -> None:
        assert hop[child].parent_span_id == hop[of].span_id, f"{child} is not a child of {of}"

    assert hop[GATEWAY_IN].parent_span_id == client_span_id
    parent(GATEWAY_OUT, GATEWAY_IN)
    parent(ORDERS_IN, GATEWAY_OUT)
    # orders asks users over shared.http, with its request's context.
    parent(USERS_CHECK, ORDERS_IN)
    # The relay publishes later, from its own task, continuing the context stored with the outbox row.
    parent(ORDERS_PUBLISH, ORDERS_IN)
    parent(NOTIFICATION_IN, ORDERS_PUBLISH)
    parent(REALTIME_ORDER, ORDERS_PUBLISH)
    # notification's handler writes notification.created to its own outbox: the trace goes on.
    parent(NOTIFICATION_PUBLISH, NOTIFICATION_IN)
    parent(REALTIME_NOTIFICATION, NOTIFICATION_PUBLISH)

    assert hop[ORDERS_IN].attributes["http.response.status_code"] == 201
    producer = hop[ORDERS_PUBLISH]
    assert producer.attributes["messaging.system"] == "rabbitmq"
    assert producer.attributes["messaging.destination.name"] == "events"
    consumer = hop[REALTIME_ORDER]
    assert consumer.attributes["messaging.consumer.group.name"] == "realtime"
    assert not [s for s in spans if s.error], [s.name for s in spans if s.error]


def test_a_request_without_traceparent_starts_a_trace_at_the_gateway(
    traced_stack: Stack, receiver: OtlpReceiver
) -> None:
    gateway = traced_stack.url("gateway")
    _, auth = register(gateway)
    listed = httpx.get(gateway + "/api/v1/orders", headers=auth, timeout=10)
    assert listed.status_code == 200

    def gateway_roots() -> list[ReceivedSpan]:
        return [
            s
            for s in list(receiver.spans)
            if (s.service, s.kind, s.name) == ("gateway", "SERVER", "GET /api/v1/orders/*")
            and not s.parent_span_id
        ]

    root = eventually_blocking(gateway_roots, timeout=15)[-1]
    spans = eventually_blocking(
        lambda: (
            (found := receiver.trace(root.trace_id))
            and any(s.service == "orders" and s.kind == "SERVER" for s in found)
            and found
        ),
        timeout=15,
    )
    served = one(spans, "orders", "SERVER", "GET /api/v1/orders")
    assert served.attributes["http.route"] == "/api/v1/orders"


def test_probes_and_scrapes_make_no_spans(traced_stack: Stack, receiver: OtlpReceiver) -> None:
    before = len(receiver.spans)
    for component in ("gateway", "users", "orders", "notification", "realtime"):
        for path in ("/healthz", "/readyz", "/metrics"):
            assert httpx.get(traced_stack.url(component) + path, timeout=5).status_code == 200
    # A traced request after them, to know when what they might have made has been exported.
    marker = secrets.token_hex(16)
    headers = {"traceparent": f"00-{marker}-{secrets.token_hex(8)}-01"}
    assert httpx.get(traced_stack.url("users") + "/.well-known/jwks.json", headers=headers).status_code == 200
    eventually_blocking(lambda: receiver.trace(marker), timeout=15)
    time.sleep(0.5)  # the other processes' batches (exported every 100 ms)
    after = list(receiver.spans)[before:]
    quiet = ("healthz", "readyz", "metrics")
    assert [s.name for s in after if any(word in s.name for word in quiet)] == []
    # Readiness asks users, the database and the broker: none of those calls shows up on its own either.
    assert [f"{s.service} {s.name}" for s in after if s.kind == "CLIENT" and not s.parent_span_id] == []
