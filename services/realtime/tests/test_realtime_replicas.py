"""Two replicas as real processes (``python -m realtime serve``) sharing one database and one queue."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from realtime_testing import (
    Frames,
    notification_created,
    order_created,
    publish,
    settings_env,
    status_changed,
    ws_connect,
)
from shared.messaging.events import Event, UserDeactivated, UserDeactivatedData
from shared.testing.servers import free_port
from shared.testing.users import UsersStandIn

pytestmark = [pytest.mark.integration, pytest.mark.system]

EVENTS_EACH = 12


class Replica:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = int(env["REALTIME_PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        self.log = log
        with log.open("ab") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "realtime", "serve"],
                env={**os.environ, **env},
                stdout=sink,
                stderr=sink,
                start_new_session=True,
            )

    async def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        async with httpx.AsyncClient(timeout=2.0) as client:
            while asyncio.get_running_loop().time() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"replica exited: {self.log.read_text()[-3000:]}")
                try:
                    if (await client.get(self.url + "/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"replica not ready: {self.log.read_text()[-3000:]}")

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture(scope="module")
async def replicas(
    make_settings: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Replica, Replica]]:
    logs = tmp_path_factory.mktemp("replicas")
    started = [
        Replica(settings_env(make_settings(port=free_port(), ping_interval=1.0)), logs / f"replica{n}.log")
        for n in (1, 2)
    ]
    try:
        await asyncio.gather(*(r.wait_ready() for r in started))
        yield started[0], started[1]
    finally:
        codes = [r.stop() for r in started]
    # uvicorn re-raises the SIGTERM it handled once it has shut down gracefully.
    assert set(codes) <= {0, -signal.SIGTERM}, codes
    for replica in started:
        log = replica.log.read_text()
        assert "Traceback" not in log, log[-3000:]
        assert "Application shutdown complete" in log


async def test_every_connection_on_every_replica_receives_each_of_its_users_events_once(
    replicas: tuple[Replica, Replica], issuer: UsersStandIn, test_amqp_url: str
) -> None:
    one, two = replicas
    alice, bob = uuid.uuid4(), uuid.uuid4()
    async with (
        ws_connect(one.ws_url, issuer.token(alice)) as alice_one,
        ws_connect(two.ws_url, issuer.token(alice)) as alice_two,
        ws_connect(two.ws_url, issuer.token(bob)) as bob_two,
    ):
        clients = {"alice@1": Frames(alice_one), "alice@2": Frames(alice_two), "bob@2": Frames(bob_two)}
        for frames in clients.values():
            assert (await frames.next_non_ping())["type"] == "ready"
        events: list[Event] = []
        for n in range(EVENTS_EACH // 2):
            order_a, order_b = uuid.uuid4(), uuid.uuid4()
            events += [order_created(alice, order_id=order_a), order_created(bob, order_id=order_b)]
            events += [status_changed(alice, order_a), notification_created(bob, body=f"n{n}")]
        await publish(test_amqp_url, *events)
        got = {name: await client.events(EVENTS_EACH, timeout=20) for name, client in clients.items()}
        for client in clients.values():
            await client.nothing_more(0.5)

    expected = list(range(1, EVENTS_EACH + 1))
    for name, received in got.items():
        assert [f["offset"] for f in received] == expected, name
    assert got["alice@1"] == got["alice@2"], "both replicas sent the same stream"
    alice_ids = {str(e.id) for e in events if e.data.model_dump()["user_id"] == alice}
    assert {f["id"] for f in got["alice@1"]} == alice_ids
    assert {f["data"]["user_id"] for f in got["bob@2"]} == {str(bob)}
    # Two replicas take events concurrently, so a user's events published in one burst may be
    # stored in either order; what matters is that every connection sees the same order.
    created = {f["data"]["order_id"] for f in got["alice@1"] if f["event"] == "order.created"}
    changed = {f["data"]["order_id"] for f in got["alice@1"] if f["event"] == "order.status_changed"}
    assert created == changed


async def test_a_client_resumes_on_the_other_replica_with_since(
    replicas: tuple[Replica, Replica], issuer: UsersStandIn, test_amqp_url: str
) -> None:
    one, two = replicas
    user = uuid.uuid4()
    token = issuer.token(user)
    async with ws_connect(one.ws_url, token) as ws:
        frames = Frames(ws)
        await frames.next_non_ping()
        await publish(test_amqp_url, order_created(user), order_created(user))
        assert [f["offset"] for f in await frames.events(2)] == [1, 2]

    missed = [notification_created(user, body=f"while away {n}") for n in range(3)]
    async with ws_connect(two.ws_url, token) as watcher:
        await Frames(watcher).next_non_ping()
        await publish(test_amqp_url, *missed)
        await Frames(watcher).events(3)  # all three are stored before the client comes back

    async with ws_connect(two.ws_url, token, since=2) as ws:
        frames = Frames(ws)
        replayed = await frames.events(3)
        assert await frames.next_non_ping() == {"type": "ready", "offset": 5, "recovered": True}
        await frames.nothing_more(0.3)
    assert {f["id"] for f in replayed} == {str(e.id) for e in missed}
    assert [f["offset"] for f in replayed] == [3, 4, 5]


async def test_a_replica_refuses_a_bad_token_and_reports_its_connections(
    replicas: tuple[Replica, Replica], issuer: UsersStandIn
) -> None:
    one, _ = replicas
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(one.ws_url, issuer.token(uuid.uuid4(), ttl=-30)):
            pass
    assert refused.value.response.status_code == 401

    async with ws_connect(one.ws_url, issuer.token(uuid.uuid4())) as ws:
        await Frames(ws).next_non_ping()
        async with httpx.AsyncClient(timeout=5) as client:
            metrics = (await client.get(one.url + "/metrics")).text
            ready = (await client.get(one.url + "/readyz")).json()
    assert 'realtime_connections{transport="ws"} 1.0' in metrics
    assert "realtime_users_online 1.0" in metrics
    assert ready["checks"] == {
        "database": "ok",
        "broker": "ok",
        "listener": "ok",
        "room_listener": "ok",
        "presence": "ok",
    }


async def test_a_deactivated_users_connections_close_with_4403_on_every_replica(
    replicas: tuple[Replica, Replica], issuer: UsersStandIn, test_amqp_url: str
) -> None:
    one, two = replicas
    alice, bob = uuid.uuid4(), uuid.uuid4()
    async with (
        ws_connect(one.ws_url, issuer.token(alice)) as alice_one,
        ws_connect(two.ws_url, issuer.token(alice)) as alice_two,
        ws_connect(two.ws_url, issuer.token(bob)) as bob_two,
    ):
        for ws in (alice_one, alice_two, bob_two):
            assert (await Frames(ws).next_non_ping())["type"] == "ready"
        await publish(test_amqp_url, UserDeactivated(data=UserDeactivatedData(user_id=alice)))
        for ws in (alice_one, alice_two):
            # Contract: within 5 seconds of the deactivation (the broker's hop included).
            async with asyncio.timeout(5):
                await ws.wait_closed()
            assert ws.close_code == 4403
        await publish(test_amqp_url, order_created(bob))
        assert (await Frames(bob_two).events(1))[0]["event"] == "order.created"
