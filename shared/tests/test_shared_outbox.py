"""The outbox on the real Postgres and RabbitMQ: committed events arrive, rolled-back ones never do."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import aio_pika
import aiormq
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from prometheus_client import CollectorRegistry
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.bootstrap import ServiceDatabase, _connect, ensure_service_schema
from shared.db.engine import make_engine, make_sessionmaker, schema_metadata
from shared.db.unit_of_work import unit_of_work
from shared.messaging.broker import BrokerLink
from shared.messaging.events import (
    EXCHANGE,
    UserDeactivated,
    UserDeactivatedData,
    UserRegistered,
    UserRegisteredData,
)
from shared.messaging.outbox import add_event, outbox_table
from shared.messaging.outbox_metrics import OutboxMetrics
from shared.messaging.relay import OutboxRelay, PublishStalled, relay_locks
from shared.messaging.relay_thread import RelayThread
from shared.service.settings import with_credentials
from shared.testing.tcpproxy import TcpProxy
from shared.testing.waits import eventually

pytestmark = pytest.mark.integration


@dataclass
class Env:
    engine: AsyncEngine
    table: Table
    dsn: str
    amqp_url: str


@pytest.fixture
async def env(test_database_url: str, test_amqp_url: str) -> AsyncIterator[Env]:
    tag = uuid.uuid4().hex[:6]
    service = ServiceDatabase(schema=f"ob_{tag}", role=f"ob_{tag}_svc", password=None)
    await ensure_service_schema(test_database_url, service)
    dsn = with_credentials(test_database_url, service.role, None)
    metadata = schema_metadata(service.schema)
    table = outbox_table(metadata)
    engine = make_engine(dsn, schema=service.schema)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        yield Env(engine, table, dsn, test_amqp_url)
    finally:
        await engine.dispose()
        conn = await _connect(test_database_url)
        try:
            await conn.execute(f'DROP OWNED BY "{service.role}" CASCADE')
            await conn.execute(f'DROP ROLE "{service.role}"')
        finally:
            await conn.close()


async def bound_queue(amqp_url: str, *keys: str) -> tuple[aio_pika.abc.AbstractConnection, AbstractQueue]:
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(f"probe-{uuid.uuid4().hex[:8]}", exclusive=True)
    for key in keys:
        await queue.bind(exchange, key)
    return connection, queue


async def drain(queue: AbstractQueue, want: int, timeout: float = 10.0) -> list[AbstractIncomingMessage]:
    got: list[AbstractIncomingMessage] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(got) < want and asyncio.get_running_loop().time() < deadline:
        message = await queue.get(no_ack=True, fail=False)
        if message is None:
            await asyncio.sleep(0.05)
        else:
            got.append(message)
    return got


def registered(email: str = "a@example.com") -> UserRegistered:
    return UserRegistered(
        correlation_id="req-1", data=UserRegisteredData(user_id=uuid.uuid4(), email=email, full_name="A")
    )


async def write(engine: AsyncEngine, table: Table, *events: UserRegistered | UserDeactivated) -> None:
    async with unit_of_work(make_sessionmaker(engine)) as uow:
        for event in events:
            await add_event(uow.session, table, event)


def relay_for(env: Env, link: BrokerLink, registry: CollectorRegistry | None = None) -> OutboxRelay:
    return OutboxRelay(
        engine=env.engine,
        table=env.table,
        link=link,
        listen_dsn=env.dsn,
        metrics=OutboxMetrics.create(registry or CollectorRegistry()),
        poll_interval=0.2,
        max_backoff=0.5,
    )


async def pending(engine: AsyncEngine, table: Table) -> int:
    async with engine.connect() as conn:
        value = await conn.scalar(select(func.count()).where(table.c.published_at.is_(None)))
    return int(value or 0)


async def test_committed_event_is_published_with_the_contract_properties(env: Env) -> None:
    connection, queue = await bound_queue(env.amqp_url, "user.*")
    link = BrokerLink(env.amqp_url, name="test-relay")
    relay = relay_for(env, link)
    task = asyncio.create_task(relay.run())
    try:
        event = registered()
        await write(env.engine, env.table, event)
        [message] = await drain(queue, 1)
        assert message.message_id == str(event.id)
        assert message.type == "user.registered"
        assert message.content_type == "application/json"
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.routing_key == "user.registered"
        assert message.headers["correlation_id"] == "req-1"
        assert str(message.headers["traceparent"]).startswith("00-")
        assert UserRegistered.model_validate_json(message.body) == event
        # Marked after the broker's confirm, which can come after the message reached the queue.
        await eventually(lambda: pending(env.engine, env.table), equals=0)
    finally:
        relay.stop()
        await task
        await link.close()
        await connection.close()


async def test_an_event_that_opens_its_transaction_still_wakes_the_relay(env: Env) -> None:
    """The NOTIFY rides on a transaction's first outbox row, even when that row is the transaction's
    first statement (the session has no transaction object yet then). With polling 30 s away, only
    the NOTIFY can bring the event out within the drain's 5 s."""
    connection, queue = await bound_queue(env.amqp_url, "user.*")
    link = BrokerLink(env.amqp_url, name="test-relay")
    relay = OutboxRelay(
        engine=env.engine,
        table=env.table,
        link=link,
        listen_dsn=env.dsn,
        metrics=OutboxMetrics.create(CollectorRegistry()),
        poll_interval=30,
    )
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.5)  # listening, first (empty) pass done: asleep until woken
        for email in ("one@example.com", "two@example.com"):
            event = registered(email)
            await write(env.engine, env.table, event)
            [message] = await drain(queue, 1, timeout=5)
            assert message.message_id == str(event.id)
    finally:
        relay.stop()
        await task
        await link.close()
        await connection.close()


