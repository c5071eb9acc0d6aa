"""All queries on rooms and their messages. Each method is one short transaction on the engine."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Uuid, bindparam, func, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from realtime.rooms.fanout import Announcer
from realtime.rooms.frames import (
    RoomMessage,
    broadcast_notice,
    closed_notice,
    message_notice,
    message_of,
)
from realtime.rooms.models import BROADCASTS, ROOM_MESSAGES, ROOMS
from realtime.streams.frames import Frame
from shared.db.pagination import Cursor

R = ROOMS
M = ROOM_MESSAGES
PAGE = 500

# After the room row's lock (taken by the caller's SELECT ... FOR UPDATE): the next offset and the row,
# in one round trip. ``clock_timestamp()`` is read after the lock, so ``ts`` rises with the offset.
_APPEND = text(
    """
    WITH next AS (
        UPDATE realtime.rooms SET last_offset = last_offset + 1 WHERE id = :room_id RETURNING last_offset
    )
    INSERT INTO realtime.room_messages (room_id, "offset", id, user_id, user_name, text, client_id, ts)
    SELECT :room_id, last_offset, :id, :user_id, :user_name, :text, :client_id, clock_timestamp() FROM next
    RETURNING room_id, "offset", id, user_id, user_name, text, client_id, ts
    """
).bindparams(
    bindparam("room_id", type_=Uuid),
    bindparam("id", type_=Uuid),
    bindparam("user_id", type_=Uuid),
    bindparam("client_id", type_=Uuid),
)

_MESSAGE_COLUMNS = (
    M.c.room_id,
    M.c.offset,
    M.c.id,
    M.c.user_id,
    M.c.user_name,
    M.c.text,
    M.c.client_id,
    M.c.ts,
)


@dataclass(frozen=True, slots=True)
class Said:
    message: RoomMessage
    row: Any
    created: bool


@dataclass(frozen=True, slots=True)
class History:
    messages: list[RoomMessage]
    latest: int
    recovered: bool


class RoomStore:
    def __init__(self, engine: AsyncEngine, announcer: Announcer) -> None:
        self.engine = engine
        self.announcer = announcer

    async def create(self, *, name: str, topic: str, created_by: uuid.UUID) -> Any:
        values = {
            "id": uuid.uuid4(),
            "name": name,
            "topic": topic,
            "created_by": created_by,
            "created_at": datetime.now(UTC),
            "last_offset": 0,
        }
        async with self.engine.begin() as conn:
            return (await conn.execute(R.insert().values(**values).returning(*R.c))).one()

    async def get(self, room_id: uuid.UUID) -> Any | None:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(*R.c).where(R.c.id == room_id))).first()

    async def newest_first(self, *, limit: int, after: Cursor | None) -> list[Any]:
        query = select(*R.c).order_by(R.c.created_at.desc(), R.c.id.desc()).limit(limit)
        if after is not None:
            query = query.where(tuple_(R.c.created_at, R.c.id) < tuple_(after.created_at, after.id))
        async with self.engine.connect() as conn:
            return list((await conn.execute(query)).all())

    async def delete(self, room_id: uuid.UUID, *, user_id: uuid.UUID, admin: bool) -> bool | None:
        """None: no such room; False: not the caller's to delete; True: gone, history and all."""
        async with self.announcer.transaction() as (conn, notices):
            owner = await conn.scalar(select(R.c.created_by).where(R.c.id == room_id).with_for_update())
            if owner is None:
                return None
            if owner != user_id and not admin:
                return False
            # Messages and presence rows go with it (ON DELETE CASCADE).
            await conn.execute(R.delete().where(R.c.id == room_id))
            notices.append(closed_notice(str(room_id)))
            return True

    async def say(
        self,
        room_id: uuid.UUID,
        *,
        user_id: uuid.UUID,
        user_name: str,
        text: str,
        client_id: uuid.UUID | None,
    ) -> Said | None:
        """Store a message as the room's next offset and announce it; None when the room is gone.

        The room row's lock serialises every writer of the room on every replica: offsets are gapless,
        commit order is offset order, and a ``client_id`` seen after the lock is seen for certain.
        """
        if client_id is not None:
            # A retry usually finds its message without taking the room's lock (nor paying a commit).
            async with self.engine.connect() as conn:
                existing = await self._said(conn, room_id, user_id, client_id)
            if existing is not None:
                return existing
        async with self.announcer.transaction() as (conn, notices):
            found = await conn.scalar(select(R.c.id).where(R.c.id == room_id).with_for_update())
            if found is None:
                return None
            if client_id is not None and (existing := await self._said(conn, room_id, user_id, client_id)):
                return existing
            row = (
                await conn.execute(
                    _APPEND,
                    {
                        "room_id": room_id,
                        "id": uuid.uuid4(),
                        "user_id": user_id,
                        "user_name": user_name,
                        "text": text,
                        "client_id": client_id,
                    },
                )
            ).one()
            message = message_of(row)
            notices.append(message_notice(message))
            return Said(message, row, created=True)

    async def broadcast(self, broadcast_id: uuid.UUID, frame: Frame) -> None:
        """Announce a broadcast to every replica (not replayed: a row exists only for a big one)."""
        notice, stored = broadcast_notice(frame, broadcast_id)
        async with self.announcer.transaction() as (conn, notices):
            if stored:
                await conn.execute(BROADCASTS.insert().values(id=broadcast_id, frame=frame.text))
            notices.append(notice)

    async def broadcast_text(self, broadcast_id: uuid.UUID) -> str | None:
        async with self.engine.connect() as conn:
            value = await conn.scalar(select(BROADCASTS.c.frame).where(BROADCASTS.c.id == broadcast_id))
        return None if value is None else str(value)

    @staticmethod
    async def _said(
        conn: AsyncConnection, room_id: uuid.UUID, user_id: uuid.UUID, client_id: uuid.UUID
    ) -> Said | None:
        query = select(*_MESSAGE_COLUMNS).where(
            M.c.room_id == room_id, M.c.user_id == user_id, M.c.client_id == client_id
        )
        row = (await conn.execute(query)).first()
        return None if row is None else Said(message_of(row), row, created=False)

    async def messages_newest_first(self, room_id: uuid.UUID, *, limit: int, before: int | None) -> list[Any]:
        query = select(*_MESSAGE_COLUMNS).where(M.c.room_id == room_id)
        if before is not None:
            query = query.where(M.c.offset < before)
        async with self.engine.connect() as conn:
            return list((await conn.execute(query.order_by(M.c.offset.desc()).limit(limit))).all())

    async def read(self, room_id: uuid.UUID, *, after: int, upto: int | None = None) -> list[RoomMessage]:
        """The room's retained messages with ``after < offset <= upto``, in order."""
        messages: list[RoomMessage] = []
        async with self.engine.connect() as conn:
            while True:
                query = select(*_MESSAGE_COLUMNS).where(M.c.room_id == room_id, M.c.offset > after)
                if upto is not None:
                    query = query.where(M.c.offset <= upto)
                rows = (await conn.execute(query.order_by(M.c.offset).limit(PAGE))).all()
                messages.extend(message_of(row) for row in rows)
                if len(rows) < PAGE:
                    return messages
                after = rows[-1].offset

    async def history(self, room_id: uuid.UUID, since: int | None, *, limit: int) -> History | None:
        """What a member joining after ``since`` gets: at most ``limit`` newest missed messages, and
        whether that is all of them. None when the room does not exist."""
        async with self.engine.connect() as conn:
            latest = await conn.scalar(select(R.c.last_offset).where(R.c.id == room_id))
            if latest is None:
                return None
            latest = int(latest)
            if since is None or since >= latest:
                return History([], latest, recovered=since == latest)
            start = max(since, latest - limit)
            rows = (
                await conn.execute(
                    select(*_MESSAGE_COLUMNS)
                    .where(M.c.room_id == room_id, M.c.offset > start, M.c.offset <= latest)
                    .order_by(M.c.offset)
                )
            ).all()
        messages = [message_of(row) for row in rows]
        return History(messages, latest, recovered=start == since and len(messages) == latest - since)


