"""The faults a dashboards run stages, each one as operations meet it, and each confined to the run's
own processes, database and vhost."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import asyncpg

from shared.devstack import Stack

log = logging.getLogger("bench.dashboards.incidents")


@dataclass(frozen=True)
class Incident:
    share: float  # when, as a share of the run (0.5: half-way)
    name: str
    happen: Callable[[], Awaitable[None]]


def component_outage(stack: Stack, name: str, seconds: float) -> Callable[[], Awaitable[None]]:
    """``name`` stopped (SIGTERM) for ``seconds``, then started again; done once it is ready."""

    async def happen() -> None:
        stopped = time.monotonic()
        await asyncio.to_thread(stack.stop, name)
        await asyncio.sleep(seconds)  # the outage itself: how long the component is away
        await asyncio.to_thread(stack.start, name)
        await asyncio.to_thread(stack.wait_ready, name, 60)
        log.info(f"{name} is ready again, {time.monotonic() - stopped:.0f} s after it was stopped")

    return happen


def broker_outage(amqp_url: str, seconds: float) -> Callable[[], Awaitable[None]]:
    """RabbitMQ, for the run's vhost only, closes every connection and refuses new ones for ``seconds``
    (the user's permissions on the vhost taken away, then given back), as during a broker restart."""
    parts = urlsplit(amqp_url)
    vhost = unquote(parts.path.removeprefix("/")) or "/"
    user = parts.username or "guest"
    ctl = shutil.which("rabbitmqctl")

    async def happen() -> None:
        if ctl is None:
            raise RuntimeError("rabbitmqctl is needed for the broker outage")

        def run(*args: str) -> None:
            subprocess.run([ctl, *args], check=True, capture_output=True, timeout=60)

        await asyncio.to_thread(run, "clear_permissions", "-p", vhost, user)
        refused = time.monotonic()
        try:
            await asyncio.to_thread(
                run, "close_all_connections", "--vhost", vhost, "dashboards bench: broker outage"
            )
            await asyncio.sleep(seconds)  # the outage itself
        finally:
            await asyncio.to_thread(run, "set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        log.info(f"the broker accepts the run's connections again, {time.monotonic() - refused:.0f} s later")

    return happen


def postgres_ends_listeners(database_url: str) -> Callable[[], Awaitable[None]]:
    """Postgres ends realtime's LISTEN connections in the run's database (pg_terminate_backend)."""

    async def happen() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            ended = await conn.fetchval(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name LIKE 'realtime-listener-%'"
            )
        finally:
            await conn.close()
        if not ended:
            raise RuntimeError("realtime had no LISTEN connection to end")

    return happen
