"""The consumer side: each catalogue event that concerns a user becomes the next entry of their stream."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from realtime.settings import SERVICE, Settings
from realtime.streams.erasure import erase_user
from realtime.streams.frames import NOTIFY_CHANNEL, encode_revocation
from realtime.streams.models import INBOX
from realtime.streams.store import append
from shared.db.unit_of_work import UnitOfWork
from shared.messaging.consumer import EventConsumer, Handler
from shared.messaging.consumer_metrics import ConsumerMetrics
from shared.messaging.events import Event
from shared.messaging.topology import Topology

# Contract section 4: what a user receives.
STREAMED_TYPES = ("notification.created", "order.created", "order.status_changed")
# Events after which a user's open connections close with 4403, on every replica.
REVOKING_TYPES = ("user.deactivated",)
# ... and after which their stream is erased for good as well.
ERASING_TYPES = ("user.deleted",)


async def store_event(event: Event, uow: UnitOfWork) -> None:
    """Runs in the consumer's transaction, next to its inbox row: stored once however often delivered."""
    user_id = getattr(event.data, "user_id", None)
    if not isinstance(user_id, uuid.UUID):
        raise TypeError(f"{event.type} {event.id} names no user")
    # None for an erased user: what the deletion itself caused (orders it cancelled) is not kept.
    await append(
        uow.session,
        user_id=user_id,
        event_id=event.id,
        event_type=event.type,
        data=event.data.model_dump(mode="json"),
        ts=event.occurred_at,
    )


async def revoke_connections(event: Event, uow: UnitOfWork) -> None:
    """Tell every replica, at commit, to close the user's connections: the same NOTIFY path as a stream
    entry, since the broker hands each event to one replica only (a shared queue)."""
    user_id = getattr(event.data, "user_id", None)
    if not isinstance(user_id, uuid.UUID):
        raise TypeError(f"{event.type} {event.id} names no user")
    await uow.session.execute(select(func.pg_notify(NOTIFY_CHANNEL, encode_revocation(user_id))))


def handlers() -> dict[str, Handler]:
    return {
        **dict.fromkeys(STREAMED_TYPES, store_event),
        **dict.fromkeys(REVOKING_TYPES, revoke_connections),
        **dict.fromkeys(ERASING_TYPES, erase_user),
    }


def build_consumer(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], metrics: ConsumerMetrics
) -> EventConsumer:
    # One queue (realtime.events) shared by every replica: competing consumers, so each event is stored
    # once; fan-out to the replicas' connections goes through NOTIFY, not through the broker.
    # Deliveries are handled in the order the broker gave them (one worker per consumer, in batches:
    # shared.messaging.consumer), so two events of one user never race for the user's next offset.
    return EventConsumer(
        amqp_url=settings.amqp_url,
        topology=Topology(
            SERVICE,
            STREAMED_TYPES + REVOKING_TYPES + ERASING_TYPES,
            retry_delays=tuple(settings.retry_delays),
        ),
        handlers=handlers(),
        sessionmaker=sessions,
        inbox=INBOX,
        metrics=metrics,
        prefetch=settings.consumer_prefetch,
        batch_size=settings.consumer_batch_size,
    )
