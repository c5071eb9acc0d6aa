"""The room bench's bare WebSocket client (bench/rooms_socket.py) against a real ``websockets`` server.

The bench's figures are only as good as this parser: a frame it splits wrongly, a ping it leaves
unanswered (the server would drop the member) or a close code it misreads would all show up as the
servers' fault. And its step verdict (bench/rooms_steps.py) must fail a step whose lag builds up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from bench.rooms_socket import HandshakeFailed, RawSocket
from bench.rooms_steps import Step

Handler = Callable[[ServerConnection], Awaitable[None]]


@asynccontextmanager
async def server(handler: Handler, refuse: bool = False) -> AsyncIterator[str]:
    def process_request(_: ServerConnection, request: Request) -> Response | None:
        if refuse:
            return Response(403, "Forbidden", Headers(), b"no")
        return None

    async with serve(handler, "127.0.0.1", 0, process_request=process_request) as running:
        port = next(iter(running.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws?token=t"


async def open_socket(url: str) -> tuple[RawSocket, asyncio.Queue[bytes]]:
    received: asyncio.Queue[bytes] = asyncio.Queue()
    socket = RawSocket(lambda payload, _now: received.put_nowait(payload))
    await socket.connect(url, timeout=10)
    return socket, received


async def test_frames_of_every_length_encoding_and_fragmented_ones_arrive_whole_and_in_order() -> None:
    texts = ["a", "é" * 100, "x" * 70_000]  # 7-bit, 16-bit and 64-bit payload lengths

    async def handler(ws: ServerConnection) -> None:
        for text in texts:
            await ws.send(text)
        await ws.send(["frag", "ment", "ed"])  # one message in three frames
        await ws.wait_closed()

    async with server(handler) as url:
        socket, received = await open_socket(url)
        got = [(await asyncio.wait_for(received.get(), 10)).decode() for _ in range(4)]
        socket.close()
        assert await asyncio.wait_for(socket.closed, 10) == 1000
    assert got == [*texts, "fragmented"]


async def test_a_server_ping_is_answered_and_a_sent_text_arrives() -> None:
    heard: list[str | bytes] = []

    async def handler(ws: ServerConnection) -> None:
        heard.append(await ws.recv())
        await asyncio.wait_for(await ws.ping(b"alive?"), 10)
        await ws.send("pong came back")
        await ws.wait_closed()

    async with server(handler) as url:
        socket, received = await open_socket(url)
        await socket.send('{"type": "join"}')
        assert await asyncio.wait_for(received.get(), 10) == b"pong came back"
        socket.close()
        await asyncio.wait_for(socket.closed, 10)
    assert heard == ['{"type": "join"}']


async def test_the_servers_close_code_is_what_the_socket_reports() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.close(4008, "too slow")

    async with server(handler) as url:
        socket, _ = await open_socket(url)
        assert await asyncio.wait_for(socket.closed, 10) == 4008


async def test_a_refused_handshake_raises() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with server(handler, refuse=True) as url:
        with pytest.raises(HandshakeFailed, match="403"):
            await open_socket(url)


def step(first_p50: float, last_p50: float, received: int = 100) -> Step:
    return Step(
        rate=10, seconds=10, members=10, said=10, received=received, first_p50=first_p50, last_p50=last_p50
    )


@pytest.mark.parametrize(
    ("first", "last", "received", "verdict"),
    [
        (5.0, 25.0, 100, "pass"),  # doubled plus the slack: scheduler noise
        (30.0, 200.0, 100, "lag grew 30 -> 200 ms"),
        (30.0, 30.0, 99, "1 frames missing after the drain"),
        (30.0, 30.0, 101, "1 frames duplicated"),
    ],
)
def test_a_step_fails_on_growing_lag_or_a_frame_short_or_over(
    first: float, last: float, received: int, verdict: str
) -> None:
    assert step(first, last, received).verdict() == verdict