async def test_rolled_back_transaction_publishes_nothing(env: Env) -> None:
    connection, queue = await bound_queue(env.amqp_url, "#")
    link = BrokerLink(env.amqp_url, name="test-relay")
    relay = relay_for(env, link)
    task = asyncio.create_task(relay.run())
    try:
        sessions = make_sessionmaker(env.engine)
        with pytest.raises(RuntimeError):
            async with unit_of_work(sessions) as uow:
                await add_event(uow.session, env.table, registered())
                raise RuntimeError("the handler failed after writing the event")
        kept = registered("kept@example.com")
        await write(env.engine, env.table, kept)
        messages = await drain(queue, 2, timeout=2.0)
        assert [m.message_id for m in messages] == [str(kept.id)]
    finally:
        relay.stop()
        await task
        await link.close()
        await connection.close()


async def test_events_survive_a_cut_broker_link_and_arrive_in_order(env: Env) -> None:
    connection, queue = await bound_queue(env.amqp_url, "user.*")
    parts = urlsplit(env.amqp_url)
    proxy = await TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672).start()
    link = BrokerLink(
        env.amqp_url.replace(f"{parts.hostname}:{parts.port or 5672}", f"127.0.0.1:{proxy.port}"),
        name="test-relay",
    )
    registry = CollectorRegistry()
    relay = relay_for(env, link, registry)
    task = asyncio.create_task(relay.run())
    try:
        first = [registered(f"a{i}@example.com") for i in range(5)]
        await write(env.engine, env.table, *first)
        assert len(await drain(queue, 5)) == 5
        await proxy.cut()
        during = [registered(f"b{i}@example.com") for i in range(20)]
        for event in during:
            await write(env.engine, env.table, event)
        await eventually(
            lambda: (
                (registry.get_sample_value("outbox_publish_failures_total", {"reason": "broker"}) or 0) >= 1
            ),
            message="the relay never found the broker gone",
        )
        assert await pending(env.engine, env.table) == 20
        await proxy.restore()
        received = await drain(queue, 20, timeout=15)
        assert [m.message_id for m in received] == [str(e.id) for e in during]
        await eventually(lambda: pending(env.engine, env.table), equals=0)
    finally:
        relay.stop()
        await task
        await link.close()
        await proxy.stop()
        await connection.close()


class FirstConnectRefused(BrokerLink):
    """A link whose first connection attempt is refused and whose later ones reach the broker: the
    moment a broker comes back in the middle of a batch, made deterministic."""

    def __init__(self, url: str) -> None:
        super().__init__(url, name="test-relay")
        self.attempts = 0

    async def exchange(self) -> aiormq.Channel:
        if not self.connected:
            self.attempts += 1
            if self.attempts == 1:
                raise ConnectionRefusedError("the broker is not up yet")
        return await super().exchange()


