"""The WebSocket tunnel (``gateway.splice``): frame boundaries read from raw bytes, and the closes the
gateway sends itself, at a boundary, when the upstream vanishes, the gateway stops, or a client's
message is over the limit however it is fragmented."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from gateway.app import create_app
from gateway.settings import GatewaySettings
from gateway.splice import FrameCursor, close_frame, server_options
from shared.testing.servers import Running, serve_in_thread
from shared.testing.tokens import TokenIssuer


def wire(frame: Frame, *, mask: bool) -> bytes:
    """``frame`` as it is on the wire (websockets' own serializer)."""
    return frame.serialize(mask=mask)


FRAMES = [
    Frame(Opcode.TEXT, b"x" * 5),
    Frame(Opcode.BINARY, b"y" * 125),  # the largest 7-bit length
    Frame(Opcode.TEXT, b"z" * 126, fin=False),  # the smallest 16-bit length
    Frame(Opcode.CONT, b"w" * 70_000),  # a 64-bit length
    Frame(Opcode.PING, b""),
    Frame(Opcode.CONT, b"", fin=True),
    Frame(Opcode.CLOSE, (4008).to_bytes(2, "big") + b"slow"),
]


def chunked(data: bytes, sizes: Callable[[], int]) -> Iterator[bytes]:
    start = 0
    while start < len(data):
        size = max(1, sizes())
        yield data[start : start + size]
        start += size


@pytest.mark.parametrize("mask", [False, True], ids=["from a server", "from a client"])
@pytest.mark.parametrize(
    "chunk", [1, 3, 1000, 10**6, 0], ids=["bytewise", "3 bytes", "1 KB", "whole", "random"]
)
def test_the_cursor_finds_every_frame_however_the_stream_is_cut(mask: bool, chunk: int) -> None:
    stream = b"".join(wire(frame, mask=mask) for frame in FRAMES)
    rng = random.Random(7)
    cursor = FrameCursor()
    found: list[tuple[int, int, bool, int]] = []
    consumed = 0
    for piece in chunked(stream, (lambda: rng.randint(1, 40)) if chunk == 0 else (lambda: chunk)):
        found += [
            (consumed + offset, opcode, fin, length) for offset, opcode, fin, length in cursor.feed(piece)
        ]
        consumed += len(piece)
    starts, position = [], 0
    for frame in FRAMES:
        starts.append(position)
        position += len(wire(frame, mask=mask))
    assert found == [
        (start, frame.opcode.value, frame.fin, len(frame.data))
        for start, frame in zip(starts, FRAMES, strict=True)
    ]
    assert cursor.at_boundary
    assert cursor.saw_close


def test_the_cursor_knows_when_it_is_inside_a_frame() -> None:
    cursor = FrameCursor()
    data = wire(Frame(Opcode.TEXT, b"hello"), mask=False)
    cursor.feed(data[:1])
    assert not cursor.at_boundary  # half a header
    cursor.feed(data[1:4])
    assert not cursor.at_boundary  # inside the payload
    cursor.feed(data[4:])
    assert cursor.at_boundary
    assert not cursor.saw_close


@pytest.mark.parametrize("masked", [False, True])
def test_a_close_frame_of_the_gateways_own_parses_with_its_code(masked: bool) -> None:
    raw = close_frame(1011, masked=masked)
    assert raw[1] & 0x80 == (0x80 if masked else 0)
    payload = raw[6:] if masked else raw[2:]
    if masked:
        payload = bytes(b ^ raw[2 + i % 4] for i, b in enumerate(payload))
    assert raw[0] == 0x88
    assert int.from_bytes(payload, "big") == 1011


Handler = Callable[[ServerConnection], Awaitable[None]]


@asynccontextmanager
async def upstream_server(handler: Handler) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"http://127.0.0.1:{port}"


@asynccontextmanager
async def gateway_to(upstream: str, users: Running) -> AsyncIterator[Running]:
    settings = GatewaySettings(environment="test", users_url=users.url, realtime_url=upstream)
    with serve_in_thread(
        create_app(settings), graceful=True, timeout_graceful_shutdown=5, **server_options()
    ) as running:
        yield running


def ws_url(gateway: Running, keys: TokenIssuer) -> str:
    return gateway.url.replace("http://", "ws://") + f"/ws?token={keys.token()}"


@asynccontextmanager
async def client_through_gateway(
    handler: Handler, users: Running, keys: TokenIssuer
) -> AsyncIterator[ClientConnection]:
    """A client connected through a gateway of its own to an upstream running ``handler``, past its
    first frame (``ready``)."""
    async with (
        upstream_server(handler) as upstream,
        gateway_to(upstream, users) as gateway,
        connect(ws_url(gateway, keys), open_timeout=5, max_size=None) as ws,
    ):
        assert await ws.recv() == "ready"
        yield ws


def recording() -> tuple[list[str | bytes], Handler]:
    """An upstream handler that says ``ready``, then keeps every message it gets, in the list."""
    received: list[str | bytes] = []

    async def record(connection: ServerConnection) -> None:
        await connection.send("ready")
        async for message in connection:
            received.append(message)

    return received, record


async def test_an_upstream_that_vanishes_without_a_close_frame_closes_the_client_with_1011(
    keys: TokenIssuer, users_upstream: Running
) -> None:
    async def vanish(connection: ServerConnection) -> None:
        await connection.send("ready")
        await connection.recv()
        connection.transport.abort()  # no close frame: as a killed process

    async with client_through_gateway(vanish, users_upstream, keys) as ws:
        await ws.send("go")
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1011


async def test_a_stopping_gateway_closes_its_websockets_with_1012_both_ways(
    keys: TokenIssuer, users_upstream: Running
) -> None:
    upstream_saw: list[int | None] = []

    async def wait(connection: ServerConnection) -> None:
        await connection.send("ready")
        await connection.wait_closed()
        upstream_saw.append(connection.close_code)

    async with upstream_server(wait) as upstream:
        async with gateway_to(upstream, users_upstream) as gateway:
            ws = await connect(ws_url(gateway, keys), open_timeout=5)
            assert await ws.recv() == "ready"
            gateway.server.should_exit = True
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
        for _ in range(100):
            if upstream_saw:
                break
            await asyncio.sleep(0.05)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1012
    assert upstream_saw == [1012]


async def test_a_message_over_16_kib_in_small_fragments_closes_with_1009_before_the_upstream_has_it(
    keys: TokenIssuer, users_upstream: Running
) -> None:
    received, record = recording()
    async with client_through_gateway(record, users_upstream, keys) as ws:
        await ws.send(["a" * 8192, "b" * 8192])  # two fragments, 16 KiB in all: allowed
        await ws.send(["c" * 8192, "d" * 8192, "e"])  # one byte more
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
    assert received == ["a" * 8192 + "b" * 8192]


@pytest.mark.parametrize(
    "raw",
    [
        bytes((0x81, 0xFF)) + (2**62).to_bytes(8, "big") + b"mask",  # claims 4 EiB
        bytes((0x82, 0xFE)) + (16 * 1024 + 1).to_bytes(2, "big") + b"mask",  # one byte over, binary
    ],
    ids=["huge length", "just over"],
)
async def test_a_frame_header_claiming_too_much_closes_with_1009_and_nothing_goes_on(
    keys: TokenIssuer, users_upstream: Running, raw: bytes
) -> None:
    received, record = recording()
    async with client_through_gateway(record, users_upstream, keys) as ws:
        ws.transport.write(raw)  # a header only, as an attacker would send it
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
    assert received == []
