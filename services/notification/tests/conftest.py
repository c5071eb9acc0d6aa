"""Fixtures of the notification service: its schema in the run's throwaway database, a real SMTP
server in-process, a small real stand-in for the users service, the app itself and the bus."""

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
from fastapi import FastAPI

from notification.app import create_app
from notification.cli import migrations_dir
from notification.resources import Resources
from notification.settings import SCHEMA, Settings
from shared.db.bootstrap import ServiceDatabase, ensure_service_schema
from shared.db.migrations import upgrade
from shared.messaging.events import EXCHANGE, Event
from shared.service.settings import with_credentials
from shared.testing.servers import free_port
from shared.testing.users import SERVICE_TOKEN, UsersStandIn
from shared.testing.waits import eventually

from .mailserver import MailServer

RETRY_DELAYS = [0.1, 0.2]  # three attempts, then the DLQ
TABLES = (
    "contacts",
    "notifications",
    "email_attempts",
    "emails",
    "outbox",
    "inbox",
    "jobs",
    "job_runs",
    "daily_counts",
    "erased_users",
)
QUEUES = ("notification.events", "notification.dlq", "notification.retry.1", "notification.retry.2")


@dataclass(frozen=True)
class NotificationDb:
    admin_url: str
    service_url: str


@pytest.fixture(scope="session")
async def notification_db(test_database_url: str) -> NotificationDb:
    # A password only where the server asks for one (a container); a trust-auth server needs none,
    # and leaving it unset keeps this run from changing the password of a developer's role.
    password = "notification-svc-test" if urlsplit(test_database_url).password else None
    await ensure_service_schema(test_database_url, ServiceDatabase(SCHEMA, "notification_svc", password))
    service_url = with_credentials(test_database_url, "notification_svc", password)
    # Alembic's env.py calls asyncio.run itself, so it runs off this loop.
    await asyncio.to_thread(upgrade, migrations_dir(), service_url, SCHEMA)
    return NotificationDb(admin_url=test_database_url, service_url=service_url)


class Database:
    """Plain SQL on the service's tables, as an operator would look at them."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.url)
        try:
            rows: list[asyncpg.Record] = await conn.fetch(query, *args)
            return rows
        finally:
            await conn.close()

    async def count(self, table: str, where: str = "true", *args: Any) -> int:
        rows = await self.fetch(f"SELECT count(*) AS n FROM {SCHEMA}.{table} WHERE {where}", *args)
        return int(rows[0]["n"])


@pytest.fixture
async def db(notification_db: NotificationDb) -> AsyncIterator[Database]:
    """The service's tables, emptied after each test."""
    database = Database(notification_db.admin_url)
    yield database
    tables = ", ".join(f"{SCHEMA}.{table}" for table in TABLES)
    await database.fetch(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


class Bus:
    """Another service on the broker: publishes to ``events``, binds probe queues of its own."""

    def __init__(
        self, connection: aio_pika.abc.AbstractConnection, channel: aio_pika.abc.AbstractChannel
    ) -> None:
        self.connection = connection
        self.channel = channel

    async def publish_raw(
        self, body: bytes, *, routing_key: str, message_id: str, event_type: str | None = None
    ) -> None:
        exchange = await self.channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        message = aio_pika.Message(
            body,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message_id,
            type=event_type or routing_key,
        )
        await exchange.publish(message, routing_key=routing_key, mandatory=True)

    async def publish(self, event: Event, times: int = 1) -> None:
        for _ in range(times):
            await self.publish_raw(
                event.model_dump_json().encode(), routing_key=event.type, message_id=str(event.id)
            )

    async def probe(self, *keys: str) -> aio_pika.abc.AbstractQueue:
        exchange = await self.channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await self.channel.declare_queue(f"probe-{uuid.uuid4().hex[:8]}", exclusive=True)
        for key in keys:
            await queue.bind(exchange, key)
        return queue


@pytest.fixture
async def bus(test_amqp_url: str) -> AsyncIterator[Bus]:
    connection = await aio_pika.connect(test_amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        yield Bus(connection, channel)
        # The service's queues go with the test: a dead letter left here must not meet the next test.
        cleanup = await connection.channel()
        for name in QUEUES:
            await cleanup.queue_delete(name)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def users_standin() -> Iterator[UsersStandIn]:
    with UsersStandIn().serving() as standin:
        yield standin


@pytest.fixture
def users(users_standin: UsersStandIn) -> UsersStandIn:
    users_standin.reset()
    return users_standin


@pytest.fixture
async def smtp() -> AsyncIterator[MailServer]:
    server = MailServer(free_port())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@dataclass
class Service:
    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings

    @property
    def resources(self) -> Resources:
        resources: Resources = self.app.state.resources
        return resources


MakeSettings = Callable[..., Settings]


@pytest.fixture
def make_settings(
    notification_db: NotificationDb, test_amqp_url: str, users: UsersStandIn, smtp: MailServer, db: Database
) -> MakeSettings:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "environment": "test",
            "database_url": notification_db.admin_url,
            "service_url": notification_db.service_url,
            "amqp_url": test_amqp_url,
            "users_url": users.url,
            "users_service_token": SERVICE_TOKEN,
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_timeout": 2.0,
            "retry_delays": RETRY_DELAYS,
            "email_backoff_base": 0.05,
            "email_backoff_max": 0.2,
            "email_poll_interval": 0.05,
            "email_max_attempts": 50,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[Service]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notification.test") as client:
            service = Service(app, client, settings)
            await eventually(lambda: service.resources.consumer.consuming, message="consumer never started")
            yield service


RunService = Callable[..., AbstractAsyncContextManager[Service]]


@pytest.fixture
def run_service(make_settings: MakeSettings, bus: Bus) -> RunService:
    """``async with run_service(**settings_overrides) as service``: the app with its lifespan running."""

    def run(**overrides: Any) -> AbstractAsyncContextManager[Service]:
        return serving(make_settings(**overrides))

    return run


@pytest.fixture
async def service(run_service: RunService) -> AsyncIterator[Service]:
    async with run_service() as running:
        yield running
