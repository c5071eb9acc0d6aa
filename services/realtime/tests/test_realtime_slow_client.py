"""A client that stops reading is closed with 4008; another connection of the same user is not delayed."""

from __future__ import annotations

import socket
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from realtime.testing import Frames, IssuerStandIn, notification_created, publish, ws_connect

pytestmark = pytest.mark.integration

EVENTS = 40
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
    run_server: Any, issuer: IssuerStandIn, test_amqp_url: str
) -> None:
    user = uuid.uuid4()
    # A small send buffer on the server side too: what the kernel absorbs is not what is tested here.
    async with run_server(send_buffer=8192, send_queue_size=8, ping_interval=30) as server:
        token = issuer.token(user)
        sock = _small_window_socket(server.url)
        async with (
            ws_connect(server.ws_url, token, sock=sock, max_queue=1) as slow,
            ws_connect(server.ws_url, token) as fast,
        ):
            fast_frames, slow_frames = Frames(fast), Frames(slow)
            assert (await slow_frames.next_non_ping())["type"] == "ready"
            assert (await fast_frames.next_non_ping())["type"] == "ready"

            published = time.monotonic()
            await publish(test_amqp_url, *(notification_created(user, body=BODY) for _ in range(EVENTS)))
            got = await fast_frames.events(EVENTS, timeout=20)
            fast_done = time.monotonic() - published
            assert [f["offset"] for f in got] == list(range(1, EVENTS + 1))

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
    # The fast client was not held back by the one that stopped reading.
    assert fast_done < 10, fast_done
    assert 'realtime_slow_disconnects_total{transport="ws"} 1.0' in metrics
