"""``GET /ws`` on a real uvicorn server, fed by real events through RabbitMQ and Postgres."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from realtime_testing import Frames, notification_created, order_created, publish, status_changed, ws_connect
from shared.testing.users import UsersStandIn

pytestmark = pytest.mark.integration


async def test_a_client_receives_its_own_events_in_order_and_nothing_of_others(
    shared_server: Any, issuer: UsersStandIn, test_amqp_url: str
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    order = uuid.uuid4()
    async with ws_connect(shared_server.ws_url, issuer.token(alice)) as ws:
        frames = Frames(ws)
        assert await frames.next_non_ping() == {"type": "ready", "offset": 0, "recovered": False}
        await publish(
            test_amqp_url,
            order_created(bob),
            order_created(alice, order_id=order),
            status_changed(bob, uuid.uuid4()),
            status_changed(alice, order, "paid"),
            notification_created(alice),
        )
        got = await frames.events(3)
        await frames.nothing_more(0.5)

    assert [f["offset"] for f in got] == [1, 2, 3]
    assert [f["event"] for f in got] == ["order.created", "order.status_changed", "notification.created"]
    created = got[0]
    assert set(created) == {"type", "offset", "id", "event", "data", "ts"}
    assert created["data"]["order_id"] == str(order)
    assert created["data"]["user_id"] == str(alice)
    assert created["ts"].endswith("Z")
    assert got[1]["data"]["to_status"] == "paid"
    assert {f["data"]["user_id"] for f in got} == {str(alice)}


async def test_a_redelivered_event_is_stored_and_sent_once(
    shared_server: Any, issuer: UsersStandIn, test_amqp_url: str
) -> None:
    alice = uuid.uuid4()
    event = order_created(alice)
    async with ws_connect(shared_server.ws_url, issuer.token(alice)) as ws:
        frames = Frames(ws)
        await frames.next_non_ping()
        await publish(test_amqp_url, event, event)
        await publish(test_amqp_url, notification_created(alice))
        got = await frames.events(2)
        await frames.nothing_more(0.3)
    assert [(f["offset"], f["event"]) for f in got] == [(1, "order.created"), (2, "notification.created")]
    assert got[0]["id"] == str(event.id)


async def test_pings_arrive_at_the_configured_interval(shared_server: Any, issuer: UsersStandIn) -> None:
    async with ws_connect(shared_server.ws_url, issuer.token(uuid.uuid4())) as ws:
        frames = Frames(ws)
        assert (await frames.next())["type"] == "ready"
        assert await frames.next(timeout=2) == {"type": "ping"}
        await ws.send('{"type": "pong"}')
        assert await frames.next(timeout=2) == {"type": "ping"}


async def test_reconnecting_with_since_replays_exactly_the_missed_events(
    shared_server: Any, issuer: UsersStandIn, test_amqp_url: str
) -> None:
    alice = uuid.uuid4()
    token = issuer.token(alice)
    async with ws_connect(shared_server.ws_url, token) as ws:
        frames = Frames(ws)
        await frames.next_non_ping()
        await publish(test_amqp_url, *(order_created(alice) for _ in range(3)))
        seen = await frames.events(3)
    assert [f["offset"] for f in seen] == [1, 2, 3]

    missed = [notification_created(alice, body=f"missed {n}") for n in range(2)]
    await publish(test_amqp_url, *missed)
    await _wait_for_offset(shared_server.ws_url, token, 5)

    async with ws_connect(shared_server.ws_url, token, since=3) as ws:
        frames = Frames(ws)
        replayed = await frames.events(2)
        assert await frames.next_non_ping() == {"type": "ready", "offset": 5, "recovered": True}
        await publish(test_amqp_url, order_created(alice))
        live = await frames.events(1)
    assert [f["offset"] for f in replayed] == [4, 5]
    assert [f["id"] for f in replayed] == [str(e.id) for e in missed]
    assert live[0]["offset"] == 6

    async with ws_connect(shared_server.ws_url, token, since=6) as ws:
        assert await Frames(ws).next_non_ping() == {"type": "ready", "offset": 6, "recovered": True}


async def _wait_for_offset(url: str, token: str, offset: int) -> None:
    """Poll (by connecting without ``since``) until the stream's head reaches ``offset``."""
    for _ in range(100):
        async with ws_connect(url, token) as ws:
            ready = await Frames(ws).next_non_ping()
        if ready["offset"] >= offset:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"stream never reached offset {offset}")
