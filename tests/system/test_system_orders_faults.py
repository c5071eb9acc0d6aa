"""Nothing committed is lost, nothing is invented: orders under a cut broker link and a SIGKILL.

users, orders and the gateway run as real processes; orders reaches RabbitMQ through a TCP proxy the
test owns, so the link can be cut without touching the shared broker.
"""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import asyncpg
import httpx
import pytest

from shared.devstack import COMPONENTS, Stack
from shared.messaging.events import EXCHANGE
from shared.testing.tcpproxy import ThreadedTcpProxy
from shared.testing.waits import eventually

from .conftest import free_port

pytestmark = pytest.mark.system

ORDER = {
    "currency": "USD",
    "items": [{"sku": "SKU-1", "name": "Widget", "quantity": 2, "unit_price_cents": 250}],
}


def through(amqp_url: str, port: int) -> str:
    parts = urlsplit(amqp_url)
    netloc = parts.netloc.rsplit("@", 1)
    creds = netloc[0] + "@" if len(netloc) == 2 else ""
    return urlunsplit((parts.scheme, f"{creds}127.0.0.1:{port}", parts.path, "", ""))


@pytest.fixture(scope="module")
def broker_proxy(test_amqp_url: str) -> Iterator[ThreadedTcpProxy]:
    parts = urlsplit(test_amqp_url)
    proxy = ThreadedTcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672)
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def orders_stack(
    test_database_url: str,
    test_amqp_url: str,
    broker_proxy: ThreadedTcpProxy,
    signing_key_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    stack = Stack(
        database_url=test_database_url,
        amqp_url=test_amqp_url,
        components=[c for c in COMPONENTS if c.name in ("users", "orders", "gateway")],
        ports={c.name: free_port() for c in COMPONENTS},
        env={
            "USERS_JWT_PRIVATE_KEY_FILE": str(signing_key_file),
            "APP_ENV": "test",
            "RATE_LIMIT_SCALE": "1000",
            "LOG_LEVEL": "WARNING",
        },
        component_env={"orders": {"AMQP_URL": through(test_amqp_url, broker_proxy.port)}},
        log_dir=tmp_path_factory.mktemp("orders-logs"),
    )
    try:
        stack.prepare()
        stack.start_all()
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture(scope="module")
def auth(orders_stack: Stack) -> dict[str, str]:
    gateway = orders_stack.url("gateway")
    email = f"buyer-{uuid.uuid4().hex[:8]}@example.com"
    registered = httpx.post(
        gateway + "/api/v1/auth/register", json={"email": email, "password": "long enough", "full_name": "B"}
    )
    assert registered.status_code == 201, registered.text
    token = httpx.post(
        gateway + "/api/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": "long enough"},
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


class EventTap:
    """A queue of the test's own, bound to ``events``, read from a background loop."""

    def __init__(self, amqp_url: str, *keys: str) -> None:
        self.amqp_url = amqp_url
        self.keys = keys
        self.name = f"tap-{uuid.uuid4().hex[:8]}"

    async def _channel(self) -> tuple[aio_pika.abc.AbstractConnection, aio_pika.abc.AbstractQueue]:
        connection = await aio_pika.connect(self.amqp_url)
        channel = await connection.channel()
        exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(self.name, durable=False, auto_delete=False)
        for key in self.keys:
            await queue.bind(exchange, key)
        return connection, queue

    def open(self) -> EventTap:
        async def run() -> None:
            connection, _ = await self._channel()
            await connection.close()

        asyncio.run(run())
        return self

    def collect(self, want: set[str], field: str, timeout: float = 60.0) -> dict[str, int]:
        """Read until every id in ``want`` was seen (or time runs out); count sightings per id."""

        async def run() -> dict[str, int]:
            connection, queue = await self._channel()
            seen: dict[str, int] = {}
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            try:
                while not want <= seen.keys() and loop.time() < deadline:
                    message = await queue.get(no_ack=True, fail=False)
                    if message is None:
                        await asyncio.sleep(0.05)
                        continue
                    body = message.body.decode()
                    value = str(json.loads(body)["data"][field])
                    seen[value] = seen.get(value, 0) + 1
            finally:
                await connection.close()
            return seen

        return asyncio.run(run())

    def close(self) -> None:
        async def run() -> None:
            connection = await aio_pika.connect(self.amqp_url)
            channel = await connection.channel()
            await channel.queue_delete(self.name)
            await connection.close()

        asyncio.run(run())


def create_orders(
    gateway: str, auth: dict[str, str], count: int, concurrency: int = 16
) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(base_url=gateway, timeout=30, limits=limits) as client:
            semaphore = asyncio.Semaphore(concurrency)

            async def one() -> httpx.Response:
                async with semaphore:
                    try:
                        return await client.post("/api/v1/orders", json=ORDER, headers=auth)
                    except httpx.HTTPError as exc:
                        return httpx.Response(599, text=str(exc))

            return list(await asyncio.gather(*(one() for _ in range(count))))

    return asyncio.run(run())


def committed_order_ids(database_url: str) -> set[str]:
    async def run() -> set[str]:
        conn = await asyncpg.connect(database_url)
        try:
            return {str(r["id"]) for r in await conn.fetch("SELECT id FROM orders.orders")}
        finally:
            await conn.close()

    return asyncio.run(run())


def test_orders_created_while_the_broker_link_is_cut_all_arrive_once_it_is_back(
    orders_stack: Stack, auth: dict[str, str], broker_proxy: ThreadedTcpProxy, test_amqp_url: str
) -> None:
    tap = EventTap(test_amqp_url, "order.created").open()
    try:
        broker_proxy.cut()
        responses = create_orders(orders_stack.url("gateway"), auth, 200)
        assert [r.status_code for r in responses] == [201] * 200, {r.status_code for r in responses}
        ids = {r.json()["id"] for r in responses}
        broker_proxy.restore()
        seen = tap.collect(ids, "order_id", timeout=90)
        assert ids <= seen.keys(), f"{len(ids - seen.keys())} order.created events missing"
    finally:
        broker_proxy.restore()
        tap.close()


def test_a_sigkill_mid_burst_loses_no_committed_order_event(
    orders_stack: Stack, auth: dict[str, str], test_database_url: str, test_amqp_url: str
) -> None:
    tap = EventTap(test_amqp_url, "order.created").open()
    try:
        before = committed_order_ids(test_database_url)

        async def burst_and_kill() -> None:
            task = asyncio.create_task(
                asyncio.to_thread(create_orders, orders_stack.url("gateway"), auth, 400, 24)
            )
            # Mid-burst: once some orders are committed (not after a guessed delay, which a busy
            # machine can outlast before the first order).
            await eventually(
                lambda: asyncio.to_thread(lambda: len(committed_order_ids(test_database_url) - before) >= 20),
                timeout=60,
                message="the burst committed nothing",
            )
            process = orders_stack.processes["orders"]
            process.send_signal(signal.SIGKILL)
            await task

        asyncio.run(burst_and_kill())
        orders_stack.stop("orders")
        orders_stack.start("orders")
        orders_stack.wait_ready("orders")
        committed = committed_order_ids(test_database_url) - before
        assert committed, "the burst committed nothing before the kill"
        seen = tap.collect(committed, "order_id", timeout=90)
        missing = committed - seen.keys()
        assert not missing, f"{len(missing)} of {len(committed)} committed orders have no event"
    finally:
        tap.close()


def test_no_event_for_a_request_that_failed(
    orders_stack: Stack, auth: dict[str, str], test_amqp_url: str
) -> None:
    tap = EventTap(test_amqp_url, "order.#").open()
    gateway = httpx.Client(base_url=orders_stack.url("gateway"), timeout=10)
    try:
        assert (
            gateway.post("/api/v1/orders", json={"currency": "usd", "items": []}, headers=auth).status_code
            == 422
        )
        order = gateway.post("/api/v1/orders", json=ORDER, headers=auth).json()
        assert gateway.post(f"/api/v1/orders/{order['id']}/ship", headers=auth).status_code == 403
        assert gateway.post(f"/api/v1/orders/{order['id']}/cancel", headers=auth).status_code == 200
        assert gateway.post(f"/api/v1/orders/{order['id']}/pay", headers=auth).status_code == 409
        marker = gateway.post("/api/v1/orders", json=ORDER, headers=auth).json()
        seen = tap.collect({marker["id"]}, "order_id", timeout=30)
        # Exactly: created + cancelled for the first order, created for the marker; nothing for the failures.
        assert seen == {order["id"]: 2, marker["id"]: 1}
    finally:
        gateway.close()
        tap.close()
