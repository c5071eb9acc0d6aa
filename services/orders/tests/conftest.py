"""Fixtures of the orders service: its schema in the run's throwaway database, a stand-in users
service on a real port, the app over ASGI, and a probe queue bound to the ``events`` exchange."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import asyncpg
import httpx
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from fastapi import FastAPI
from pydantic import SecretStr

from orders.app import create_app
from orders.cli import migrations_dir
from orders.settings import SCHEMA, Settings
from orders.workers import TOPOLOGY
from shared.db.bootstrap import ServiceDatabase, ensure_service_schema
from shared.db.migrations import upgrade
from shared.messaging.events import EXCHANGE
from shared.service.settings import with_credentials
from shared.testing.users import UsersStandIn

TABLES = ("orders", "order_items", "idempotency_keys", "outbox", "inbox", "jobs", "job_runs")


@dataclass(frozen=True)
class OrdersDb:
    admin_url: str
    service_url: str


def role_password(admin_url: str, value: str) -> str | None:
    """A password only where the server asks for one (a container); trust auth needs none."""
    return value if urlsplit(admin_url).password else None


@pytest.fixture(scope="session")
async def orders_db(test_database_url: str) -> OrdersDb:
    password = role_password(test_database_url, "orders-svc-test")
    await ensure_service_schema(test_database_url, ServiceDatabase(SCHEMA, "orders_svc", password))
    service_url = with_credentials(test_database_url, "orders_svc", password)
    # Alembic's env.py calls asyncio.run itself, so it runs off this loop.
    await asyncio.to_thread(upgrade, migrations_dir(), service_url, SCHEMA)
    return OrdersDb(admin_url=test_database_url, service_url=service_url)


async def admin_execute(db: OrdersDb, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(db.admin_url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


@pytest.fixture
async def clean_db(orders_db: OrdersDb) -> AsyncIterator[OrdersDb]:
    """Every integration test leaves the orders tables empty."""
    yield orders_db
    await admin_execute(orders_db, "TRUNCATE " + ", ".join(f"{SCHEMA}.{t}" for t in TABLES) + " CASCADE")


@pytest.fixture(scope="session")
def users_server() -> Iterator[UsersStandIn]:
    with UsersStandIn().serving() as standin:
        yield standin


@pytest.fixture
def users(users_server: UsersStandIn) -> Iterator[UsersStandIn]:
    """The stand-in users service, with no accounts and no failure switched on."""
    users_server.reset()
    yield users_server
    users_server.reset()


MakeSettings = Callable[..., Settings]


@pytest.fixture
def make_settings(clean_db: OrdersDb, test_amqp_url: str, users: UsersStandIn) -> MakeSettings:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "environment": "test",
            "database_url": clean_db.admin_url,
            "service_url": clean_db.service_url,
            "amqp_url": test_amqp_url,
            "users_url": users.url,
            "users_service_token": SecretStr(users.service_token),
            "users_timeout": 1.0,
            "users_retry_backoff": 0.01,
        }
        values.update(overrides)
        return Settings(**values)

    return make


async def drop_consumer_queues(amqp_url: str) -> None:
    """The vhost is shared by the whole run: leave no queue bound to user.deactivated behind."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        retries = range(1, len(TOPOLOGY.retry_delays) + 1)
        for name in (TOPOLOGY.queue, TOPOLOGY.dlq, *(TOPOLOGY.retry_queue(n) for n in retries)):
            await channel.queue_delete(name)
    finally:
        await connection.close()


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://orders.test") as client:
                yield app, client
    finally:
        await drop_consumer_queues(settings.amqp_url)


RunApp = Callable[..., AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]]


@pytest.fixture
def run_app(make_settings: MakeSettings) -> RunApp:
    """``async with run_app(**settings_overrides) as (app, client)``: an app of one's own."""

    def run(**overrides: Any) -> AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]:
        return serving(make_settings(**overrides))

    return run


@pytest.fixture
async def client(run_app: RunApp) -> AsyncIterator[httpx.AsyncClient]:
    async with run_app() as (_, client):
        yield client


def order_body(*items: tuple[str, int, int], currency: str = "EUR") -> dict[str, Any]:
    return {
        "currency": currency,
        "items": [
            {"sku": sku, "name": f"Item {sku}", "quantity": quantity, "unit_price_cents": price}
            for sku, quantity, price in (items or (("SKU-1", 2, 1250), ("SKU-2", 1, 499)))
        ],
    }


class Api:
    """The calls most tests repeat, spelled as a client would make them."""

    def __init__(self, client: httpx.AsyncClient, users: UsersStandIn) -> None:
        self.client = client
        self.users = users

    def customer(self) -> tuple[uuid.UUID, dict[str, str]]:
        user_id = self.users.add_user()
        return user_id, self.users.bearer(user_id)

    def admin(self) -> tuple[uuid.UUID, dict[str, str]]:
        user_id = self.users.add_user()
        return user_id, self.users.bearer(user_id, admin=True)

    async def create(
        self, headers: dict[str, str], body: dict[str, Any] | None = None, **extra: str
    ) -> httpx.Response:
        return await self.client.post(
            "/api/v1/orders", json=body or order_body(), headers={**headers, **extra}
        )

    async def place(self, headers: dict[str, str], body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.create(headers, body)
        assert response.status_code == 201, response.text
        order: dict[str, Any] = response.json()
        return order

    async def act(self, order_id: str, action: str, headers: dict[str, str]) -> httpx.Response:
        return await self.client.post(f"/api/v1/orders/{order_id}/{action}", headers=headers)


@pytest.fixture
def api(client: httpx.AsyncClient, users: UsersStandIn) -> Api:
    return Api(client, users)


@pytest.fixture
def api_factory(users: UsersStandIn) -> Callable[[httpx.AsyncClient], Api]:
    """``Api`` over the client of an app made with ``run_app``."""
    return lambda client: Api(client, users)


@pytest.fixture
def body() -> Callable[..., dict[str, Any]]:
    return order_body


class Probe:
    """A queue of our own bound to ``events``: what any outside service would receive."""

    def __init__(self, queue: AbstractQueue) -> None:
        self.queue = queue

    async def take(self, want: int, timeout: float = 10.0) -> list[AbstractIncomingMessage]:
        got: list[AbstractIncomingMessage] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(got) < want and loop.time() < deadline:
            message = await self.queue.get(no_ack=True, fail=False)
            if message is None:
                await asyncio.sleep(0.05)
            else:
                got.append(message)
        return got


@pytest.fixture
async def probe(test_amqp_url: str) -> AsyncIterator[Probe]:
    connection = await aio_pika.connect(test_amqp_url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(f"probe-{uuid.uuid4().hex[:8]}", exclusive=True)
        await queue.bind(exchange, "order.*")
        yield Probe(queue)
    finally:
        await connection.close()