# Retention, like the user streams': by count per room, then by age, in small batches.
_BY_COUNT = text(
    """
    DELETE FROM realtime.room_messages WHERE ctid IN (
        SELECT m.ctid FROM realtime.room_messages m
        JOIN realtime.rooms r ON r.id = m.room_id
        WHERE m."offset" <= r.last_offset - :max_messages
        LIMIT :batch)
    """
)
_BY_AGE = text(
    """
    DELETE FROM realtime.room_messages WHERE ctid IN (
        SELECT ctid FROM realtime.room_messages WHERE ts < :cutoff LIMIT :batch)
    """
).bindparams(bindparam("cutoff", type_=DateTime(timezone=True)))

_BROADCASTS = text(
    """
    DELETE FROM realtime.broadcasts WHERE ctid IN (
        SELECT ctid FROM realtime.broadcasts WHERE created_at < now() - interval '1 hour' LIMIT :batch)
    """
)

# Names "realtime room retention" among the advisory locks.
LOCK_KEY = 0x524F_4F4D  # "ROOM"


async def trim_rooms(engine: AsyncEngine, *, max_age: timedelta, max_messages: int, batch: int = 5000) -> int:
    """Delete the messages retention no longer keeps; 0 when another replica is at it right now."""
    async with engine.connect() as conn:
        locked = await conn.scalar(select(func.pg_try_advisory_lock(LOCK_KEY)))
        await conn.commit()
        if not locked:
            return 0
        total = 0
        try:
            for statement, params in (
                (_BY_COUNT, {"max_messages": max_messages}),
                (_BY_AGE, {"cutoff": datetime.now(UTC) - max_age}),
                (_BROADCASTS, {}),
            ):
                while True:
                    async with conn.begin():
                        deleted = int(
                            (await conn.execute(statement, {"batch": batch, **params})).rowcount or 0
                        )
                    total += deleted
                    if deleted < batch:
                        break
        finally:
            await conn.execute(select(func.pg_advisory_unlock(LOCK_KEY)))
            await conn.commit()
    return total
