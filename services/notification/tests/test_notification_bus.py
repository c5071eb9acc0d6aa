"""The service as another service on the bus sees it: what it publishes, and a cut link."""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlsplit

import aio_pika
import pytest

from shared.messaging.events import (
    NotificationCreated,
    NotificationRequested,
    NotificationRequestedData,
    UserRegistered,
    UserRegisteredData,
    parse_event,
)
from shared.testing.tcpproxy import TcpProxy
from shared.testing.waits import eventually

from .conftest import Bus, Database, RunService, Service

pytestmark = pytest.mark.integration


async def test_notification_created_reaches_a_bound_queue_with_the_contract_properties(
    service: Service, bus: Bus, db: Database
) -> None:
    probe = await bus.probe("notification.created")
    user_id = uuid.uuid4()
    cause = UserRegistered(
        correlation_id="req-42",
        data=UserRegisteredData(user_id=user_id, email="ada@example.com", full_name="Ada"),
    )
    await bus.publish(cause)
    message = await eventually(lambda: probe.get(no_ack=True, fail=False))

    assert message.content_type == "application/json"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.type == "notification.created"
    assert message.routing_key == "notification.created"
    headers = message.headers or {}
    assert headers["correlation_id"] == "req-42"
    assert str(headers["traceparent"]).startswith("00-")
    body = json.loads(message.body)
    assert set(body) == {"id", "type", "version", "source", "occurred_at", "correlation_id", "data"}
    assert message.message_id == body["id"]
    assert (body["type"], body["version"], body["source"]) == ("notification.created", 1, "notification")
    assert body["correlation_id"] == "req-42"
    assert body["occurred_at"].endswith("Z")
    assert set(body["data"]) == {"notification_id", "user_id", "type", "title", "body"}
    event = parse_event(message.body)
    assert isinstance(event, NotificationCreated)
    [row] = await db.fetch("SELECT id, title FROM notification.notifications")
    assert (event.data.notification_id, event.data.user_id) == (row["id"], user_id)
    assert (event.data.type, event.data.title) == ("welcome", row["title"])


async def test_a_broker_link_cut_mid_stream_loses_nothing(
    run_service: RunService, bus: Bus, db: Database, test_amqp_url: str
) -> None:
    parts = urlsplit(test_amqp_url)
    proxy = await TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672).start()
    via_proxy = test_amqp_url.replace(f"{parts.hostname}:{parts.port or 5672}", f"127.0.0.1:{proxy.port}")
    probe = await bus.probe("notification.created")
    user_id = uuid.uuid4()
    events = [
        NotificationRequested(
            source="orders", data=NotificationRequestedData(user_id=user_id, title=f"n{n}", body="b")
        )
        for n in range(40)
    ]
    try:
        async with run_service(amqp_url=via_proxy) as service:
            for event in events[:20]:
                await bus.publish(event)
            await proxy.cut()
            await eventually(lambda: not service.resources.consumer.consuming)
            assert (await service.client.get("/readyz")).status_code == 503
            for event in events[20:]:
                await bus.publish(event)
            await proxy.restore()
            await eventually(lambda: db.count("notifications"), timeout=30, equals=40)
            # Every notification is announced too, once the relay's link is back.
            await eventually(lambda: db.count("outbox", "published_at IS NULL"), timeout=30, equals=0)
            assert (await service.client.get("/readyz")).status_code == 200
    finally:
        await proxy.stop()
    announced = set()
    while (message := await probe.get(no_ack=True, fail=False)) is not None:
        announced.add(json.loads(message.body)["data"]["title"])
    assert announced == {f"n{n}" for n in range(40)}
