"""Memory per idle WebSocket connection, and fan-out time, of one realtime process.

    .venv/bin/python services/realtime/bench/connections.py --connections 2000 --users 200

Makes a throwaway database and RabbitMQ vhost (DATABASE_URL / AMQP_URL, defaults: the contract's),
starts a stand-in token issuer and one ``python -m realtime serve`` process, opens the connections
(each reads its ready frame), compares the server's RSS before and after, publishes one event per user
and times until every connection has it. Everything it made is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from websockets.asyncio.client import ClientConnection

from realtime.cli import migrations_dir
from realtime.settings import SCHEMA
from shared.db.bootstrap import ServiceDatabase, drop_database, ensure_database, ensure_service_schema
from shared.db.migrations import upgrade
from shared.service.settings import DEFAULT_AMQP_URL, DEFAULT_DATABASE_URL, with_credentials, with_database
from shared.testing.servers import free_port
from shared.testing.users import UsersStandIn

# The realtime tests' clients and events live with the tests (no wheel ships them); pytest finds them
# through its pythonpath setting, this script (run by path) through its own.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))
from realtime_testing import Frames, notification_created, publish, ws_connect

log = logging.getLogger("bench.connections")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def rabbitmqctl(*args: str) -> None:
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        raise SystemExit("rabbitmqctl is needed to make a throwaway vhost")
    subprocess.run([ctl, *args], check=True, capture_output=True, timeout=60)


async def wait_ready(url: str) -> None:
    async with httpx.AsyncClient(timeout=2) as client:
        for _ in range(300):
            try:
                if (await client.get(url + "/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the realtime process did not become ready")


async def open_all(url: str, tokens: list[str], batch: int) -> list[ClientConnection]:
    connections: list[ClientConnection] = []

    async def one(token: str) -> ClientConnection:
        ws = await ws_connect(url, token, ping_interval=None, max_queue=4)
        assert (await Frames(ws).next_non_ping(timeout=60))["type"] == "ready"
        return ws

    for start in range(0, len(tokens), batch):
        connections += await asyncio.gather(*(one(t) for t in tokens[start : start + batch]))
    return connections


async def measure(
    args: argparse.Namespace, port: int, pid: int, amqp_url: str, issuer: UsersStandIn
) -> dict[str, float]:
    url = f"ws://127.0.0.1:{port}/ws"
    users = [uuid.uuid4() for _ in range(args.users)]
    tokens = [issuer.token(users[n % len(users)], ttl=3600) for n in range(args.connections)]
    # Warm-up: lazy imports, pools, the JWKS fetch; then the baseline.
    for ws in await open_all(url, tokens[:20], 20):
        await ws.close()
    await asyncio.sleep(1)
    before = rss_kib(pid)
    started = time.perf_counter()
    connections = await open_all(url, tokens, args.batch)
    opened = time.perf_counter() - started
    await asyncio.sleep(2)
    after = rss_kib(pid)
    per = (after - before) / args.connections
    log.info(
        "opened %d connections (%d users) in %.1fs; server RSS %.1f MiB -> %.1f MiB: %.1f KiB each",
        args.connections,
        args.users,
        opened,
        before / 1024,
        after / 1024,
        per,
    )

    published = time.perf_counter()
    await publish(amqp_url, *(notification_created(user) for user in users))
    await asyncio.gather(*(Frames(ws).events(1, timeout=120) for ws in connections))
    fan_out = time.perf_counter() - published
    log.info(
        "one event per user reached all %d connections in %.2fs (publish included)",
        args.connections,
        fan_out,
    )
    async with httpx.AsyncClient(timeout=10) as client:
        metrics = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    log.info(
        "server side: mean delivery lag %.3fs over %d frames; mean event handling %.4fs over %d events",
        *_mean(metrics, "realtime_delivery_lag_seconds"),
        *_mean(metrics, "event_handling_seconds"),
    )
    await asyncio.gather(*(ws.close() for ws in connections), return_exceptions=True)
    return {"open": len(connections), "per_kib": per, "fan_out": fan_out, "rss_mib": after / 1024}


def table(args: argparse.Namespace, figures: dict[str, float]) -> str:
    return "\n".join(
        [
            f"WebSockets on one realtime process ({args.connections:,} clients, {args.users:,} users)",
            "",
            "| figure | value | target |",
            "|---|---:|---:|",
            f"| connections held open | {figures['open']:,.0f} | 10,000 |",
            f"| memory per connection (KiB, RSS growth / connections) | {figures['per_kib']:.1f} "
            "| < 48.8 (50 KB) |",
            f"| server RSS with all open (MiB) | {figures['rss_mib']:.0f} | |",
            f"| one event per user reaching every connection (s, publish included) "
            f"| {figures['fan_out']:.2f} | |",
        ]
    )


def _mean(metrics: str, name: str) -> tuple[float, int]:
    """Mean and count of a histogram, summed over its label sets."""
    total = count = 0.0
    for line in metrics.splitlines():
        if line.startswith(name + "_sum"):
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith(name + "_count"):
            count += float(line.rsplit(" ", 1)[1])
    return (total / count if count else 0.0), int(count)


async def main(args: argparse.Namespace) -> None:
    admin = with_database(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL), f"bench_rt_{os.getpid()}")
    vhost = f"bench_rt_{os.getpid()}"
    amqp = os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)
    parts = urlsplit(amqp)
    amqp_url = urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), "", ""))
    await ensure_database(admin)
    await ensure_service_schema(admin, ServiceDatabase(SCHEMA, "realtime_svc", None))
    service_url = with_credentials(admin, "realtime_svc", None)
    await asyncio.to_thread(upgrade, migrations_dir(), service_url, SCHEMA)
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, parts.username or "guest", ".*", ".*", ".*")
    issuer = UsersStandIn()
    port = free_port()
    server: asyncio.subprocess.Process | None = None
    try:
        with issuer.serving():
            env = {
                **os.environ,
                "APP_ENV": "test",
                "DATABASE_URL": admin,
                "REALTIME_DATABASE_URL": service_url,
                "AMQP_URL": amqp_url,
                "REALTIME_USERS_URL": issuer.url,
                "REALTIME_PORT": str(port),
                "LOG_LEVEL": "WARNING",
            }
            server = await asyncio.create_subprocess_exec(sys.executable, "-m", "realtime", "serve", env=env)
            await wait_ready(f"http://127.0.0.1:{port}")
            figures = await measure(args, port, server.pid, amqp_url, issuer)
            sys.stdout.write(table(args, figures) + "\n")
    finally:
        if server is not None:
            server.terminate()
            await asyncio.wait_for(server.wait(), 60)
        rabbitmqctl("delete_vhost", vhost)
        await drop_database(admin)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--batch", type=int, default=200)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(main(parser.parse_args()))
