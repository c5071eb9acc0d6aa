"""``events(since)`` and ``roomMessages(roomId, since)`` over graphql-transport-ws, relayed from a
stand-in realtime ``/ws``: frames, close codes, refusals, an unreachable realtime, and a subscriber that
stops reading."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from graphql_api.app import create_app
from graphql_testing import settings
from shared.testing.servers import closed_port_url, serve_in_thread
from shared.testing.tokens import TokenIssuer

SUBSCRIBE = "subscription($since: Int) { events(since: $since) { offset id event data ts } }"
ROOM = "7d5c1e0a-3f4b-4c2d-9e8f-0a1b2c3d4e5f"
OTHER_ROOM = "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f"
ROOM_MESSAGES = (
    "subscription($room: ID!, $since: Int) { roomMessages(roomId: $room, since: $since) "
    "{ room offset userName text clientId ts } }"
)
PROTOCOL = "graphql-transport-ws"


def frame(offset: int, payload: str = "") -> dict[str, Any]:
    return {
        "type": "event",
        "offset": offset,
        "id": f"00000000-0000-0000-0000-{offset:012d}",
        "event": "order.created",
        "data": {"user_id": "u1", "n": offset, "payload": payload},
        "ts": "2026-01-01T00:00:00+00:00",
    }


def message_frame(offset: int, room: str = ROOM, text: str = "hi") -> dict[str, Any]:
    return {
        "type": "message",
        "id": f"00000000-0000-0000-0000-{offset:012d}",
        "room": room,
        "offset": offset,
        "user_id": "00000000-0000-0000-0000-00000000000a",
        "user_name": "Ada",
        "text": text,
        "client_id": None,
        "ts": "2026-01-01T00:00:00+00:00",
    }


@dataclass
class FakeRealtime:
    """What realtime's /ws does, by scenario: ``events`` sends ``count`` events and waits; ``expire``
    sends one and closes with 4401; ``refuse`` refuses the handshake; ``flood`` sends big events (big
    messages of the room joined, if one is) until the connection is closed from the other side;
    ``room`` answers a join with what a room sends and then closes the room; ``no_room`` answers it with
    realtime's not_found error frame; ``broken`` sends an event frame without its fields."""

    scenario: str = "events"
    count: int = 3
    # Whether the subscriber sends a join first (roomMessages) before the flood.
    joins_rooms: bool = False
    handshakes: list[dict[str, Any]] = field(default_factory=list)
    joins: list[dict[str, Any]] = field(default_factory=list)
    sent: int = 0
    closed_by_peer: threading.Event = field(default_factory=threading.Event)
    keys: TokenIssuer = field(default_factory=TokenIssuer)

    async def endpoint(self, ws: WebSocket) -> None:
        self.handshakes.append({"query": ws.url.query, "headers": dict(ws.headers)})
        if self.scenario == "refuse":
            await ws.close(code=1008)  # before accept: the handshake gets 403
            return
        await ws.accept()
        await ws.send_json({"type": "ready", "offset": 0, "recovered": True})
        await ws.send_json({"type": "ping"})
        try:
            if self.scenario in ("room", "no_room"):
                await self.room(ws)
            if self.scenario == "flood":
                await self.flood(ws)
                return
            if self.scenario == "broken":
                await ws.send_json({"type": "event", "offset": 1})
            for offset in range(1, self.count + 1):
                await ws.send_json(frame(offset))
            if self.scenario == "expire":
                await ws.close(code=4401, reason="token expired")
                return
            await ws.receive_text()  # until the other side goes
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            self.closed_by_peer.set()

    async def room(self, ws: WebSocket) -> None:
        join = await ws.receive_json()
        self.joins.append(join)
        if self.scenario == "no_room":
            await ws.send_json(
                {"type": "error", "code": "not_found", "room": join["room"], "detail": "no such room"}
            )
            await ws.receive_text()  # until the other side goes
            return
        since = join.get("since") or 0
        # Around the room's own messages: what the connection also carries, none of it for the subscriber.
        await ws.send_json(frame(1))
        await ws.send_json(message_frame(99, room=OTHER_ROOM))
        await ws.send_json(
            {"type": "joined", "room": ROOM, "offset": since + 2, "recovered": True, "presence": []}
        )
        await ws.send_json(message_frame(since + 1))
        await ws.send_json(
            {"type": "presence", "room": ROOM, "action": "join", "user_id": "u", "user_name": "B"}
        )
        await ws.send_json(message_frame(since + 2, text="line\ntwo"))
        await ws.send_json({"type": "room_closed", "room": ROOM})
        await ws.receive_text()

    async def flood(self, ws: WebSocket) -> None:
        joined = None
        if self.joins_rooms:
            joined = (await ws.receive_json())["room"]
            self.joins.append({"room": joined})
        # The peer's close is noticed by reading: once it arrives, uvicorn drops what is still sent.
        closed = asyncio.ensure_future(ws.receive())
        big = "x" * 60_000
        while not closed.done():
            self.sent += 1
            await ws.send_json(
                frame(self.sent, big) if joined is None else message_frame(self.sent, joined, big)
            )
            # A send that does not wait (a full socket makes it wait) must still let the read run.
            await asyncio.sleep(0)
        self.closed_by_peer.set()

    def app(self) -> Starlette:
        # It publishes users' JWKS too: graphql verifies the subscriber's token before anything else.
        async def jwks(_: Request) -> JSONResponse:
            return JSONResponse(self.keys.jwks())

        return Starlette(routes=[WebSocketRoute("/ws", self.endpoint), Route("/.well-known/jwks.json", jwks)])


