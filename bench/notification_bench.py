"""The notification pipeline: events consumed and stored per second, and the lag it adds.

Run from the repository root: ``.venv/bin/python -m bench.notification_bench`` (needs Postgres and
RabbitMQ). It makes a throwaway database and vhost, starts the notification service as a real process,
and publishes ``order.status_changed`` events (to ``paid``: an in-app notification, no e-mail) for
distinct users straight to the ``events`` exchange. Every event goes the whole way: consumed, inbox
row, notification row, outbox row, relayed as ``notification.created``, which a queue of the bench's
own collects. Two figures:

- throughput: a burst of N events published at once; events/s from the first publish to the last
  ``notification.created`` received;
- lag: events published at a steady rate (300/s); for each, the time from its publish (confirmed) to
  its ``notification.created`` arriving, matched by user id.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import aio_pika
import orjson

from bench.processes import configure_bench_logging, free_port, throwaway_database
from bench.vhost import throwaway_vhost
from shared.devstack import COMPONENTS, Stack
from shared.messaging.events import EXCHANGE, OrderStatusChanged, OrderStatusChangedData
from shared.service.settings import DEFAULT_AMQP_URL

log = logging.getLogger("bench.notification_bench")


def event_for(user_id: uuid.UUID) -> OrderStatusChanged:
    return OrderStatusChanged(
        data=OrderStatusChangedData(
            order_id=uuid.uuid4(), user_id=user_id, from_status="pending", to_status="paid", reason="user"
        )
    )


class Pipeline:
    def __init__(self, amqp_url: str) -> None:
        self.amqp_url = amqp_url
        self.received: dict[str, float] = {}
        self.arrived = asyncio.Event()
        self.want = 0

    async def open(self) -> None:
        self.connection = await aio_pika.connect(self.amqp_url)
        self.channel = await self.connection.channel(publisher_confirms=True)
        self.exchange = await self.channel.declare_exchange(
            EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        tap_channel = await self.connection.channel()
        await tap_channel.set_qos(prefetch_count=500)
        tap = await tap_channel.declare_queue(exclusive=True)
        await tap.bind(self.exchange, "notification.created")
        await tap.consume(self._on_created, no_ack=True)

    async def _on_created(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        user_id = orjson.loads(message.body)["data"]["user_id"]
        self.received.setdefault(user_id, time.perf_counter())
        if len(self.received) >= self.want:
            self.arrived.set()

    async def publish(self, event: OrderStatusChanged) -> float:
        await self.exchange.publish(
            aio_pika.Message(
                event.model_dump_json().encode(),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=str(event.id),
                type=event.type,
            ),
            routing_key=event.type,
        )
        return time.perf_counter()

    async def wait_for(self, total: int, timeout: float) -> None:
        self.want = total
        if len(self.received) < total:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), timeout)


async def burst(pipeline: Pipeline, count: int) -> float:
    users = [uuid.uuid4() for _ in range(count)]
    before = len(pipeline.received)
    start = time.perf_counter()
    # Pipelined publishes, confirmed in batches: the producer side must not be the bottleneck.
    for first in range(0, count, 500):
        await asyncio.gather(*(pipeline.publish(event_for(u)) for u in users[first : first + 500]))
    await pipeline.wait_for(before + count, timeout=300)
    return count / (max(pipeline.received[str(u)] for u in users) - start)


async def steady(pipeline: Pipeline, rate: float, seconds: float) -> list[float]:
    total = int(rate * seconds)
    sent: dict[str, float] = {}
    before = len(pipeline.received)
    start = time.perf_counter()

    async def one(i: int) -> None:
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        user = uuid.uuid4()
        sent[str(user)] = await pipeline.publish(event_for(user))

    await asyncio.gather(*(one(i) for i in range(total)))
    await pipeline.wait_for(before + total, timeout=120)
    return [(pipeline.received[u] - t) * 1000 for u, t in sent.items()]


async def measure(amqp_url: str, args: argparse.Namespace) -> tuple[list[float], list[float]]:
    pipeline = Pipeline(amqp_url)
    await pipeline.open()
    try:
        await burst(pipeline, 200)  # warm-up: connections, prepared statements
        rates = []
        for round_no in range(1, args.rounds + 1):
            rate = await burst(pipeline, args.burst)
            rates.append(rate)
            log.info(f"round {round_no}: burst of {args.burst}: {rate:,.0f} events/s")
        lags = await steady(pipeline, args.rate, args.seconds)
        return rates, lags
    finally:
        await pipeline.connection.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(args: argparse.Namespace) -> int:
    with ExitStack() as cleanup:
        workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="notification-bench-")))
        database_url = cleanup.enter_context(throwaway_database(args.database_url))
        amqp_url = cleanup.enter_context(throwaway_vhost(args.amqp_url))
        stack = Stack(
            database_url=database_url,
            amqp_url=amqp_url,
            components=[c for c in COMPONENTS if c.name == "notification"],
            ports={c.name: free_port() for c in COMPONENTS},
            env={
                "LOG_LEVEL": "WARNING",
                "APP_ENV": "development",
                "RATE_LIMIT_SCALE": "1000",
                "SMTP_PORT": str(free_port()),
            },
            log_dir=workdir / "logs",
        )
        cleanup.callback(stack.stop_all)
        log.info("preparing and starting notification ...")
        stack.prepare()
        stack.start_all()
        rates, lags = asyncio.run(measure(amqp_url, args))
        sys.stdout.write(
            "\n".join(
                [
                    "notification pipeline (order.status_changed -> inbox + notification + outbox -> "
                    "notification.created), one notification process",
                    "",
                    "| figure | value | target |",
                    "|---|---:|---:|",
                    f"| events/s, burst of {args.burst} (median of {args.rounds}) | "
                    f"{statistics.median(rates):,.0f} | >= 1,000 |",
                    f"| lag p50 at {args.rate:.0f} events/s for {args.seconds:.0f} s (ms) | "
                    f"{percentile(lags, 0.5):.1f} | |",
                    f"| lag p99 at {args.rate:.0f} events/s (ms) | {percentile(lags, 0.99):.1f} | < 100 |",
                ]
            )
            + "\n"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--burst", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--amqp-url", default=os.environ.get("AMQP_URL", DEFAULT_AMQP_URL))
    args = parser.parse_args()
    try:
        return run(args)
    except (RuntimeError, TimeoutError) as exc:
        log.error(f"bench failed: {exc!r}")
        return 1


if __name__ == "__main__":
    configure_bench_logging()
    sys.exit(main())
