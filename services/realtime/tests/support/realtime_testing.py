"""The realtime tests' helpers: events put on the ``events`` exchange as the producers' outbox relays
do, and WebSocket and SSE clients that read with deadlines.

The token issuer is ``shared.testing.users.UsersStandIn``; servers in threads are ``shared.testing.servers``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import aio_pika
import httpx
from websockets.asyncio.client import ClientConnection, connect

from realtime.settings import Settings
from shared.messaging.events import (
    EXCHANGE,
    Event,
    NotificationCreated,
    NotificationCreatedData,
    OrderCreated,
    OrderCreatedData,
    OrderItem,
    OrderStatusChanged,
    OrderStatusChangedData,
)
from shared.testing.users import UsersStandIn


def settings_env(settings: Settings) -> dict[str, str]:
    """The same configuration as environment variables, for a replica started as a process."""
    return {
        "APP_ENV": settings.environment,
        "DATABASE_URL": settings.database_url,
        "REALTIME_DATABASE_URL": settings.service_database_url(),
        "AMQP_URL": settings.amqp_url,
        "REALTIME_USERS_URL": settings.users_url or "",
        "REALTIME_PORT": str(settings.port),
        "REALTIME_PING_INTERVAL": str(settings.ping_interval),
        "REALTIME_RETRY_DELAYS": json.dumps(settings.retry_delays),
        "REALTIME_DB_POOL_SIZE": str(settings.db_pool_size),
        "LOG_LEVEL": "INFO",
    }


async def publish(amqp_url: str, *events: Event) -> None:
    """Publish ``events`` persistently to the ``events`` exchange, as an outbox relay would."""
    connection = await aio_pika.connect(amqp_url, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        for event in events:
            await exchange.publish(
                aio_pika.Message(
                    event.model_dump_json().encode(),
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=str(event.id),
                    type=event.type,
                    headers={"correlation_id": event.correlation_id or ""},
                ),
                routing_key=event.type,
            )


def order_created(user_id: uuid.UUID, *, order_id: uuid.UUID | None = None) -> OrderCreated:
    return OrderCreated(
        data=OrderCreatedData(
            order_id=order_id or uuid.uuid4(),
            user_id=user_id,
            status="pending",
            currency="USD",
            total_cents=1250,
            items=[
                OrderItem(sku="SKU-1", name="Tea", quantity=1, unit_price_cents=1250, line_total_cents=1250)
            ],
        )
    )


def status_changed(user_id: uuid.UUID, order_id: uuid.UUID, to_status: str = "paid") -> OrderStatusChanged:
    return OrderStatusChanged(
        data=OrderStatusChangedData(
            order_id=order_id, user_id=user_id, from_status="pending", to_status=to_status, reason="user"
        )
    )


def notification_created(
    user_id: uuid.UUID, *, body: str = "Your order is on its way."
) -> NotificationCreated:
    return NotificationCreated(
        data=NotificationCreatedData(
            notification_id=uuid.uuid4(), user_id=user_id, type="order", title="Order update", body=body
        )
    )


class Frames:
    """A WebSocket client's received frames, read with deadlines (no test waits forever)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        return frame

    async def next_non_ping(self, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.next(max(0.01, deadline - time.monotonic()))
            if frame["type"] != "ping":
                return frame

    async def events(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        found: list[dict[str, Any]] = []
        while len(found) < count:
            frame = await self.next_non_ping(max(0.01, deadline - time.monotonic()))
            assert frame["type"] == "event", frame
            found.append(frame)
        return found

    async def nothing_more(self, wait: float = 0.5) -> None:
        """No event arrives within ``wait`` seconds (pings do not count)."""
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            try:
                frame = await self.next(left)
            except TimeoutError:
                return
            assert frame["type"] == "ping", f"unexpected frame {frame}"


def ws_connect(url: str, token: str | None = None, *, since: int | None = None, **options: Any) -> connect:
    query = {k: v for k, v in (("token", token), ("since", since)) if v is not None}
    target = url + ("?" + urlencode(query) if query else "")
    options.setdefault("open_timeout", 10)
    options.setdefault("compression", None)
    return connect(target, **options)


class SseReader:
    """Server-Sent Events parsed off a streaming httpx response: events and comment lines."""

    def __init__(self, lines: AsyncIterator[str]) -> None:
        self.lines = lines
        self.comments: list[str] = []

    async def next(self, timeout: float = 10.0) -> dict[str, str]:
        """The next event's fields (``id``, ``event``, ``data``); comments are collected on the way."""
        return await asyncio.wait_for(self._next(), timeout)

    async def _next(self) -> dict[str, str]:
        fields: dict[str, str] = {}
        async for line in self.lines:
            if line == "":
                if fields:
                    return fields
                continue
            if line.startswith(":"):
                self.comments.append(line)
                continue
            name, _, value = line.partition(":")
            fields[name] = fields.get(name, "") + value.removeprefix(" ")
        raise EOFError("the stream ended")


# Rooms (contract section 6): a member's frames by type, and the HTTP calls the tests make.


class Member:
    """A connection's frames, read by type (pings are skipped; user events too unless asked for)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames = Frames(ws)

    async def send(self, **frame: Any) -> None:
        await self.ws.send(json.dumps(frame, ensure_ascii=False))

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        return await self.frames.next_non_ping(timeout)

    async def until(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.next(max(0.01, deadline - time.monotonic()))
            if frame["type"] == kind:
                return frame

    async def messages(self, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        got: list[dict[str, Any]] = []
        while len(got) < count:
            frame = await self.next(max(0.01, deadline - time.monotonic()))
            if frame["type"] == "message":
                got.append(frame)
        return got

    async def join(self, room: str, since: int | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        await self.send(type="join", room=room, **({} if since is None else {"since": since}))
        replay: list[dict[str, Any]] = []
        while True:
            frame = await self.next()
            if frame["type"] == "joined":
                return replay, frame
            assert frame["type"] == "message", frame
            replay.append(frame)


async def open_member(stack: Any, url: str, issuer: UsersStandIn, user: uuid.UUID, name: str) -> Member:
    ws = await stack.enter_async_context(ws_connect(url, issuer.token(user, name=name)))
    member = Member(ws)
    assert (await member.next())["type"] == "ready"
    return member


async def new_room(url: str, issuer: UsersStandIn) -> str:
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post(
            "/api/v1/rooms",
            json={"name": "room"},
            headers={"Authorization": f"Bearer {issuer.token(uuid.uuid4())}"},
        )
    room: str = response.json()["id"]
    return room


async def presence(url: str, issuer: UsersStandIn, room: str) -> dict[str, int]:
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.get(
            f"/api/v1/rooms/{room}/presence",
            headers={"Authorization": f"Bearer {issuer.token(uuid.uuid4())}"},
        )
    return {u["user_id"]: u["connections"] for u in response.json()["users"]}