@pytest.fixture
def realtime() -> Iterator[tuple[FakeRealtime, str]]:
    fake = FakeRealtime()
    with serve_in_thread(fake.app(), ws="websockets-sansio") as running:
        yield fake, running.url


def graphql_server(realtime_url: str, users_url: str | None = None, **overrides: Any) -> Any:
    app = create_app(settings(realtime_url=realtime_url, users_url=users_url or realtime_url, **overrides))
    # No keepalive: a client that is told not to read must not be dropped for missing pings instead.
    return serve_in_thread(app, ws="websockets-sansio", ws_ping_interval=None)


@asynccontextmanager
async def subscribed(
    url: str, token: str, since: int | None = 0, query: str = SUBSCRIBE, **variables: Any
) -> AsyncIterator[ClientConnection]:
    ws_url = url.replace("http://", "ws://") + f"/graphql?token={token}"
    async with connect(
        ws_url,
        subprotocols=[PROTOCOL],  # type: ignore[list-item]
        open_timeout=10,
        max_size=None,
        ping_interval=None,
        # Uncompressed, so the flood's repetitive frames take their full size on the wire.
        compression=None,
    ) as ws:
        assert ws.subprotocol == PROTOCOL
        await ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "connection_ack"}
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": query, "variables": {"since": since, **variables}},
                }
            )
        )
        yield ws


def error_codes(message: dict[str, Any]) -> list[str]:
    """Codes of a failed subscription: ``error`` before it ran (validation), ``next`` with errors after."""
    if message["type"] == "error":
        errors = message["payload"]
    else:
        assert message["type"] == "next", message
        assert message["payload"]["data"] is None, message
        errors = message["payload"]["errors"]
    return [error["extensions"]["code"] for error in errors]


@pytest.mark.parametrize("query", ["", "?token=not-a-token"])
async def test_a_websocket_without_a_valid_token_is_refused_at_the_handshake(
    realtime: tuple[FakeRealtime, str], query: str
) -> None:
    fake, realtime_url = realtime
    with graphql_server(realtime_url) as graphql:
        url = graphql.url.replace("http://", "ws://") + "/graphql" + query
        with pytest.raises(InvalidStatus) as refused:
            await connect(url, subprotocols=[PROTOCOL], open_timeout=10)  # type: ignore[list-item]
    assert refused.value.response.status_code == 403
    assert fake.handshakes == []


