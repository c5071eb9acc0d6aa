"""The consumer side: each catalogue event that concerns a user becomes the next entry of their stream."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
from aio_pika.abc import AbstractIncomingMessage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from realtime.settings import SERVICE, Settings
from realtime.streams.models import INBOX
from realtime.streams.store import append
from shared.db.unit_of_work import UnitOfWork
from shared.messaging.consumer import ConsumerMetrics, EventConsumer, Handler, Topology
from shared.messaging.events import Event

# Contract section 4: what a user receives.
STREAMED_TYPES = ("notification.created", "order.created", "order.status_changed")


async def store_event(event: Event, uow: UnitOfWork) -> None:
    """Runs in the consumer's transaction, next to its inbox row: stored once however often delivered."""
    user_id = getattr(event.data, "user_id", None)
    if not isinstance(user_id, uuid.UUID):
        raise TypeError(f"{event.type} {event.id} names no user")
    await append(
        uow.session,
        user_id=user_id,
        event_id=event.id,
        event_type=event.type,
        data=event.data.model_dump(mode="json"),
        ts=event.occurred_at,
    )


def handlers() -> dict[str, Handler]:
    return dict.fromkeys(STREAMED_TYPES, store_event)


def _user_of(body: bytes) -> str | None:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    data = document.get("data") if isinstance(document, dict) else None
    user = data.get("user_id") if isinstance(data, dict) else None
    return user if isinstance(user, str) else None


class OrderedConsumer(EventConsumer):
    """Handles one user's events one at a time, in the order the broker delivered them.

    The consumer runs up to ``prefetch`` messages at once, and two events of one user taken together
    (an order's ``order.created`` and its ``order.status_changed``) would otherwise race for the
    user's next offset. aio-pika starts one task per delivery, in delivery order, and this takes the
    user's lock before its first await, so the lock's FIFO queue is the delivery order. Other users'
    events still run concurrently.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    async def handle(self, message: AbstractIncomingMessage) -> None:
        user = _user_of(message.body)
        if user is None:
            await super().handle(message)
            return
        lock, holders = self._locks.get(user) or (asyncio.Lock(), 0)
        self._locks[user] = (lock, holders + 1)
        try:
            async with lock:
                await super().handle(message)
        finally:
            lock, holders = self._locks[user]
            if holders == 1:
                del self._locks[user]
            else:
                self._locks[user] = (lock, holders - 1)


def build_consumer(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], metrics: ConsumerMetrics
) -> EventConsumer:
    # One queue (realtime.events) shared by every replica: competing consumers, so each event is stored
    # once; fan-out to the replicas' connections goes through NOTIFY, not through the broker.
    return OrderedConsumer(
        amqp_url=settings.amqp_url,
        topology=Topology(SERVICE, STREAMED_TYPES, retry_delays=tuple(settings.retry_delays)),
        handlers=handlers(),
        sessionmaker=sessions,
        inbox=INBOX,
        metrics=metrics,
        prefetch=settings.consumer_prefetch,
        batch_size=settings.consumer_batch_size,
    )
