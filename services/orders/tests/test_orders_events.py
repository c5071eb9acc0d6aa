"""Events on the real broker, as any other service bound to ``events`` receives them."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aio_pika
import orjson
import pytest

from shared.messaging.events import (
    EXCHANGE,
    Event,
    UserDeactivated,
    UserDeactivatedData,
    UserDeleted,
    UserDeletedData,
)

pytestmark = pytest.mark.integration


def envelope(message: Any) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(message.body)
    return body


def assert_contract_properties(message: Any, event_type: str, request_id: str) -> dict[str, Any]:
    body = envelope(message)
    assert message.routing_key == event_type
    assert message.type == event_type
    assert message.message_id == body["id"]
    assert message.content_type == "application/json"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.headers["correlation_id"] == request_id
    assert message.headers["traceparent"]
    assert uuid.UUID(body["id"])
    assert body["type"] == event_type
    assert body["version"] == 1
    assert body["source"] == "orders"
    assert body["correlation_id"] == request_id
    assert body["occurred_at"].endswith("Z")
    return body


async def test_order_created_reaches_the_bus_with_the_contract_properties(api: Any, probe: Any) -> None:
    user_id, alice = api.customer()
    order = (await api.create(alice, None, **{"X-Request-ID": "req-created-1"})).json()
    [message] = await probe.take(1)
    body = assert_contract_properties(message, "order.created", "req-created-1")
    assert body["data"] == {
        "order_id": order["id"],
        "user_id": str(user_id),
        "status": "pending",
        "currency": order["currency"],
        "total_cents": order["total_cents"],
        "items": order["items"],
    }


async def test_each_transition_emits_status_changed(api: Any, probe: Any) -> None:
    user_id, alice = api.customer()
    _, admin = api.admin()
    order = await api.place(alice)
    steps = [("pay", alice), ("ship", admin), ("deliver", admin)]
    for number, (action, headers) in enumerate(steps):
        response = await api.act(order["id"], action, {**headers, "X-Request-ID": f"step-{number}"})
        assert response.status_code == 200
    messages = await probe.take(4)
    assert [m.routing_key for m in messages] == ["order.created"] + ["order.status_changed"] * 3
    changes = [
        assert_contract_properties(m, "order.status_changed", f"step-{n}")["data"]
        for n, m in enumerate(messages[1:])
    ]
    assert changes == [
        {"order_id": order["id"], "user_id": str(user_id), "from_status": a, "to_status": b, "reason": r}
        for a, b, r in (
            ("pending", "paid", "user"),
            ("paid", "shipped", "admin"),
            ("shipped", "delivered", "admin"),
        )
    ]


async def test_no_event_for_a_refused_or_failed_request(api: Any, probe: Any) -> None:
    _, alice = api.customer()
    _, admin = api.admin()
    order = await api.place(alice)
    assert (await api.act(order["id"], "ship", admin)).status_code == 409
    assert (await api.act(order["id"], "deliver", alice)).status_code == 403
    assert (await api.create(alice, {"currency": "usd", "items": []})).status_code == 422
    api.users.failing_with = 503
    assert (await api.create(alice)).status_code == 503
    api.users.failing_with = None
    assert (await api.act(order["id"], "cancel", {**alice, "X-Request-ID": "the-cancel"})).status_code == 200
    # Outbox rows go out in commit order: had a refused request written one, it would come first.
    messages = await probe.take(2)
    assert [m.routing_key for m in messages] == ["order.created", "order.status_changed"]
    assert envelope(messages[1])["data"]["to_status"] == "cancelled"
    assert messages[1].headers["correlation_id"] == "the-cancel"
    assert await probe.take(1, timeout=1.0) == []


async def test_an_idempotent_replay_emits_nothing_more(api: Any, probe: Any) -> None:
    _, alice = api.customer()
    for _ in range(3):
        assert (await api.create(alice, None, **{"Idempotency-Key": "once"})).status_code == 201
    assert len(await probe.take(1)) == 1
    assert await probe.take(1, timeout=1.0) == []


async def publish(amqp_url: str, event: Event) -> None:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        message = aio_pika.Message(
            event.model_dump_json().encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=str(event.id),
            type=event.type,
            headers={"correlation_id": event.correlation_id or ""},
        )
        await exchange.publish(message, routing_key=event.type, mandatory=True)
    finally:
        await connection.close()


async def wait_ready(client: Any) -> None:
    for _ in range(100):
        if (await client.get("/readyz")).status_code == 200:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("orders did not become ready")


async def statuses(api: Any, headers: dict[str, str]) -> dict[str, str]:
    items = (await api.client.get("/api/v1/orders", headers=headers)).json()["items"]
    return {o["id"]: o["status"] for o in items}


async def test_user_deactivated_cancels_that_users_pending_orders(
    api: Any, probe: Any, test_amqp_url: str
) -> None:
    user_id, alice = api.customer()
    _, bob = api.customer()
    pending = [await api.place(alice) for _ in range(2)]
    paid = await api.place(alice)
    assert (await api.act(paid["id"], "pay", alice)).status_code == 200
    other = await api.place(bob)
    await probe.take(5)
    await wait_ready(api.client)

    event = UserDeactivated(correlation_id="deactivate-1", data=UserDeactivatedData(user_id=user_id))
    # Delivered twice, as at-least-once delivery may: the second changes nothing.
    await publish(test_amqp_url, event)
    await publish(test_amqp_url, event)
    messages = await probe.take(2)
    assert {envelope(m)["data"]["order_id"] for m in messages} == {o["id"] for o in pending}
    for message in messages:
        data = assert_contract_properties(message, "order.status_changed", "deactivate-1")["data"]
        assert (data["from_status"], data["to_status"], data["reason"]) == (
            "pending",
            "cancelled",
            "user_deactivated",
        )
    assert await probe.take(1, timeout=1.0) == []
    expected = {pending[0]["id"]: "cancelled", pending[1]["id"]: "cancelled", paid["id"]: "paid"}
    assert await statuses(api, alice) == expected
    assert await statuses(api, bob) == {other["id"]: "pending"}


async def test_user_deleted_cancels_that_users_open_orders_and_keeps_the_rest(
    api: Any, probe: Any, test_amqp_url: str
) -> None:
    user_id, alice = api.customer()
    _, bob = api.customer()
    pending = await api.place(alice)
    paid = await api.place(alice)
    assert (await api.act(paid["id"], "pay", alice)).status_code == 200
    cancelled = await api.place(alice)
    assert (await api.act(cancelled["id"], "cancel", alice)).status_code == 200
    other = await api.place(bob)
    await probe.take(6)
    await wait_ready(api.client)

    event = UserDeleted(correlation_id="delete-1", data=UserDeletedData(user_id=user_id))
    await publish(test_amqp_url, event)
    await publish(test_amqp_url, event)
    messages = await probe.take(2)
    changes = {}
    for message in messages:
        data = assert_contract_properties(message, "order.status_changed", "delete-1")["data"]
        changes[data["order_id"]] = (data["from_status"], data["to_status"], data["reason"])
    assert changes == {
        pending["id"]: ("pending", "cancelled", "user_deleted"),
        paid["id"]: ("paid", "cancelled", "user_deleted"),
    }
    assert await probe.take(1, timeout=1.0) == []
    # Kept for the books, every one of them.
    expected = {pending["id"]: "cancelled", paid["id"]: "cancelled", cancelled["id"]: "cancelled"}
    assert await statuses(api, alice) == expected
    assert await statuses(api, bob) == {other["id"]: "pending"}
