"""At most REALTIME_MAX_CONNECTIONS_PER_USER open streams per user across replicas (contract section 4)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from websockets.exceptions import InvalidStatus

from realtime.delivery.leases import ConnectionLeases
from realtime_testing import Frames, SseReader, ws_connect
from shared.db.engine import make_engine
from shared.testing.users import UsersStandIn

pytestmark = pytest.mark.integration


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.05)


async def refused_status(url: str, token: str) -> int | None:
    """The status the handshake was refused with, or None when it was accepted."""
    try:
        async with ws_connect(url, token) as ws:
            await Frames(ws).next_non_ping()
    except InvalidStatus as exc:
        return exc.response.status_code
    return None


async def test_one_more_stream_than_the_limit_is_refused_with_429_on_any_replica(
    run_server: Any, issuer: UsersStandIn
) -> None:
    user = uuid.uuid4()
    token = issuer.token(user)
    async with (
        run_server(max_connections_per_user=3) as one,
        run_server(max_connections_per_user=3) as two,
        AsyncExitStack() as held,
        httpx.AsyncClient(timeout=10) as client,
    ):
        first = await held.enter_async_context(ws_connect(one.ws_url, token))
        await Frames(first).next_non_ping()
        second = await held.enter_async_context(ws_connect(one.ws_url, token))
        await Frames(second).next_non_ping()
        # An SSE stream on the other replica counts too.
        stream = await held.enter_async_context(
            client.stream("GET", two.url + "/api/v1/events/stream", params={"token": token})
        )
        assert stream.status_code == 200
        # Kept in a variable: a line iterator left to the garbage collector closes the response.
        reader = SseReader(stream.aiter_lines())
        assert (await reader.next())["event"] == "ready"

        with pytest.raises(InvalidStatus) as refused:
            async with ws_connect(two.ws_url, token):
                pass
        response = refused.value.response
        assert response.status_code == 429
        assert response.headers["content-type"] == "application/problem+json"
        assert int(response.headers["retry-after"]) >= 1
        over = await client.get(one.url + "/api/v1/events/stream", params={"token": token})
        assert over.status_code == 429
        assert over.headers["content-type"] == "application/problem+json"
        # Someone else is not affected.
        assert await refused_status(one.ws_url, issuer.token(uuid.uuid4())) is None

        # A connection that ends gives its place back at once.
        await first.close()

        async def place_free() -> bool:
            return await refused_status(two.ws_url, token) is None

        await eventually(place_free)


async def test_a_replica_that_dies_leaves_its_leases_to_lapse(realtime_db: Any) -> None:
    engine = make_engine(realtime_db.service_url, schema="realtime", pool_size=2)
    try:
        dead = ConnectionLeases(engine, limit=2, ttl=0.5)  # never renews: it has "died"
        alive = ConnectionLeases(engine, limit=2, ttl=30)
        user = uuid.uuid4()
        assert await dead.acquire(user) is not None
        assert await dead.acquire(user) is not None
        assert await alive.acquire(user) is None

        async def lapsed() -> bool:
            return await alive.acquire(user) is not None

        await eventually(lapsed)
    finally:
        await engine.dispose()


async def test_concurrent_handshakes_never_exceed_the_limit(realtime_db: Any) -> None:
    engine = make_engine(realtime_db.service_url, schema="realtime", pool_size=5)
    try:
        replicas = [ConnectionLeases(engine, limit=4, ttl=30) for _ in range(3)]
        user = uuid.uuid4()
        taken = await asyncio.gather(*(replicas[n % 3].acquire(user) for n in range(20)))
        assert sum(lease is not None for lease in taken) == 4
    finally:
        await engine.dispose()


async def test_released_and_stopped_leases_are_deleted(realtime_db: Any) -> None:
    engine = make_engine(realtime_db.service_url, schema="realtime", pool_size=2)
    user = uuid.uuid4()

    async def rows() -> int:
        async with engine.connect() as conn:
            count = await conn.scalar(
                text("SELECT count(*) FROM realtime.stream_leases WHERE user_id = :u"), {"u": user}
            )
        return int(count or 0)

    try:
        leases = ConnectionLeases(engine, limit=5, ttl=30)
        worker = asyncio.create_task(leases.run())
        first, second = await leases.acquire(user), await leases.acquire(user)
        assert first is not None
        assert second is not None
        assert await rows() == 2
        leases.release(first)

        async def one_left() -> bool:
            return await rows() == 1

        await eventually(one_left)
        leases.stop()
        await asyncio.wait_for(worker, 10)
        assert await rows() == 0
    finally:
        await engine.dispose()


async def test_one_users_flood_of_handshakes_holds_one_database_connection(realtime_db: Any) -> None:
    # A user opening hundreds of streams at once must not take the pool every other user needs.
    engine = make_engine(realtime_db.service_url, schema="realtime", pool_size=5)
    busy, most = 0, 0

    def checkout(*_: object) -> None:
        nonlocal busy, most
        busy += 1
        most = max(most, busy)

    def checkin(*_: object) -> None:
        nonlocal busy
        busy -= 1

    event.listen(engine.sync_engine.pool, "checkout", checkout)
    event.listen(engine.sync_engine.pool, "checkin", checkin)
    try:
        leases = ConnectionLeases(engine, limit=10, ttl=30)
        flooder, other = uuid.uuid4(), uuid.uuid4()
        taken = await asyncio.gather(*(leases.acquire(flooder) for _ in range(100)))
        assert sum(lease is not None for lease in taken) == 10
        assert most == 1
        # Past the allowance the refusals cost no database work at all, and others are served.
        before = most
        assert await leases.acquire(flooder) is None
        assert await leases.acquire(other) is not None
        assert most == before
        # A released slot is free again.
        leases.release(next(lease for lease in taken if lease is not None))
        assert await leases.acquire(flooder) is not None
    finally:
        await engine.dispose()
