"""Rooms under faults: a replica killed without a goodbye, a member that stops reading."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from realtime_testing import Member, new_room, open_member, presence, settings_env, ws_connect
from shared.testing.servers import free_port
from shared.testing.users import UsersStandIn

pytestmark = [pytest.mark.integration, pytest.mark.system]

# Short, so the test does not wait 30 real seconds; the contract's bound is what production has.
PRESENCE = {"presence_heartbeat": 0.3, "presence_ttl": 1.0}


def start_replica(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "realtime", "serve"],
            env={**os.environ, **env},
            stdout=sink,
            stderr=sink,
            start_new_session=True,
        )


def log_tail(log: Path) -> str:
    return log.read_text()[-3000:]


async def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    async with httpx.AsyncClient(timeout=2.0) as client:
        for _ in range(300):
            if process.poll() is not None:
                raise RuntimeError(log_tail(log))
            try:
                if (await client.get(url + "/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(log_tail(log))


async def test_members_of_a_killed_replica_leave_presence_and_the_others_hear_it(
    run_server: Any, make_settings: Callable[..., Any], issuer: UsersStandIn, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **settings_env(make_settings(port=port)),
        "REALTIME_PRESENCE_HEARTBEAT": str(PRESENCE["presence_heartbeat"]),
        "REALTIME_PRESENCE_TTL": str(PRESENCE["presence_ttl"]),
    }
    log = tmp_path / "victim.log"
    victim = start_replica(env, log)
    try:
        victim_url = f"http://127.0.0.1:{port}"
        await wait_ready(victim_url, victim, log)
        async with run_server(ping_interval=30, **PRESENCE) as survivor, AsyncExitStack() as stack:
            room = await new_room(survivor.url, issuer)
            watcher_id, doomed_id = uuid.uuid4(), uuid.uuid4()
            watcher = await open_member(stack, survivor.ws_url, issuer, watcher_id, "Watcher")
            await watcher.join(room)
            doomed = await open_member(
                stack, victim_url.replace("http", "ws") + "/ws", issuer, doomed_id, "Doomed"
            )
            await doomed.join(room)
            assert (await watcher.until("presence"))["action"] == "join"
            assert await presence(survivor.url, issuer, room) == {str(watcher_id): 1, str(doomed_id): 1}

            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            left = await watcher.until("presence", timeout=30)
            assert (left["action"], left["user_id"]) == ("leave", str(doomed_id))
            assert await presence(survivor.url, issuer, room) == {str(watcher_id): 1}
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()


def _small_window_socket(url: str) -> socket.socket:
    """A client socket that advertises a tiny receive window, so an unread stream backs up at once."""
    parts = urlsplit(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((parts.hostname or "127.0.0.1", parts.port or 80))
    sock.setblocking(False)
    return sock


async def test_a_member_that_stops_reading_is_closed_with_4008_and_the_others_keep_receiving(
    run_server: Any, issuer: UsersStandIn
) -> None:
    messages = 40
    text = "\U0001f600" * 2000  # 8 KB a frame: the socket buffers fill after a few
    async with (
        run_server(send_buffer=8192, send_queue_size=8, ping_interval=30, rate_limit_scale=100) as server,
        AsyncExitStack() as stack,
    ):
        room = await new_room(server.url, issuer)
        slow_ws = await stack.enter_async_context(
            ws_connect(
                server.ws_url,
                issuer.token(uuid.uuid4(), name="Slow"),
                sock=_small_window_socket(server.url),
                max_queue=1,
            )
        )
        slow = Member(slow_ws)
        assert (await slow.next())["type"] == "ready"
        await slow.join(room)
        fast = await open_member(stack, server.ws_url, issuer, uuid.uuid4(), "Fast")
        await fast.join(room)
        other = await open_member(stack, server.ws_url, issuer, uuid.uuid4(), "Other")
        await other.join(room)
        for n in range(messages):
            await fast.send(type="say", room=room, text=text)
            # In step with the reading members, so only the stalled one can fall behind.
            for member in (fast, other):
                got = await member.until("message")
                assert got["offset"] == n + 1
        received: list[dict[str, Any]] = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                received.append(await slow.frames.next(timeout=10))
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4008
        offsets = [f["offset"] for f in received if f["type"] == "message"]
        assert offsets == list(range(1, len(offsets) + 1))
        assert len(offsets) < messages
