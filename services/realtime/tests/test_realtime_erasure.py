"""``user.deleted``: the user's sockets close with 4403 at once, their stream is erased and stays so."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from websockets.exceptions import InvalidStatus

from realtime_testing import Frames, order_created, publish, status_changed, ws_connect
from shared.messaging.events import UserDeleted, UserDeletedData
from shared.testing.users import UsersStandIn

from .conftest import RealtimeDb

pytestmark = pytest.mark.integration


async def _rows_of(db: RealtimeDb, user_id: uuid.UUID) -> int:
    conn = await asyncpg.connect(db.admin_url)
    try:
        events = await conn.fetchval(
            "SELECT count(*) FROM realtime.stream_events WHERE user_id = $1", user_id
        )
        offsets = await conn.fetchval(
            "SELECT count(*) FROM realtime.user_offsets WHERE user_id = $1", user_id
        )
    finally:
        await conn.close()
    return int(events) + int(offsets)


async def test_user_deleted_closes_the_users_sockets_and_erases_their_stream(
    shared_server: Any, issuer: UsersStandIn, test_amqp_url: str, realtime_db: RealtimeDb
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    order = uuid.uuid4()
    async with (
        ws_connect(shared_server.ws_url, issuer.token(alice)) as alice_ws,
        ws_connect(shared_server.ws_url, issuer.token(bob)) as bob_ws,
    ):
        alice_frames, bob_frames = Frames(alice_ws), Frames(bob_ws)
        for frames in (alice_frames, bob_frames):
            assert (await frames.next_non_ping())["type"] == "ready"
        await publish(test_amqp_url, order_created(alice, order_id=order), order_created(bob))
        assert len(await alice_frames.events(1)) == 1
        assert len(await bob_frames.events(1)) == 1
        assert await _rows_of(realtime_db, alice) == 2

        deleted = UserDeleted(data=UserDeletedData(user_id=alice))
        await publish(test_amqp_url, deleted, deleted)
        # Contract: within 5 seconds (the broker's hop included).
        async with asyncio.timeout(5):
            await alice_ws.wait_closed()
        assert alice_ws.close_code == 4403
        assert await _rows_of(realtime_db, alice) == 0

        # The order the deletion cancels arrives afterwards: it starts no new stream. Bob's event,
        # published after it on the same queue, tells that it was handled.
        await publish(test_amqp_url, status_changed(alice, order, "cancelled"), order_created(bob))
        assert len(await bob_frames.events(1)) == 1
        assert not bob_ws.close_code
    assert await _rows_of(realtime_db, alice) == 0

    # Her access token is still valid until it expires, but no stream of hers opens again.
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(shared_server.ws_url, issuer.token(alice)):
            pass
    assert refused.value.response.status_code == 403
    async with httpx.AsyncClient() as client:
        sse = await client.get(
            shared_server.url + "/api/v1/events/stream", params={"token": issuer.token(alice)}
        )
    assert sse.status_code == 403
    assert sse.headers["content-type"] == "application/problem+json"
