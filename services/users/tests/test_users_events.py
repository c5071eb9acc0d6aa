"""users tells the bus about sign-ups and deactivations, through its outbox, exactly when they commit."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

from shared.messaging.events import EXCHANGE, UserDeactivated, UserRegistered

from .conftest import Api

pytestmark = pytest.mark.integration


@pytest.fixture
async def user_events(test_amqp_url: str) -> AsyncIterator[AbstractQueue]:
    connection = await aio_pika.connect(test_amqp_url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(f"users-probe-{uuid.uuid4().hex[:8]}", exclusive=True)
    await queue.bind(exchange, "user.*")
    yield queue
    await connection.close()


async def take(queue: AbstractQueue, want: int, timeout: float = 10.0) -> list[AbstractIncomingMessage]:
    got: list[AbstractIncomingMessage] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(got) < want and loop.time() < deadline:
        message = await queue.get(no_ack=True, fail=False)
        if message is None:
            await asyncio.sleep(0.05)
        else:
            got.append(message)
    return got


async def test_registration_publishes_user_registered(api: Api, user_events: AbstractQueue) -> None:
    user = await api.register("events@example.com", full_name="Eve Events")
    [message] = await take(user_events, 1)
    event = UserRegistered.model_validate_json(message.body)
    assert message.routing_key == "user.registered"
    assert message.message_id == str(event.id)
    assert str(event.data.user_id) == user["id"]
    assert event.data.email == "events@example.com"
    assert event.data.full_name == "Eve Events"
    assert event.source == "users"


async def test_a_refused_registration_publishes_nothing(api: Api, user_events: AbstractQueue) -> None:
    await api.register("once@example.com")
    again = await api.client.post(
        "/api/v1/auth/register",
        json={"email": "ONCE@example.com", "password": "long enough", "full_name": "Twice"},
    )
    assert again.status_code == 409
    invalid = await api.client.post("/api/v1/auth/register", json={"email": "x", "password": "y"})
    assert invalid.status_code == 422
    messages = await take(user_events, 3, timeout=2.0)
    assert len(messages) == 1


async def test_deactivation_publishes_user_deactivated_once(
    admin_api: tuple[Api, dict[str, str]], user_events: AbstractQueue
) -> None:
    api, admin = admin_api
    user = await api.register("leaving@example.com")
    for _ in range(2):
        response = await api.client.post(f"/api/v1/users/{user['id']}/deactivate", headers=admin)
        assert response.status_code == 200
    messages = await take(user_events, 3, timeout=3.0)
    deactivations = [m for m in messages if m.routing_key == "user.deactivated"]
    assert len(deactivations) == 1
    event = UserDeactivated.model_validate_json(deactivations[0].body)
    assert str(event.data.user_id) == user["id"]
    assert event.correlation_id == deactivations[0].headers["correlation_id"]
