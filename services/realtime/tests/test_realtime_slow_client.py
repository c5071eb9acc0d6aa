"""A client that stops reading is closed with 4008; another connection of the same user is not delayed."""

from __future__ import annotations

import socket
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from realtime_testing import Frames, notification_created, publish, ws_connect
from shared.testing.users import UsersStandIn

pytestmark = pytest.mark.integration

EVENTS = 40
QUEUE = 8  # frames a connection may have waiting; the stalled one passes it well before EVENTS
BODY = "x" * 60_000  # big frames fill the socket buffers in a few events (and do not fit in a NOTIFY)


def _small_window_socket(url: str) -> socket.socket:
    """A client socket that advertises a tiny receive window, so an unread stream backs up at once."""
    parts = urlsplit(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((parts.hostname or "127.0.0.1", parts.port or 80))
    sock.setblocking(False)
    return sock


async def test_a_client_that_stops_reading_is_closed_with_4008_and_does_not_delay_the_others(
    run_server: Any, issuer: UsersStandIn, test_amqp_url: str
) -> None:
    user = uuid.uuid4()
    # A small send buffer on the server side too: what the kernel absorbs is not what is tested here.
    async with run_server(send_buffer=8192, send_queue_size=QUEUE, ping_interval=30) as server:
        token = issuer.token(user)
        sock = _small_window_socket(server.url)
        async with (
            ws_connect(server.ws_url, token, sock=sock, max_queue=1) as slow,
            ws_connect(server.ws_url, token) as fast,
        ):
            fast_frames, slow_frames = Frames(fast), Frames(slow)
            assert (await slow_frames.next_non_ping())["type"] == "ready"
            assert (await fast_frames.next_non_ping())["type"] == "ready"

            # One event at a time, each received by the reading client before the next is published:
            # its queue never holds more than one frame, however slowly this machine runs, so only the
            # client that stopped reading can fall QUEUE frames behind. Were the fan-out to wait on the
            # stalled socket, the reading client would stop receiving here once that socket's buffers
            # are full (a few events in), and its read would run out of time.
            for offset in range(1, EVENTS + 1):
                await publish(test_amqp_url, notification_created(user, body=BODY))
                (frame,) = await fast_frames.events(1, timeout=20)
                assert frame["offset"] == offset

            # The slow client now reads what had reached it, then finds the connection closed.
            slow_got: list[dict[str, Any]] = []
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    slow_got.append(await slow_frames.next(timeout=10))
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4008
            offsets = [f["offset"] for f in slow_got if f["type"] == "event"]
            assert offsets == list(range(1, len(offsets) + 1)), "what it got came in order, without gaps"
            assert len(offsets) < EVENTS

        async with httpx.AsyncClient() as client:
            metrics = (await client.get(server.url + "/metrics")).text
    # Only the client that stopped reading was closed as slow.
    assert 'realtime_slow_disconnects_total{transport="ws"} 1.0' in metrics
