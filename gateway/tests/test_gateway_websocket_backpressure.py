"""A client that stops reading stalls its upstream WebSocket soon: the gateway does not soak up the stream.

The realtime service finds a slow client (close 4008) by its connection backing up; a gateway that
kept reading on the client's behalf would hide it, holding the backlog in its own memory instead.
Both servers here get small kernel send buffers, so what is measured is what the gateway holds.
"""

from __future__ import annotations

import asyncio
import socket
import time

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import connect

from gateway.app import create_app
from gateway.settings import GatewaySettings
from gateway.splice import server_options
from shared.testing.servers import Running, serve_in_thread
from shared.testing.tokens import TokenIssuer

FRAME = 64 * 1024


class Flood:
    """An upstream that sends numbered 64 KiB frames as fast as its connection takes them."""

    def __init__(self) -> None:
        self.sent = 0

    def app(self) -> Starlette:
        async def endless(ws: WebSocket) -> None:
            await ws.accept()
            try:
                while True:
                    await ws.send_text(f"{self.sent:08d}".ljust(FRAME, "x"))
                    self.sent += 1
            except (WebSocketDisconnect, OSError, RuntimeError):
                return

        return Starlette(routes=[WebSocketRoute("/ws", endless)])

    async def settle(self, quiet: float = 0.5, timeout: float = 10.0) -> int:
        """How many frames went out once sending has stopped for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            if self.sent != last:
                last, since = self.sent, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return last
            await asyncio.sleep(0.05)
        raise AssertionError(f"the upstream never stopped sending ({self.sent} frames)")


def stalled_client(url: str) -> socket.socket:
    """A connected socket that advertises a tiny receive window."""
    host, port = url.removeprefix("ws://").split("/")[0].split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.setblocking(False)
    return sock


async def test_a_client_that_stops_reading_stalls_the_upstream_within_a_few_frames(
    keys: TokenIssuer, users_upstream: Running
) -> None:
    flood = Flood()
    with (
        serve_in_thread(flood.app(), send_buffer=8192) as upstream,
        serve_in_thread(
            create_app(
                GatewaySettings(environment="test", users_url=users_upstream.url, realtime_url=upstream.url)
            ),
            send_buffer=8192,
            **server_options(),
        ) as gateway,
    ):
        url = gateway.url.replace("http://", "ws://") + f"/ws?token={keys.token()}"
        # The asyncio client stops reading its socket while its queue is full (one frame here), and
        # without compression the frames are as big on the wire as they are in memory.
        client = connect(url, sock=stalled_client(url), max_queue=1, compression=None, open_timeout=5)
        async with client as ws:
            held = await flood.settle()
            # Measured: 13 frames (transport and socket buffers on each side, the gateway's few frames,
            # the client's two). Before the gateway bounded its side it kept reading, 30-40 frames
            # here, and megabytes where the kernel's buffers may grow (the system tests).
            assert held <= 20, f"{held} frames of 64 KiB went out"

            # Nothing is lost on the way: reading again, the client gets every frame, in order.
            numbers = [int(str(await ws.recv())[:8]) for _ in range(held + 20)]
    assert numbers == list(range(held + 20))
