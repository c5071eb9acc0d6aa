"""``events(since)`` over graphql-transport-ws, relayed from a stand-in realtime ``/ws``: frames, close
codes, refusals, an unreachable realtime, and a subscriber that stops reading."""

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


@dataclass
class FakeRealtime:
    """What realtime's /ws does, by scenario: ``events`` sends ``count`` events and waits; ``expire``
    sends one and closes with 4401; ``refuse`` refuses the handshake; ``flood`` sends big events until
    the connection is closed from the other side."""

    scenario: str = "events"
    count: int = 3
    handshakes: list[dict[str, Any]] = field(default_factory=list)
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
            if self.scenario == "flood":
                await self.flood(ws)
                return
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

    async def flood(self, ws: WebSocket) -> None:
        # The peer's close is noticed by reading: once it arrives, uvicorn drops what is still sent.
        closed = asyncio.ensure_future(ws.receive())
        big = "x" * 60_000
        while not closed.done():
            self.sent += 1
            await ws.send_json(frame(self.sent, big))
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
async def subscribed(url: str, token: str, since: int | None = 0) -> AsyncIterator[ClientConnection]:
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
                    "payload": {"query": SUBSCRIBE, "variables": {"since": since}},
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


async def test_a_subscriber_that_stops_reading_is_closed_with_4008_not_buffered(
    realtime: tuple[FakeRealtime, str],
) -> None:
    fake, realtime_url = realtime
    fake.scenario = "flood"
    with graphql_server(realtime_url, subscription_queue_size=8) as graphql:
        async with subscribed(graphql.url, fake.keys.token()) as ws:
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
