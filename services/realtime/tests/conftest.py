"""Fixtures of the realtime service: its schema in the run's database, a token issuer, real servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from realtime.app import create_app
from realtime.cli import migrations_dir
from realtime.server import uvicorn_config
from realtime.settings import SCHEMA, Settings
from shared.db.bootstrap import ServiceDatabase, ensure_service_schema
from shared.db.migrations import upgrade
from shared.service.settings import with_credentials
from shared.testing.servers import bound_socket
from shared.testing.users import UsersStandIn
from shared.web.server import GracefulServer, lifecycle_of


@dataclass(frozen=True)
class RealtimeDb:
    admin_url: str
    service_url: str


def role_password(admin_url: str, value: str) -> str | None:
    """A password only where the server asks for one (a container); a trust-auth server needs none."""
    return value if urlsplit(admin_url).password else None


@pytest.fixture(scope="session")
async def realtime_db(test_database_url: str) -> RealtimeDb:
    password = role_password(test_database_url, "realtime-svc-test")
    await ensure_service_schema(test_database_url, ServiceDatabase(SCHEMA, "realtime_svc", password))
    service_url = with_credentials(test_database_url, "realtime_svc", password)
    # Alembic's env.py calls asyncio.run itself, so it runs off this loop.
    await asyncio.to_thread(upgrade, migrations_dir(), service_url, SCHEMA)
    return RealtimeDb(admin_url=test_database_url, service_url=service_url)


@pytest.fixture(scope="session")
def issuer() -> UsersStandIn:
    return UsersStandIn()


@pytest.fixture(scope="session")
def issuer_url(issuer: UsersStandIn) -> Iterator[str]:
    with issuer.serving():
        yield issuer.url


MakeSettings = Callable[..., Settings]


@pytest.fixture(scope="session")
def make_settings(realtime_db: RealtimeDb, test_amqp_url: str, issuer_url: str) -> MakeSettings:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "environment": "test",
            "database_url": realtime_db.admin_url,
            "service_url": realtime_db.service_url,
            "amqp_url": test_amqp_url,
            "users_url": issuer_url,
            "retry_delays": [0.2, 0.5],
            "db_pool_size": 5,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@dataclass(frozen=True)
class Server:
    app: FastAPI
    url: str
    server: uvicorn.Server

    def stop(self) -> None:
        """Begin the shutdown a SIGTERM begins (the ``serving`` block waits for its end)."""
        self.server.should_exit = True

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/ws"


async def wait_ready(url: str, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    last = "no answer"
    async with httpx.AsyncClient(timeout=2.0) as client:
        while asyncio.get_running_loop().time() < deadline:
            try:
                response = await client.get(url + "/readyz")
                if response.status_code == 200:
                    return
                last = response.text
            except httpx.HTTPError as exc:
                last = repr(exc)
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} not ready: {last}")


@asynccontextmanager
async def serving(settings: Settings, *, send_buffer: int | None = None) -> AsyncIterator[Server]:
    """The app under a real uvicorn server on this loop, configured as in production."""
    app = create_app(settings)
    sock = bound_socket(send_buffer=send_buffer)
    port = sock.getsockname()[1]
    config = uvicorn_config(app, settings, loop="asyncio", timeout_graceful_shutdown=3)
    server = GracefulServer(config, lifecycle=lifecycle_of(app))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_ready(url)
        yield Server(app, url, server)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
        sock.close()


RunServer = Callable[..., AbstractAsyncContextManager[Server]]


@pytest.fixture
def run_server(make_settings: MakeSettings) -> RunServer:
    """``async with run_server(**settings_overrides) as server``: a replica of one's own."""

    def run(send_buffer: int | None = None, **overrides: Any) -> AbstractAsyncContextManager[Server]:
        return serving(make_settings(**overrides), send_buffer=send_buffer)

    return run


@pytest.fixture(scope="package")
async def shared_server(make_settings: MakeSettings) -> AsyncIterator[Server]:
    """One replica for the tests that need nothing special (starting one takes a moment).

    Package scope: it stops when this package's tests are done, not at the end of the whole run.
    """
    async with serving(make_settings(ping_interval=0.5)) as server:
        yield server
