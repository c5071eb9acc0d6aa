"""pytest fixtures for real infrastructure: a throwaway database per run, a vhost per run.

Order of preference: ``TEST_DATABASE_URL`` / ``TEST_AMQP_URL`` (defaults: the local servers) when they
answer; otherwise containers through testcontainers when a Docker engine answers; otherwise the run
stops with one sentence that says what is missing.

The containers' images come from ``TEST_POSTGRES_IMAGE`` and ``TEST_RABBITMQ_IMAGE`` (defaults: the
official images), and ``TEST_DOCKER_NETWORK`` names a user-defined bridge network to attach them to
(made here if missing): an engine without a default bridge (``dockerd --bridge=none``) maps ports only
for containers on such a network.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika
import httpx
import pytest

from shared.db.bootstrap import (
    InfrastructureUnavailable,
    check_amqp,
    check_postgres,
    drop_database,
    ensure_database,
)
from shared.service.settings import DEFAULT_AMQP_URL, DEFAULT_DATABASE_URL, with_database
from shared.testing.tools import require_tool

DEFAULT_TEST_POSTGRES_IMAGE = "postgres:16-alpine"
DEFAULT_TEST_RABBITMQ_IMAGE = "rabbitmq:3.13-management-alpine"
MANAGEMENT_PORT = 15672


@dataclass(frozen=True)
class Infra:
    database_url: str  # an admin URL on the server; tests make their own databases
    amqp_url: str
    # The broker's management API (with credentials) when it is a container: vhosts are made through it.
    # None for the local broker, which is managed with the host's rabbitmqctl.
    amqp_management_url: str | None


def _docker_available() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        return subprocess.run([docker, "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _reachable_postgres(url: str) -> bool:
    try:
        asyncio.run(check_postgres(with_database(url, "postgres")))
    except InfrastructureUnavailable:
        return False
    return True


def _reachable_amqp(url: str) -> bool:
    try:
        check_amqp(url)
    except InfrastructureUnavailable:
        return False
    return True


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    db_url = os.environ.get("TEST_DATABASE_URL", DEFAULT_DATABASE_URL)
    amqp_url = os.environ.get("TEST_AMQP_URL", DEFAULT_AMQP_URL)
    containers: list[object] = []
    management_url: str | None = None
    db_ok, amqp_ok = _reachable_postgres(db_url), _reachable_amqp(amqp_url)
    if not (db_ok and amqp_ok):
        if not _docker_available():
            missing = " and ".join(
                name
                for name, ok in (
                    (f"PostgreSQL at {urlsplit(db_url).netloc.split('@')[-1]}", db_ok),
                    (f"RabbitMQ at {urlsplit(amqp_url).netloc.split('@')[-1]}", amqp_ok),
                )
                if not ok
            )
            pytest.exit(
                f"The tests need a real {missing}, which did not answer, and no Docker engine is "
                "available for testcontainers. Start them (`make infra` with Docker) or set "
                "TEST_DATABASE_URL / TEST_AMQP_URL.",
                returncode=3,
            )
        if not db_ok:
            pg = _postgres_container().start()
            containers.append(pg)
            db_url = pg.get_connection_url()
        if not amqp_ok:
            rmq = _rabbitmq_container().start()
            containers.append(rmq)
            host = rmq.get_container_host_ip()
            amqp_url = f"amqp://guest:guest@{host}:{rmq.get_exposed_port(5672)}/"
            management_url = f"http://guest:guest@{host}:{rmq.get_exposed_port(MANAGEMENT_PORT)}"
    try:
        yield Infra(database_url=db_url, amqp_url=amqp_url, amqp_management_url=management_url)
    finally:
        for container in containers:
            container.stop()  # type: ignore[attr-defined]


def _docker_network() -> str | None:
    """``TEST_DOCKER_NETWORK``, created as a bridge network when it does not exist yet."""
    name = os.environ.get("TEST_DOCKER_NETWORK") or None
    if name is not None:
        import docker  # type: ignore[import-untyped]  # testcontainers brings it

        client = docker.from_env()
        try:
            # The engine's name filter matches substrings: compare the names exactly.
            if name not in {network.name for network in client.networks.list(names=[name])}:
                client.networks.create(name, driver="bridge")
        finally:
            client.close()
    return name


def _postgres_container() -> Any:
    from testcontainers.community.postgres import PostgresContainer

    image = os.environ.get("TEST_POSTGRES_IMAGE") or DEFAULT_TEST_POSTGRES_IMAGE
    container = PostgresContainer(image, driver=None)
    if network := _docker_network():
        container.with_kwargs(network=network)
    return container


def _rabbitmq_container() -> Any:
    from testcontainers.community.rabbitmq import RabbitMqContainer

    image = os.environ.get("TEST_RABBITMQ_IMAGE") or DEFAULT_TEST_RABBITMQ_IMAGE
    container = RabbitMqContainer(image).with_exposed_ports(MANAGEMENT_PORT)
    if network := _docker_network():
        container.with_kwargs(network=network)
    return container


@pytest.fixture(scope="session")
def test_database_url(infra: Infra) -> Iterator[str]:
    """An admin URL for a database that exists for this test run only."""
    url = with_database(infra.database_url, f"test_{os.getpid()}_{uuid.uuid4().hex[:8]}")
    asyncio.run(ensure_database(url))
    try:
        yield url
    finally:
        asyncio.run(drop_database(url))


def vhost_url(amqp_url: str, vhost: str) -> str:
    parts = urlsplit(amqp_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), "", ""))


@pytest.fixture(scope="session")
def test_amqp_url(infra: Infra) -> Iterator[str]:
    """A RabbitMQ vhost that exists for this test run only."""
    yield from own_vhost(infra)


def own_vhost(infra: Infra) -> Iterator[str]:
    """A vhost of its own on the test broker, removed afterwards.

    A container broker is managed through its own management API; the host's rabbitmqctl would talk
    to the machine's broker instead. The local broker (no management plugin needed) gets rabbitmqctl.
    """
    vhost = f"test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    user = urlsplit(infra.amqp_url).username or "guest"
    if infra.amqp_management_url is not None:
        with _management_client(infra.amqp_management_url) as api:
            path = quote(vhost, safe="")
            api.put(f"/api/vhosts/{path}").raise_for_status()
            permissions = {"configure": ".*", "write": ".*", "read": ".*"}
            api.put(f"/api/permissions/{path}/{quote(user, safe='')}", json=permissions).raise_for_status()
            try:
                yield vhost_url(infra.amqp_url, vhost)
            finally:
                api.delete(f"/api/vhosts/{path}")
        return
    ctl = require_tool("rabbitmqctl")
    subprocess.run([ctl, "add_vhost", vhost], check=True, capture_output=True, timeout=60)
    subprocess.run(
        [ctl, "set_permissions", "-p", vhost, user, ".*", ".*", ".*"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    try:
        yield vhost_url(infra.amqp_url, vhost)
    finally:
        subprocess.run([ctl, "delete_vhost", vhost], capture_output=True, timeout=60)


def _management_client(url: str) -> httpx.Client:
    parts = urlsplit(url)
    base = urlunsplit((parts.scheme, f"{parts.hostname}:{parts.port}", "", "", ""))
    auth = (parts.username or "guest", parts.password or "guest")
    return httpx.Client(base_url=base, auth=auth, timeout=30.0)


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield client


async def queue_depth(amqp_url: str, name: str) -> int:
    """Messages ready in queue ``name`` (not those delivered and not yet acked)."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        return int(queue.declaration_result.message_count or 0)
    finally:
        await connection.close()