async def test_a_broker_back_in_the_middle_of_a_batch_gets_none_of_it_out_of_order(env: Env) -> None:
    """Each publish of a batch used to connect on its own: the first was refused, the next ones
    reached the broker that had just come back, and went out ahead of it. A batch now publishes on
    the one channel it started with: it fails whole, and the next batch sends every row in order."""
    connection, queue = await bound_queue(env.amqp_url, "user.*")
    link = FirstConnectRefused(env.amqp_url)
    registry = CollectorRegistry()
    relay = relay_for(env, link, registry)
    try:
        events = [registered(f"m{i}@example.com") for i in range(5)]
        await write(env.engine, env.table, *events)
        with pytest.raises(PublishStalled):
            await relay.relay_once()
        assert await pending(env.engine, env.table) == 5
        assert sample(registry, "outbox_publish_failures_total", {"reason": "broker"}) == 1
        assert await relay.relay_once() == 5
        received = await drain(queue, 5)
        assert [m.message_id for m in received] == [str(e.id) for e in events]
        assert link.attempts == 2
    finally:
        await link.close()
        await connection.close()


async def test_unroutable_event_is_recorded_not_silently_dropped(env: Env) -> None:
    link = BrokerLink(env.amqp_url, name="test-relay")
    registry = CollectorRegistry()
    relay = relay_for(env, link, registry)
    # A routing key nobody binds: the run's vhost is shared with every service's consumer tests.
    event = UserDeactivated(data=UserDeactivatedData(user_id=uuid.uuid4())).model_copy(
        update={"type": f"test.unroutable.{uuid.uuid4().hex[:8]}"}
    )
    await write(env.engine, env.table, event)
    try:
        assert await relay.relay_once() == 0
    finally:
        await link.close()
    async with env.engine.connect() as conn:
        row = (await conn.execute(select(env.table).where(env.table.c.event_id == event.id))).one()
    assert row.last_error
    assert row.attempts == 1
    assert registry.get_sample_value("outbox_publish_failures_total", {"reason": "unroutable"}) == 1


@dataclass
class Relays:
    """Replicas' relays on one outbox, each with its own broker link and metrics."""

    relays: list[OutboxRelay]
    registries: list[CollectorRegistry]
    tasks: list[asyncio.Task[None]]


@asynccontextmanager
async def relays_running(env: Env, count: int) -> AsyncIterator[Relays]:
    links = [BrokerLink(env.amqp_url, name=f"relay-{i}") for i in range(count)]
    registries = [CollectorRegistry() for _ in links]
    relays = [relay_for(env, link, registry) for link, registry in zip(links, registries, strict=True)]
    tasks = [asyncio.create_task(relay.run()) for relay in relays]
    try:
        yield Relays(relays, registries, tasks)
    finally:
        for relay in relays:
            relay.stop()
        await asyncio.gather(*tasks)
        for link in links:
            await link.close()


async def test_two_relays_publish_each_event_once(env: Env) -> None:
    connection, queue = await bound_queue(env.amqp_url, "user.*")
    try:
        async with relays_running(env, 2):
            events = [registered(f"c{i}@example.com") for i in range(200)]
            for start in range(0, 200, 20):
                await write(env.engine, env.table, *events[start : start + 20])
            received = await drain(queue, 200, timeout=20)
            await asyncio.sleep(0.5)
            assert sorted(str(m.message_id) for m in received) == sorted(str(e.id) for e in events)
            assert await queue.get(no_ack=True, fail=False) is None
    finally:
        await connection.close()


def sample(registry: CollectorRegistry, name: str, labels: dict[str, str] | None = None) -> float:
    return registry.get_sample_value(name, labels or {}) or 0.0


async def test_two_relays_lead_and_a_third_takes_over_when_one_stops(env: Env) -> None:
    """Three replicas' relays: two hold the leader locks and publish everything, the third stands by
    without claiming (no wake-up per commit); when a leader stops, the third takes its lock."""
    connection, queue = await bound_queue(env.amqp_url, "user.*")
    try:
        async with relays_running(env, 3) as running:

            def leading() -> list[float]:
                return [sample(r, "outbox_relay_leading") for r in running.registries]

            def published(i: int) -> float:
                return sample(
                    running.registries[i], "outbox_published_total", {"event_type": "user.registered"}
                )

            await eventually(lambda: sorted(leading()) == [0.0, 1.0, 1.0], message="two lead, one stands by")
            standby = leading().index(0.0)
            first = [registered(f"l{i}@example.com") for i in range(30)]
            for event in first:
                await write(env.engine, env.table, event)
            received = await drain(queue, 30)
            assert sorted(str(m.message_id) for m in received) == sorted(str(e.id) for e in first)
            assert published(standby) == 0, "the standby claimed nothing"
            assert sum(published(i) for i in range(3)) == 30

            leader = next(i for i in range(3) if i != standby)
            running.relays[leader].stop()
            await running.tasks[leader]
            await eventually(lambda: leading()[standby] == 1.0, message="the standby took the lock")
            then = [registered(f"t{i}@example.com") for i in range(20)]
            for event in then:
                await write(env.engine, env.table, event)
            received = await drain(queue, 20)
            assert sorted(str(m.message_id) for m in received) == sorted(str(e.id) for e in then)
            assert sum(published(i) for i in range(3)) == 50
            assert await queue.get(no_ack=True, fail=False) is None, "each event once"
    finally:
        await connection.close()


