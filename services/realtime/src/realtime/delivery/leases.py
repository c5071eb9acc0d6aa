"""At most ``REALTIME_MAX_CONNECTIONS_PER_USER`` open streams per user across every replica.

Each open WebSocket or SSE connection holds a lease: a row in ``realtime.stream_leases`` that expires
unless its replica renews it. A handshake takes a lease only while the user holds fewer than the
limit (counted under a per-user advisory lock, so two replicas cannot both take the last one) and is
refused with 429 otherwise. A connection's end releases its lease at once; a replica that dies without
saying so stops renewing, and its leases lapse after ``REALTIME_CONNECTION_LEASE_TTL`` seconds.

Releases and renewals run in one background loop per replica (``run``), a statement for all of them,
so closing thousands of connections at once (a shutdown, a network blip) costs a few statements.

One user's handshakes take turns within a replica before they reach the database, and one refused at
once when this replica alone already holds the user's whole allowance: a user opening hundreds of
streams at once would otherwise hold every pooled connection waiting on their advisory lock, and every
other user's handshake would wait for the pool (``python -m bench.stream_flood`` measured seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter

from sqlalchemy import Float, Integer, Uuid, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine

from realtime.streams.store import DATABASE_ERRORS

log = logging.getLogger(__name__)

# Names "realtime stream leases" among the advisory locks; each user's lock is this namespace plus them.
_LOCK_SEED = 0x4C45_4153  # "LEAS"

_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(CAST(:user_id AS text), :seed))").bindparams(
    bindparam("user_id", type_=Uuid), bindparam("seed", type_=Integer)
)
# A deleted user's access token stays valid until it expires; their streams must not reopen meanwhile.
_ERASED = text("SELECT EXISTS (SELECT 1 FROM realtime.erased_users WHERE user_id = :user_id)").bindparams(
    bindparam("user_id", type_=Uuid)
)
# A new snapshot after the lock: leases another replica committed while this one waited are counted.
_TAKE = text(
    """
    INSERT INTO realtime.stream_leases (id, user_id, expires_at)
    SELECT :id, :user_id, now() + make_interval(secs => :ttl)
    WHERE (
        SELECT count(*) FROM realtime.stream_leases
        WHERE user_id = :user_id AND expires_at > now() AND id <> ALL(:released)
    ) < :limit
    RETURNING id
    """
).bindparams(
    bindparam("id", type_=Uuid),
    bindparam("user_id", type_=Uuid),
    bindparam("ttl", type_=Float),
    bindparam("released", type_=ARRAY(Uuid)),
    bindparam("limit", type_=Integer),
)
_RELEASE = text("DELETE FROM realtime.stream_leases WHERE id = ANY(:ids)").bindparams(
    bindparam("ids", type_=ARRAY(Uuid))
)
# An upsert, so leases survive a database outage longer than their TTL (or a purge by another replica).
_RENEW = text(
    """
    INSERT INTO realtime.stream_leases (id, user_id, expires_at)
    SELECT id, user_id, now() + make_interval(secs => :ttl) FROM unnest(:ids, :users) AS l(id, user_id)
    ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at
    """
).bindparams(
    bindparam("ttl", type_=Float), bindparam("ids", type_=ARRAY(Uuid)), bindparam("users", type_=ARRAY(Uuid))
)
# Those of replicas that died; long enough after their expiry that no renewal is still on its way.
_PURGE = text(
    "DELETE FROM realtime.stream_leases WHERE expires_at < now() - make_interval(secs => :ttl)"
).bindparams(bindparam("ttl", type_=Float))

BATCH = 5000


class AccountErased(Exception):
    """The user was deleted (``user.deleted``): no stream of theirs opens again."""


class ConnectionLeases:
    """This replica's leases; ``acquire`` at a handshake, ``release`` when the connection ends."""

    def __init__(self, engine: AsyncEngine, *, limit: int, ttl: float) -> None:
        self.engine = engine
        self.limit = limit
        self.ttl = ttl
        self._held: dict[uuid.UUID, uuid.UUID] = {}  # lease -> user
        self._held_by: Counter[uuid.UUID] = Counter()  # user -> leases held here
        self._turns: dict[uuid.UUID, asyncio.Lock] = {}  # user -> their handshakes' turn, while any waits
        self._waiting: Counter[uuid.UUID] = Counter()
        self._released: set[uuid.UUID] = set()  # released here, not yet deleted
        self._wake = asyncio.Event()
        self._stopping = False

    def __len__(self) -> int:
        return len(self._held)

    async def acquire(self, user_id: uuid.UUID) -> uuid.UUID | None:
        """A lease for one more connection of ``user_id``, or None at the limit; ``AccountErased`` for a
        deleted user (raises ``DATABASE_ERRORS`` when the database cannot answer)."""
        turn = self._turns.setdefault(user_id, asyncio.Lock())
        self._waiting[user_id] += 1
        try:
            async with turn:
                if self._held_by[user_id] >= self.limit:
                    return None
                return await self._take(user_id)
        finally:
            self._waiting[user_id] -= 1
            if not self._waiting[user_id]:
                del self._waiting[user_id]
                del self._turns[user_id]

    async def _take(self, user_id: uuid.UUID) -> uuid.UUID | None:
        lease = uuid.uuid4()
        async with self.engine.begin() as conn:
            if await conn.scalar(_ERASED, {"user_id": user_id}):
                raise AccountErased(str(user_id))
            await conn.execute(_LOCK, {"user_id": user_id, "seed": _LOCK_SEED})
            taken = await conn.scalar(
                _TAKE,
                {
                    "id": lease,
                    "user_id": user_id,
                    "ttl": self.ttl,
                    "released": list(self._released),
                    "limit": self.limit,
                },
            )
        if taken is None:
            return None
        self._held[lease] = user_id
        self._held_by[user_id] += 1
        return lease

    def release(self, lease: uuid.UUID) -> None:
        """The connection ended (synchronous, never waits: ``run`` deletes the row at once)."""
        user_id = self._held.pop(lease, None)
        if user_id is not None:
            self._held_by[user_id] -= 1
            if not self._held_by[user_id]:
                del self._held_by[user_id]
            self._released.add(lease)
            self._wake.set()

    async def run(self) -> None:
        """Until ``stop``: delete released leases as they come, renew held ones every third of the TTL."""
        loop = asyncio.get_running_loop()
        renew_at = loop.time()
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, renew_at - loop.time()))
            self._wake.clear()
            try:
                await self._delete_released()
                if loop.time() >= renew_at:
                    await self._renew()
                    renew_at = loop.time() + self.ttl / 3
            except DATABASE_ERRORS:
                log.warning("stream leases could not be written; retrying", exc_info=True)
                renew_at = min(renew_at, loop.time() + 1.0)
                await asyncio.sleep(1.0)
        await self._delete_all()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def _delete_released(self) -> None:
        while self._released:
            batch = list(self._released)[:BATCH]
            async with self.engine.begin() as conn:
                await conn.execute(_RELEASE, {"ids": batch})
            self._released.difference_update(batch)

    async def _renew(self) -> None:
        held = list(self._held.items())
        async with self.engine.begin() as conn:
            for start in range(0, len(held), BATCH):
                chunk = held[start : start + BATCH]
                await conn.execute(
                    _RENEW,
                    {
                        "ttl": self.ttl,
                        "ids": [lease for lease, _ in chunk],
                        "users": [user for _, user in chunk],
                    },
                )
            await conn.execute(_PURGE, {"ttl": self.ttl})

    async def _delete_all(self) -> None:
        """On shutdown: this replica's leases go with it (its connections are closed by now)."""
        self._released.update(self._held)
        self._held.clear()
        self._held_by.clear()
        try:
            await self._delete_released()
        except DATABASE_ERRORS:
            log.warning("stream leases left to expire", exc_info=True)
