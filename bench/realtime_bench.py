"""From ``POST /api/v1/orders`` answering 201 to the matching frame at a browser-like client.

Run from the repository root: ``.venv/bin/python -m bench.realtime_bench`` (needs Postgres, RabbitMQ).
It makes a throwaway database and vhost, starts users, orders, realtime and the gateway as real
processes, registers ``--users`` accounts and opens ``--clients`` WebSockets through the gateway
(``/ws?token=...``, spread evenly over the accounts), then creates orders at ``--rate`` per second
for ``--seconds``, each for an account in turn. For every (order, connection of its owner) pair it
records the time from the 201 to the ``order.created`` frame on that connection: the whole path
(orders' outbox relay, RabbitMQ, realtime's consumer and store, NOTIFY fan-out, the gateway's proxy).
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
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

from bench.processes import configure_bench_logging, free_port, throwaway_database
from bench.vhost import throwaway_vhost
from shared.devstack import COMPONENTS, Stack, write_dev_key
from shared.service.settings import DEFAULT_AMQP_URL

log = logging.getLogger("bench.realtime_bench")

ORDER = {
    "currency": "USD",
    "items": [{"sku": "SKU-1", "name": "Widget", "quantity": 1, "unit_price_cents": 100}],
}


async def _retried(call: Callable[[], Awaitable[httpx.Response]], attempts: int = 5) -> httpx.Response:
    """A 429, 503 or 504 (a busy service on a loaded machine) is tried again after its Retry-After."""
    response = await call()
    for _ in range(attempts - 1):
        if response.status_code not in (429, 503, 504):
            break
        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
        response = await call()
    return response


async def tokens_for(client: httpx.AsyncClient, count: int) -> list[str]:
    async def one(i: int) -> str:
        email = f"rt-{i}-{uuid.uuid4().hex[:6]}@example.com"
        body = {"email": email, "password": "bench pass", "full_name": "R"}
        response = await _retried(lambda: client.post("/api/v1/auth/register", json=body))
        if response.status_code != 409:  # a retried registration the timed-out attempt had made
            response.raise_for_status()
        form = {"grant_type": "password", "username": email, "password": "bench pass"}
        response = await _retried(lambda: client.post("/api/v1/auth/token", data=form))
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    out: list[str] = []
    for first in range(0, count, 10):
        out += await asyncio.gather(*(one(i) for i in range(first, min(count, first + 10))))
    return out


class Clients:
    def __init__(self) -> None:
        self.arrivals: dict[str, list[float]] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.sockets: list[ClientConnection] = []

    async def open(self, ws_url: str, token: str) -> None:
        ws = await connect(f"{ws_url}?token={token}", compression=None, max_size=2**20, open_timeout=30)
        ready = orjson.loads(await ws.recv())
        while ready.get("type") != "ready":
            ready = orjson.loads(await ws.recv())
        self.sockets.append(ws)
        self.tasks.append(asyncio.create_task(self._read(ws)))

    async def _read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            now = time.perf_counter()
            frame = orjson.loads(raw)
            if frame.get("type") == "event" and frame.get("event") == "order.created":
                self.arrivals.setdefault(frame["data"]["order_id"], []).append(now)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)


async def measure(gateway: str, args: argparse.Namespace) -> tuple[list[float], int, int]:
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=gateway, timeout=30, limits=limits) as client:
        tokens = await tokens_for(client, args.users)
        clients = Clients()
        ws_url = gateway.replace("http://", "ws://") + "/ws"
        per_user = max(1, args.clients // args.users)
        for first in range(0, args.clients, 50):
            await asyncio.gather(
                *(
                    clients.open(ws_url, tokens[(i // per_user) % args.users])
                    for i in range(first, first + 50)
                )
            )
        log.info(f"{len(clients.sockets)} WebSockets open through the gateway")
        created: dict[str, float] = {}
        total = int(args.rate * args.seconds)
        start = time.perf_counter()

        async def order(i: int) -> None:
            await asyncio.sleep(max(0.0, start + i / args.rate - time.perf_counter()))
            token = tokens[i % args.users]
            response = await client.post(
                "/api/v1/orders", json=ORDER, headers={"Authorization": f"Bearer {token}"}
            )
            if response.status_code == 201:
                created[response.json()["id"]] = time.perf_counter()

        await asyncio.gather(*(order(i) for i in range(total)))
        await asyncio.sleep(3)
        await clients.close()
    latencies = [
        (arrival - created[order_id]) * 1000
        for order_id, arrivals in clients.arrivals.items()
        if order_id in created
        for arrival in arrivals
    ]
    return latencies, len(created), total


def run(args: argparse.Namespace) -> int:
    with ExitStack() as cleanup:
        workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="realtime-bench-")))
        database_url = cleanup.enter_context(throwaway_database(args.database_url))
        amqp_url = cleanup.enter_context(throwaway_vhost(args.amqp_url))
        stack = Stack(
            database_url=database_url,
            amqp_url=amqp_url,
            components=[c for c in COMPONENTS if c.name in ("users", "orders", "realtime", "gateway")],
            ports={c.name: free_port() for c in COMPONENTS},
            env={
                "USERS_JWT_PRIVATE_KEY_FILE": str(write_dev_key(workdir / "jwt-ed25519.pem")),
                "LOG_LEVEL": "WARNING",
                "APP_ENV": "development",
                "RATE_LIMIT_SCALE": "1000",
            },
            log_dir=workdir / "logs",
        )
        cleanup.callback(stack.stop_all)
        log.info("preparing and starting users, orders, realtime, gateway ...")
        stack.prepare()
        stack.start_all()
        latencies, created, wanted = asyncio.run(measure(stack.url("gateway"), args))
        per_user = max(1, args.clients // args.users)
        ordered = sorted(latencies)

        def pct(q: float) -> float:
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

        sys.stdout.write(
            "\n".join(
                [
                    f"201 -> order.created frame through the gateway, {args.clients} WebSockets "
                    f"({args.users} users x {per_user}), {args.rate:.0f} orders/s for {args.seconds:.0f} s",
                    "",
                    "| figure | value | target |",
                    "|---|---:|---:|",
                    f"| orders created (201) / attempted | {created} / {wanted} | |",
                    f"| frames matched / expected | {len(latencies)} / {created * per_user} | equal |",
                    f"| p50 (ms) | {pct(0.5):.1f} | |",
                    f"| p99 (ms) | {pct(0.99):.1f} | < 100 |",
                    f"| mean (ms) | {statistics.fmean(latencies) if latencies else float('nan'):.1f} | |",
                ]
            )
            + "\n"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--amqp-url", default=os.environ.get("AMQP_URL", DEFAULT_AMQP_URL))
    args = parser.parse_args()
    try:
        return run(args)
    except (RuntimeError, httpx.HTTPError, OSError) as exc:
        log.error(f"bench failed: {exc!r}")
        return 1


if __name__ == "__main__":
    configure_bench_logging()
    sys.exit(main())
