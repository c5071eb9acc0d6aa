"""``user.deleted``: the user's open connections close with 4403 on every replica, and their stream is
erased for good."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert

from realtime.streams.frames import NOTIFY_CHANNEL, encode_revocation
from realtime.streams.models import ERASED_USERS, STREAM_EVENTS, USER_OFFSETS
from shared.db.unit_of_work import UnitOfWork
from shared.messaging.events import Event, UserDeleted


async def erase_user(event: Event, uow: UnitOfWork) -> None:
    """Runs in the consumer's transaction; idempotent. The id is remembered so that no later event
    starts a new stream, and the NOTIFY (sent at commit, the same path as a stream entry, since the
    broker hands each event to one replica only) closes the connections on every replica."""
    if not isinstance(event, UserDeleted):
        raise TypeError(f"expected user.deleted, got {event.type}")
    user_id: uuid.UUID = event.data.user_id
    session = uow.session
    remember = insert(ERASED_USERS).values(user_id=user_id)
    await session.execute(remember.on_conflict_do_nothing(index_elements=[ERASED_USERS.c.user_id]))
    await session.execute(delete(STREAM_EVENTS).where(STREAM_EVENTS.c.user_id == user_id))
    await session.execute(delete(USER_OFFSETS).where(USER_OFFSETS.c.user_id == user_id))
    await session.execute(select(func.pg_notify(NOTIFY_CHANNEL, encode_revocation(user_id))))
