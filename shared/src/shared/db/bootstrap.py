"""Database bootstrap for development and tests: the database, one role and one schema per service.

In production a DBA (or the CloudNativePG operator) owns this step; services only run their migrations.
"""

from __future__ import annotations

import logging
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import asyncpg

from shared.service.settings import database_name, with_database

log = logging.getLogger(__name__)

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class InfrastructureUnavailable(RuntimeError):
    """Postgres or RabbitMQ cannot be reached; the message says which and what to do."""


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a safe identifier: {name!r}")
    return f'"{name}"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or '127.0.0.1'}:{parts.port or 5432}"


@dataclass(frozen=True)
class ServiceDatabase:
    schema: str
    role: str
    password: str | None


async def _connect(url: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"), timeout=5)
    except (TimeoutError, OSError) as exc:
        raise InfrastructureUnavailable(
            f"PostgreSQL is not reachable at {_where(url)} ({exc.__class__.__name__}: {exc}). "
            "Start it (for example `make infra`, which runs it in Docker) or set DATABASE_URL."
        ) from exc


async def ensure_database(admin_url: str) -> bool:
    """Create the database named in ``admin_url`` if it is missing; True when it was created."""
    name = database_name(admin_url)
    conn = await _connect(with_database(admin_url, "postgres"))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        try:
            await conn.execute(f"CREATE DATABASE {_ident(name)}")
        except asyncpg.DuplicateDatabaseError:
            return False
        log.info("created database", extra={"database": name})
        return True
    finally:
        await conn.close()


async def ensure_service_schema(admin_url: str, service: ServiceDatabase) -> None:
    """Create the service's login role and a schema it owns; nobody else gets any privilege on it."""
    try:
        await _ensure_service_schema(admin_url, service)
    except (asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
        # Roles are cluster-wide: a bootstrap of another database created it at the same moment.
        await _ensure_service_schema(admin_url, service)


async def _ensure_service_schema(admin_url: str, service: ServiceDatabase) -> None:
    conn = await _connect(admin_url)
    role, schema = _ident(service.role), _ident(service.schema)
    try:
        # Concurrent bootstraps (several test processes) race on catalog rows; one lock serialises them.
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(727274)")
            exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", service.role)
            password = f" PASSWORD {_literal(service.password)}" if service.password else ""
            verb = "ALTER" if exists else "CREATE"
            await conn.execute(
                f"{verb} ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT{password}"
            )
            db = _ident(database_name(admin_url))
            await conn.execute(f"REVOKE ALL ON DATABASE {db} FROM PUBLIC")
            await conn.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {role}")
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role}")
            await conn.execute(f"ALTER SCHEMA {schema} OWNER TO {role}")
            await conn.execute(f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC")
            await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
    finally:
        await conn.close()


async def bootstrap(admin_url: str, services: list[ServiceDatabase]) -> None:
    await ensure_database(admin_url)
    for service in services:
        await ensure_service_schema(admin_url, service)


async def drop_database(admin_url: str) -> None:
    name = database_name(admin_url)
    conn = await _connect(with_database(admin_url, "postgres"))
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)")
    finally:
        await conn.close()


async def check_postgres(url: str) -> None:
    conn = await _connect(url)
    await conn.close()


def check_amqp(url: str, timeout: float = 3.0) -> None:
    """A TCP check of the broker: enough to tell 'not running' apart from everything else."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5672
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except OSError as exc:
        raise InfrastructureUnavailable(
            f"RabbitMQ is not reachable at {host}:{port} ({exc.__class__.__name__}: {exc}). "
            "Start it (for example `make infra`, which runs it in Docker) or set AMQP_URL."
        ) from exc