async def next_message(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return message


async def test_events_are_relayed_in_order_with_the_callers_token_and_since(
    realtime: tuple[FakeRealtime, str],
) -> None:
    fake, realtime_url = realtime
    with graphql_server(realtime_url) as graphql:
        async with subscribed(graphql.url, fake.keys.token(), since=7) as ws:
            offsets = []
            for _ in range(3):
                message = await next_message(ws)
                assert message["type"] == "next", message
                event = message["payload"]["data"]["events"]
                offsets.append(event["offset"])
            assert event == {
                "offset": 3,
                "id": "00000000-0000-0000-0000-000000000003",
                "event": "order.created",
                "data": {"user_id": "u1", "n": 3, "payload": ""},
                "ts": "2026-01-01T00:00:00+00:00",
            }
    assert offsets == [1, 2, 3]
    (handshake,) = fake.handshakes
    assert handshake["query"] == "since=7"
    assert handshake["headers"]["authorization"].startswith("Bearer ey")


async def test_an_expired_token_closes_the_clients_connection_with_4401(
    realtime: tuple[FakeRealtime, str],
) -> None:
    fake, realtime_url = realtime
    fake.scenario, fake.count = "expire", 1
    with graphql_server(realtime_url) as graphql:
        async with subscribed(graphql.url, fake.keys.token()) as ws:
            assert (await next_message(ws))["type"] == "next"
            with pytest.raises(ConnectionClosed) as closed:
                await next_message(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401


async def test_a_refused_handshake_is_an_error_on_the_subscription(
    realtime: tuple[FakeRealtime, str],
) -> None:
    fake, realtime_url = realtime
    fake.scenario = "refuse"
    with graphql_server(realtime_url) as graphql:
        async with subscribed(graphql.url, fake.keys.token()) as ws:
            message = await next_message(ws)
    assert error_codes(message) == ["FORBIDDEN"]


async def test_an_unreachable_realtime_is_unavailable(realtime: tuple[FakeRealtime, str]) -> None:
    fake, users_url = realtime  # here only the keys' publisher
    with graphql_server(closed_port_url(), users_url=users_url) as graphql:
        async with subscribed(graphql.url, fake.keys.token()) as ws:
            message = await next_message(ws)
    assert error_codes(message) == ["UNAVAILABLE"]


async def test_a_negative_since_is_bad_input_and_realtime_is_not_called(
    realtime: tuple[FakeRealtime, str],
) -> None:
    fake, realtime_url = realtime
    with graphql_server(realtime_url) as graphql:
        async with subscribed(graphql.url, fake.keys.token(), since=-1) as ws:
            message = await next_message(ws)
    assert error_codes(message) == ["BAD_USER_INPUT"]
    assert fake.handshakes == []


@pytest.mark.parametrize("subscription", ["events", "roomMessages"])
async def test_a_subscriber_that_stops_reading_is_closed_with_4008_not_buffered(
    realtime: tuple[FakeRealtime, str], subscription: str
) -> None:
    fake, realtime_url = realtime
    fake.scenario, fake.joins_rooms = "flood", subscription == "roomMessages"
    query = {"events": SUBSCRIBE, "roomMessages": ROOM_MESSAGES}[subscription]
    with graphql_server(realtime_url, subscription_queue_size=8) as graphql:
        async with subscribed(graphql.url, fake.keys.token(), query=query, room=ROOM) as ws:
            # Not reading: graphql's sends stall once the socket buffers are full, its queue fills, and
            # it drops realtime's connection instead of reading on.
            closed = await asyncio.to_thread(fake.closed_by_peer.wait, 60)
            assert closed, "graphql kept reading from realtime for a subscriber that does not read"
            sent_when_closed = fake.sent
            # What the client still gets is what the buffers held, then the close code.
            received = 0
            with pytest.raises(ConnectionClosed) as ended:
                while True:
                    await asyncio.wait_for(ws.recv(), 30)
                    received += 1
    assert ended.value.rcvd is not None
    assert ended.value.rcvd.code == 4008
    assert received < sent_when_closed
    assert fake.joins == ([{"room": ROOM}] if fake.joins_rooms else [])


# ---- roomMessages -----------------------------------------------------------------------------------


async def test_room_messages_joins_with_since_and_relays_only_that_rooms_messages(
    realtime: tuple[FakeRealtime, str],
) -> None:
    fake, realtime_url = realtime
    fake.scenario = "room"
    with graphql_server(realtime_url) as graphql:
        async with subscribed(graphql.url, fake.keys.token(), since=5, query=ROOM_MESSAGES, room=ROOM) as ws:
            received = [await next_message(ws) for _ in range(3)]
    first, second, end = received
    assert first == {
        "id": "1",
        "type": "next",
        "payload": {
            "data": {
                "roomMessages": {
                    "room": ROOM,
                    "offset": 6,
                    "userName": "Ada",
                    "text": "hi",
                    "clientId": None,
                    "ts": "2026-01-01T00:00:00+00:00",
                }
            }
        },
    }
    assert second["payload"]["data"]["roomMessages"]["text"] == "line\ntwo"
    # The room deleted: the subscription ends with an error.
    assert error_codes(end) == ["NOT_FOUND"]
    assert fake.joins == [{"type": "join", "room": ROOM, "since": 5}]
    # Its own connection, without since: realtime replays none of the caller's events on it.
    (handshake,) = fake.handshakes
    assert handshake["query"] == ""
    assert handshake["headers"]["authorization"].startswith("Bearer ey")


async def test_room_messages_without_since_sends_none(realtime: tuple[FakeRealtime, str]) -> None:
    fake, realtime_url = realtime
    fake.scenario = "room"
    with graphql_server(realtime_url) as graphql:
        async with subscribed(
            graphql.url, fake.keys.token(), since=None, query=ROOM_MESSAGES, room=ROOM
        ) as ws:
            assert (await next_message(ws))["payload"]["data"]["roomMessages"]["offset"] == 1
    assert fake.joins == [{"type": "join", "room": ROOM}]


async def test_an_unknown_room_ends_the_subscription_with_not_found(
    realtime: tuple[FakeRealtime, str],
) -> None:
    fake, realtime_url = realtime
    fake.scenario = "no_room"
    with graphql_server(realtime_url) as graphql:
        async with subscribed(graphql.url, fake.keys.token(), query=ROOM_MESSAGES, room=ROOM) as ws:
            message = await next_message(ws)
            assert (await next_message(ws))["type"] == "complete"
    assert error_codes(message) == ["NOT_FOUND"]
    assert message["payload"]["errors"][0]["message"] == "no such room"


@pytest.mark.parametrize(
    ("variables", "field"),
    [({"room": "not-a-room", "since": 0}, "roomId"), ({"room": ROOM, "since": -1}, "since")],
)
async def test_room_messages_refuses_bad_arguments_before_realtime_is_called(
    realtime: tuple[FakeRealtime, str], variables: dict[str, Any], field: str
) -> None:
    fake, realtime_url = realtime
    with graphql_server(realtime_url) as graphql:
        async with subscribed(graphql.url, fake.keys.token(), query=ROOM_MESSAGES, **variables) as ws:
            message = await next_message(ws)
    assert error_codes(message) == ["BAD_USER_INPUT"]
    assert message["payload"]["errors"][0]["extensions"]["errors"][0]["field"] == field
    assert fake.handshakes == []


async def test_a_subscription_refused_before_it_runs_carries_its_code(
    realtime: tuple[FakeRealtime, str],
) -> None:
    fake, realtime_url = realtime
    with graphql_server(realtime_url) as graphql:
        async with subscribed(graphql.url, fake.keys.token(), since="1") as ws:  # type: ignore[arg-type]
            message = await next_message(ws)
    assert message["type"] == "error"
    assert error_codes(message) == ["BAD_USER_INPUT"]
    assert fake.handshakes == []


async def test_a_frame_realtime_should_never_send_ends_the_subscription_as_internal(
    realtime: tuple[FakeRealtime, str],
) -> None:
    fake, realtime_url = realtime
    fake.scenario = "broken"
    with graphql_server(realtime_url) as graphql:
        async with subscribed(graphql.url, fake.keys.token()) as ws:
            message = await next_message(ws)
    assert error_codes(message) == ["INTERNAL"]
    assert message["payload"]["errors"][0]["message"] == "An unexpected error occurred."
