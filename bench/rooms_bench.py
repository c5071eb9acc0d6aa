"""From a ``say`` frame to the ``message`` frame at every other member of the room, on two replicas.

Run from the repository root: ``.venv/bin/python -m bench.rooms_bench`` (needs Postgres, RabbitMQ).
It makes a throwaway database and vhost, starts users, orders, realtime and the gateway as real
processes plus a second realtime replica, registers ``--users`` accounts and opens ``--members``
WebSockets into one room: half through the gateway (replica one), half straight to replica two. Then
``--senders`` of them say ``--rate`` messages a second in all for ``--seconds`` while ``--orders`` orders
a second are created through the gateway (their events are stored with NOTIFY by realtime's consumer:
the load that makes NOTIFY's commit lock contended). For every (message, member) pair it records the
time from the ``say`` being sent to its ``message`` frame arriving. ``--fanout`` picks how replicas
hear of each other's messages (``notify``, ``broker``, or ``both`` to run one after the other).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.processes import configure_bench_logging, free_port, throwaway_database
from bench.realtime_bench import ORDER, tokens_for
from bench.vhost import throwaway_vhost
from shared.devstack import COMPONENTS, Stack, write_dev_key
from shared.service.settings import DEFAULT_AMQP_URL

log = logging.getLogger("bench.rooms_bench")


class Room:
    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.arrivals: list[tuple[str, float]] = []
        self.closed: list[int] = []
        self.sockets: list[ClientConnection] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def join(self, ws_url: str, token: str, room: str) -> ClientConnection:
        ws = await connect(
            f"{ws_url}?token={token}", compression=None, max_size=2**20, open_timeout=60, close_timeout=2
        )
        await ws.send(orjson.dumps({"type": "join", "room": room}).decode())
        while orjson.loads(await ws.recv()).get("type") != "joined":
            pass
        self.sockets.append(ws)
        self.tasks.append(asyncio.create_task(self._read(ws)))
        return ws

    async def _read(self, ws: ClientConnection) -> None:
        # A connection the server closes (4008) ends the loop; its code is what is recorded.
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                now = time.perf_counter()
                frame = orjson.loads(raw)
                if frame.get("type") == "message" and frame.get("client_id"):
                    self.arrivals.append((frame["client_id"], now))
        if ws.close_code is not None and ws.close_code != 1000:
            self.closed.append(ws.close_code)

    async def close(self) -> None:
        for ws in self.sockets:
            await ws.close()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def measure(gateway: str, replica_two: str, args: argparse.Namespace) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=gateway, timeout=30, limits=limits) as client:
        tokens = await tokens_for(client, args.users)
        auth = {"Authorization": f"Bearer {tokens[0]}"}
        room_id = (await client.post("/api/v1/rooms", json={"name": "bench"}, headers=auth)).json()["id"]
        room = Room()
        urls = [gateway.replace("http://", "ws://") + "/ws", replica_two.replace("http://", "ws://") + "/ws"]
        members: list[ClientConnection] = []
        for first in range(0, args.members, 50):
            members += await asyncio.gather(
                *(
                    room.join(urls[i % 2], tokens[i % args.users], room_id)
                    for i in range(first, min(args.members, first + 50))
                )
            )
        log.info(f"{len(members)} members in the room")
        total = int(args.rate * args.seconds)
        start = time.perf_counter()

        async def say(i: int) -> None:
            await asyncio.sleep(max(0.0, start + i / args.rate - time.perf_counter()))
            client_id = str(uuid.uuid4())
            room.sent[client_id] = time.perf_counter()
            frame = {"type": "say", "room": room_id, "text": f"m{i}", "client_id": client_id}
            await members[i % args.senders].send(orjson.dumps(frame).decode())

        orders_total = int(args.orders * args.seconds)
        created = 0

        async def order(i: int) -> None:
            nonlocal created
            await asyncio.sleep(max(0.0, start + i / args.orders - time.perf_counter()))
            token = tokens[i % args.users]
            response = await client.post(
                "/api/v1/orders", json=ORDER, headers={"Authorization": f"Bearer {token}"}
            )
            created += response.status_code == 201

        await asyncio.gather(*(say(i) for i in range(total)), *(order(i) for i in range(orders_total)))
        await asyncio.sleep(3)
        stored = (await client.get(f"/api/v1/rooms/{room_id}", headers=auth)).json()["last_offset"]
        await room.close()
    latencies = [(at - room.sent[cid]) * 1000 for cid, at in room.arrivals if cid in room.sent]
    return {
        "latencies": sorted(latencies),
        "stored": stored,
        "said": total,
        "orders": created,
        "orders_wanted": orders_total,
        "closed": room.closed,
        "expected": stored * args.members,
    }


def run(args: argparse.Namespace, fanout: str) -> dict[str, Any]:
    with ExitStack() as cleanup:
        workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="rooms-bench-")))
        database_url = cleanup.enter_context(throwaway_database(args.database_url))
        amqp_url = cleanup.enter_context(throwaway_vhost(args.amqp_url))
        ports = {c.name: free_port() for c in COMPONENTS}
        env = {
            "USERS_JWT_PRIVATE_KEY_FILE": str(write_dev_key(workdir / "jwt-ed25519.pem")),
            "LOG_LEVEL": "WARNING",
            "APP_ENV": "development",
            "REALTIME_ROOM_FANOUT": fanout,
            # One address opens every connection and says every message here.
            "RATE_LIMIT_SCALE": "1000",
            "REALTIME_SAY_RATE": "1000",
        }
        stack = Stack(
            database_url=database_url,
            amqp_url=amqp_url,
            components=[c for c in COMPONENTS if c.name in ("users", "orders", "realtime", "gateway")],
            ports=ports,
            env=env,
            log_dir=workdir / "logs",
        )
        cleanup.callback(stack.stop_all)
        two = Stack(
            database_url=database_url,
            amqp_url=amqp_url,
            components=[c for c in COMPONENTS if c.name == "realtime"],
            ports={**ports, "realtime": free_port()},
            env=env,
            log_dir=workdir / "logs-two",
        )
        cleanup.callback(two.stop_all)
        log.info(f"[{fanout}] starting users, orders, two realtime replicas, gateway ...")
        stack.prepare()
        stack.start_all()
        two.start_all()
        return asyncio.run(measure(stack.url("gateway"), two.url("realtime"), args))


def report(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> str:
    lines = [
        f"say -> message frame at every member, {args.members} members over two replicas, "
        f"{args.rate:.0f} messages/s for {args.seconds:.0f} s with {args.orders:.0f} orders/s",
        "",
        "| fan-out | messages stored / said | frames received / expected | p50 ms | p99 ms "
        "| mean ms | orders 201 | closed (4008...) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for fanout, r in results.items():
        ordered = r["latencies"]

        def pct(q: float, ordered: list[float] = ordered) -> float:
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

        mean = statistics.fmean(ordered) if ordered else float("nan")
        lines.append(
            f"| {fanout} | {r['stored']} / {r['said']} | {len(ordered)} / {r['expected']} "
            f"| {pct(0.5):.1f} | {pct(0.99):.1f} | {mean:.1f} | {r['orders']} / {r['orders_wanted']} "
            f"| {r['closed'] or 'none'} |"
        )
    lines.append("")
    lines.append("target: p99 under 100 ms at 1,000 members and 20 messages/s (20,000 frames/s out)")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--orders", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fanout", choices=["notify", "broker", "both"], default="both")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--amqp-url", default=os.environ.get("AMQP_URL", DEFAULT_AMQP_URL))
    args = parser.parse_args()
    modes = ["notify", "broker"] if args.fanout == "both" else [args.fanout]
    try:
        results = {mode: run(args, mode) for mode in modes}
    except (RuntimeError, httpx.HTTPError, OSError) as exc:
        log.error(f"bench failed: {exc!r}")
        return 1
    sys.stdout.write(report(args, results) + "\n")
    return 0


if __name__ == "__main__":
    configure_bench_logging()
    raise SystemExit(main())
