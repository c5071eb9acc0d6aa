"""Who is in each room, across replicas, counted by connections.

Each replica keeps one row per (room, user) it serves with its count of connections, and one heartbeat
row of its own that it renews every ``REALTIME_PRESENCE_HEARTBEAT`` seconds. A member row counts only
while its replica's heartbeat has not expired, so a replica that dies without a goodbye drops out of
``GET .../presence`` within the TTL; the next sweep (every replica runs one each heartbeat, a row lock
lets one win) deletes its rows and sends the leave frames its goodbye would have sent.

Heartbeats rather than per-connection leases: a replica renews one row however many members it
serves (a lease per membership would cost one write per connection per interval).

Join and leave frames are decided under a per-(room, user) advisory lock, so two replicas adding the
same user's first two connections at once cannot both announce a join, nor both a leave.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Float, Integer, String, Uuid, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from realtime.rooms.fanout import Announcer, Notices
from realtime.rooms.frames import control, presence_notice

_LOCK_SEED = 0x5052_4553  # "PRES"

_LOCK = text(
    "SELECT pg_advisory_xact_lock(hashtextextended(CAST(:room_id AS text) || CAST(:user_id AS text), :seed))"
).bindparams(
    bindparam("room_id", type_=Uuid), bindparam("user_id", type_=Uuid), bindparam("seed", type_=Integer)
)

_HEARTBEAT = text(
    """
    INSERT INTO realtime.replicas (id, expires_at) VALUES (:id, now() + make_interval(secs => :ttl))
    ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at
    RETURNING (xmax = 0) AS inserted
    """
).bindparams(bindparam("id", type_=Uuid), bindparam("ttl", type_=Float))

_ENTER = text(
    """
    INSERT INTO realtime.room_members AS m (room_id, user_id, replica_id, user_name, connections)
    VALUES (:room_id, :user_id, :replica_id, :user_name, :count)
    ON CONFLICT (room_id, user_id, replica_id)
    DO UPDATE SET connections = m.connections + EXCLUDED.connections, user_name = EXCLUDED.user_name
    """
).bindparams(
    bindparam("room_id", type_=Uuid),
    bindparam("user_id", type_=Uuid),
    bindparam("replica_id", type_=Uuid),
    bindparam("user_name", type_=String),
    bindparam("count", type_=Integer),
)

_EXIT = text(
    """
    UPDATE realtime.room_members SET connections = connections - :count
    WHERE room_id = :room_id AND user_id = :user_id AND replica_id = :replica_id
    RETURNING connections
    """
).bindparams(
    bindparam("room_id", type_=Uuid),
    bindparam("user_id", type_=Uuid),
    bindparam("replica_id", type_=Uuid),
    bindparam("count", type_=Integer),
)
_EMPTY = text(
    """
    DELETE FROM realtime.room_members
    WHERE room_id = :room_id AND user_id = :user_id AND replica_id = :replica_id AND connections <= 0
    """
).bindparams(
    bindparam("room_id", type_=Uuid), bindparam("user_id", type_=Uuid), bindparam("replica_id", type_=Uuid)
)

# Connections of one user in one room on replicas that are alive.
_COUNT = text(
    """
    SELECT coalesce(sum(m.connections), 0) FROM realtime.room_members m
    JOIN realtime.replicas r ON r.id = m.replica_id AND r.expires_at > now()
    WHERE m.room_id = :room_id AND m.user_id = :user_id
    """
).bindparams(bindparam("room_id", type_=Uuid), bindparam("user_id", type_=Uuid))

_MEMBERS = text(
    """
    SELECT m.user_id, max(m.user_name) AS user_name, sum(m.connections) AS connections
    FROM realtime.room_members m
    JOIN realtime.replicas r ON r.id = m.replica_id AND r.expires_at > now()
    WHERE m.room_id = :room_id AND m.connections > 0
    GROUP BY m.user_id ORDER BY m.user_id
    """
).bindparams(bindparam("room_id", type_=Uuid))

# The DELETE's row locks make one sweeping replica the owner of each dead replica's rows.
_DEAD = text("DELETE FROM realtime.replicas WHERE expires_at < now() OR id = :me RETURNING id").bindparams(
    bindparam("me", type_=Uuid)
)
_FORGET = text(
    """
    DELETE FROM realtime.room_members WHERE replica_id = ANY(:ids)
    RETURNING room_id, user_id, user_name
    """
).bindparams(bindparam("ids", type_=ARRAY(Uuid)))


@dataclass(frozen=True, slots=True)
class Present:
    user_id: str
    user_name: str
    connections: int


def _presence_frame(room_id: uuid.UUID, user_id: uuid.UUID, user_name: str, action: str) -> str:
    frame = control("presence", room=str(room_id), action=action, user_id=str(user_id), user_name=user_name)
    return presence_notice(str(room_id), str(user_id), frame)


class PresenceStore:
    """This replica's side of presence: its heartbeat, its members' counts, the sweep of dead ones."""

    def __init__(self, engine: AsyncEngine, announcer: Announcer, *, ttl: float) -> None:
        self.engine = engine
        self.announcer = announcer
        self.ttl = ttl
        self.replica_id = uuid.uuid4()
        self.beating = False

    async def check(self) -> None:
        """Readiness: until the first heartbeat, this replica's members would not count."""
        if not self.beating:
            raise ConnectionError("no presence heartbeat yet")

    async def heartbeat(self) -> bool:
        """Renew this replica's row; True when it had to be created (first beat, or swept as dead)."""
        async with self.engine.begin() as conn:
            inserted = bool(await conn.scalar(_HEARTBEAT, {"id": self.replica_id, "ttl": self.ttl}))
        self.beating = True
        return inserted

    async def enter(
        self, room_id: uuid.UUID, user_id: uuid.UUID, user_name: str, count: int = 1
    ) -> bool | None:
        """Count ``count`` more connections of the user here; True when they are the user's first in the
        room (a join frame goes to every replica at commit); None when the room is gone."""
        try:
            async with self.announcer.transaction() as (conn, notices):
                await conn.execute(_LOCK, {"room_id": room_id, "user_id": user_id, "seed": _LOCK_SEED})
                before = int(await conn.scalar(_COUNT, {"room_id": room_id, "user_id": user_id}) or 0)
                await conn.execute(
                    _ENTER,
                    {
                        "room_id": room_id,
                        "user_id": user_id,
                        "replica_id": self.replica_id,
                        "user_name": user_name,
                        "count": count,
                    },
                )
                if before == 0:
                    notices.append(_presence_frame(room_id, user_id, user_name, "join"))
                return before == 0
        except IntegrityError:
            return None  # the room was deleted meanwhile (foreign key)

    async def exit(self, room_id: uuid.UUID, user_id: uuid.UUID, user_name: str, count: int = 1) -> bool:
        """Count ``count`` fewer; True when that was the user's last connection in the room."""
        async with self.announcer.transaction() as (conn, notices):
            return await self._exit(conn, notices, room_id, user_id, user_name, count)

    async def _exit(
        self,
        conn: AsyncConnection,
        notices: Notices,
        room_id: uuid.UUID,
        user_id: uuid.UUID,
        user_name: str,
        count: int,
    ) -> bool:
        await conn.execute(_LOCK, {"room_id": room_id, "user_id": user_id, "seed": _LOCK_SEED})
        key = {"room_id": room_id, "user_id": user_id, "replica_id": self.replica_id}
        remaining = await conn.scalar(_EXIT, {**key, "count": count})
        if remaining is None:
            return False  # already gone: the room was deleted, or this replica said goodbye
        if remaining <= 0:
            await conn.execute(_EMPTY, key)
        left = int(await conn.scalar(_COUNT, {"room_id": room_id, "user_id": user_id}) or 0) == 0
        if left:
            notices.append(_presence_frame(room_id, user_id, user_name, "leave"))
        return left

    async def members(self, room_id: uuid.UUID) -> list[Present]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(_MEMBERS, {"room_id": room_id})).all()
        return [Present(str(row.user_id), row.user_name, int(row.connections)) for row in rows]

    async def sweep(self, *, goodbye: bool = False) -> int:
        """Drop the members of replicas whose heartbeat expired (and, with ``goodbye``, this one's),
        with a leave frame for each user that has no connection left in the room; how many rows went."""
        async with self.announcer.transaction() as (conn, notices):
            me = self.replica_id if goodbye else uuid.uuid4()
            dead = list((await conn.scalars(_DEAD, {"me": me})).all())
            if not dead:
                return 0
            rows = (await conn.execute(_FORGET, {"ids": dead})).all()
            for pair in sorted({(row.room_id, row.user_id): row.user_name for row in rows}.items()):
                (room_id, user_id), user_name = pair
                await conn.execute(_LOCK, {"room_id": room_id, "user_id": user_id, "seed": _LOCK_SEED})
                if int(await conn.scalar(_COUNT, {"room_id": room_id, "user_id": user_id}) or 0) == 0:
                    notices.append(_presence_frame(room_id, user_id, user_name, "leave"))
            return len(rows)
