"""All queries on the streams: append with the next offset, read a range, read many users at once."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, Uuid, bindparam, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from realtime.streams.frames import NOTIFY_CHANNEL, Frame, event_frame, unnumbered_frame
from realtime.streams.models import STREAM_EVENTS, USER_OFFSETS

PAGE = 500

# What a read may raise when the database is away; callers degrade instead of failing a connection.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, OSError, TimeoutError)

S = STREAM_EVENTS


# One round trip: the next offset (the counter row stays locked until commit, so a second writer of the
# same user, on this replica or another, waits and takes the next number), the row, and the NOTIFY
# (transactional: replicas hear of the row exactly when it becomes visible, in commit order).
# ``stored_at`` is taken after the counter lock, so it rises with the offset and age trimming never
# cuts a hole in the middle of a stream. An erased user's id stores nothing (no row comes back).
_APPEND = text(
    """
    WITH next AS (
        INSERT INTO realtime.user_offsets AS o (user_id, last_offset)
        SELECT :user_id, 1
        WHERE NOT EXISTS (SELECT 1 FROM realtime.erased_users e WHERE e.user_id = :user_id)
        ON CONFLICT (user_id) DO UPDATE SET last_offset = o.last_offset + 1
        RETURNING o.last_offset
    ), stored AS (
        INSERT INTO realtime.stream_events (user_id, "offset", event_id, event_type, data, ts, stored_at)
        SELECT :user_id, last_offset, :event_id, :event_type, :data, :ts, clock_timestamp() FROM next
        RETURNING "offset"
    )
    SELECT "offset", pg_notify(
        :channel,
        :before || "offset" || :middle || CASE WHEN :inline THEN "offset" || :after ELSE '' END
    ) FROM stored
    """
).bindparams(
    bindparam("user_id", type_=Uuid),
    bindparam("event_id", type_=Uuid),
    bindparam("data", type_=JSONB),
    bindparam("ts", type_=DateTime(timezone=True)),
    bindparam("inline", type_=Boolean),
)


async def append(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    event_id: uuid.UUID,
    event_type: str,
    data: dict[str, Any],
    ts: datetime,
) -> Frame | None:
    """Store one event as the user's next offset and announce it to every replica at commit; None
    when the user was erased (``user.deleted``).

    Must run inside the caller's transaction (the consumer's, next to its inbox row).
    """
    unnumbered = unnumbered_frame(event_id, event_type, data, ts)
    before, middle, after = unnumbered.notice_parts(user_id)
    result = await session.execute(
        _APPEND,
        {
            "user_id": user_id,
            "event_id": event_id,
            "event_type": event_type,
            "data": data,
            "ts": ts,
            "channel": NOTIFY_CHANNEL,
            "before": before,
            "middle": middle,
            "inline": after is not None,
            "after": after or "",
        },
    )
    offset = result.scalar_one_or_none()
    return None if offset is None else unnumbered.numbered(int(offset))


def _frame(row: Any) -> Frame:
    return event_frame(row.offset, row.event_id, row.event_type, row.data, row.ts)


_COLUMNS = (S.c.user_id, S.c.offset, S.c.event_id, S.c.event_type, S.c.data, S.c.ts)


@dataclass(frozen=True, slots=True)
class Replay:
    frames: list[Frame]
    latest: int
    recovered: bool


class StreamStore:
    """Reads on a service engine; every method is one short statement (no transaction held open)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def latest(self, user_id: uuid.UUID) -> int:
        async with self.engine.connect() as conn:
            value = await conn.scalar(
                select(USER_OFFSETS.c.last_offset).where(USER_OFFSETS.c.user_id == user_id)
            )
        return int(value or 0)

    async def read(self, user_id: uuid.UUID, *, after: int, upto: int | None = None) -> list[Frame]:
        """The user's retained events with ``after < offset <= upto``, in order."""
        frames: list[Frame] = []
        async with self.engine.connect() as conn:
            while True:
                query = select(*_COLUMNS).where(S.c.user_id == user_id, S.c.offset > after)
                if upto is not None:
                    query = query.where(S.c.offset <= upto)
                rows = (await conn.execute(query.order_by(S.c.offset).limit(PAGE))).all()
                frames.extend(_frame(row) for row in rows)
                if len(rows) < PAGE:
                    return frames
                after = rows[-1].offset

    async def replay(self, user_id: uuid.UUID, since: int | None) -> Replay:
        """What a client resuming after ``since`` gets: the retained events, and whether that is all."""
        latest = await self.latest(user_id)
        if since is None or since >= latest:
            # Without ``since`` nothing is replayed; a ``since`` ahead of the stream cannot be honoured.
            return Replay([], latest, recovered=since == latest)
        frames = await self.read(user_id, after=since, upto=latest)
        return Replay(frames, latest, recovered=len(frames) == latest - since)

    async def latest_many(self, user_ids: Sequence[uuid.UUID]) -> dict[str, int]:
        """The last offset of each of these users that has a stream (one statement)."""
        if not user_ids:
            return {}
        query = select(USER_OFFSETS.c.user_id, USER_OFFSETS.c.last_offset).where(
            USER_OFFSETS.c.user_id.in_(user_ids)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {str(row.user_id): int(row.last_offset) for row in rows}