async def test_a_standby_publishes_what_leaders_holding_the_locks_left_waiting(env: Env) -> None:
    """Leaders that hold the locks but do not relay (hung, or their host gone while Postgres keeps their
    sessions): a standby publishes every row older than ``takeover_after`` all the same."""
    holder = await _connect(env.dsn)
    connection, queue = await bound_queue(env.amqp_url, "user.*")
    link = BrokerLink(env.amqp_url, name="test-relay")
    registry = CollectorRegistry()
    relay = OutboxRelay(
        engine=env.engine,
        table=env.table,
        link=link,
        listen_dsn=env.dsn,
        metrics=OutboxMetrics.create(registry),
        poll_interval=0.2,
        takeover_after=0.5,
    )
    task: asyncio.Task[None] | None = None
    try:
        for key in relay_locks(env.table, relay.leaders):
            assert await holder.fetchval("SELECT pg_try_advisory_lock($1, $2)", *key)
        task = asyncio.create_task(relay.run())
        events = [registered(f"h{i}@example.com") for i in range(3)]
        await write(env.engine, env.table, *events)
        received = await drain(queue, 3)
        assert [str(m.message_id) for m in received] == [str(e.id) for e in events]
        assert sample(registry, "outbox_relay_leading") == 0.0, "the locks stayed with their holder"
    finally:
        relay.stop()
        if task is not None:
            await task
        await link.close()
        await holder.close()
        await connection.close()


async def test_a_relay_on_its_own_thread_publishes_and_its_stop_runs_the_final_pass(env: Env) -> None:
    """``RelayThread``: engine and link are built inside the thread's loop (asyncpg and aiormq belong
    to the loop that made them); stop() lets the relay finish, rows written just before included."""
    connection, queue = await bound_queue(env.amqp_url, "user.*")

    @asynccontextmanager
    async def open_relay() -> AsyncIterator[OutboxRelay]:
        engine = make_engine(env.dsn, schema=str(env.table.schema))
        link = BrokerLink(env.amqp_url, name="test-relay-thread")
        try:
            yield OutboxRelay(
                engine=engine,
                table=env.table,
                link=link,
                listen_dsn=env.dsn,
                metrics=OutboxMetrics.create(CollectorRegistry()),
                poll_interval=30,  # only NOTIFY or the final pass can move these rows
                max_backoff=0.5,
            )
        finally:
            await link.close()
            await engine.dispose()

    thread = RelayThread(open_relay, name="test-outbox-relay")
    running = asyncio.create_task(thread.run())
    try:
        first = registered("first@example.com")
        await write(env.engine, env.table, first)
        [message] = await drain(queue, 1)
        assert message.message_id == str(first.id)
        last = registered("last@example.com")
        await write(env.engine, env.table, last)
        thread.stop()
        await asyncio.wait_for(running, 10)  # the relay thread stopped
        assert await pending(env.engine, env.table) == 0
        [late] = await drain(queue, 1)
        assert late.message_id == str(last.id)
    finally:
        thread.stop()
        await asyncio.wait_for(running, 10)
        await connection.close()


async def test_a_relay_thread_stopped_before_its_loop_started_still_ends() -> None:
    opened = threading.Event()

    @asynccontextmanager
    async def open_relay() -> AsyncIterator[OutboxRelay]:
        opened.set()
        raise RuntimeError("never built")
        yield  # pragma: no cover

    thread = RelayThread(open_relay, name="test-outbox-relay-early")
    thread.stop()  # before its loop started: nothing to ask yet
    # A relay that cannot be built fails the worker, so the supervisor starts it again later.
    with pytest.raises(RuntimeError, match="relay thread failed"):
        await asyncio.wait_for(thread.run(), 10)
    assert opened.is_set()
