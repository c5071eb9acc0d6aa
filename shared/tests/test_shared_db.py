"""Each service's role owns its schema and cannot read another's; the unit of work commits or not."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy import Column, Integer, String, Table, select, text

from shared.db.bootstrap import ServiceDatabase, _connect, ensure_service_schema
from shared.db.engine import make_engine, make_sessionmaker, schema_metadata
from shared.db.pagination import Cursor
from shared.db.unit_of_work import UnitOfWork, unit_of_work
from shared.errors import ValidationFailed
from shared.service.settings import with_credentials

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def two_services(test_database_url: str) -> AsyncIterator[tuple[ServiceDatabase, ServiceDatabase]]:
    tag = uuid.uuid4().hex[:6]
    alpha = ServiceDatabase(schema=f"alpha_{tag}", role=f"alpha_{tag}_svc", password=None)
    beta = ServiceDatabase(schema=f"beta_{tag}", role=f"beta_{tag}_svc", password=None)
    for service in (alpha, beta):
        await ensure_service_schema(test_database_url, service)
    yield alpha, beta
    conn = await _connect(test_database_url)
    try:
        for service in (alpha, beta):
            await conn.execute(f'DROP OWNED BY "{service.role}" CASCADE')
            await conn.execute(f'DROP ROLE "{service.role}"')
    finally:
        await conn.close()


async def test_a_service_role_cannot_read_another_services_tables(
    test_database_url: str, two_services: tuple[ServiceDatabase, ServiceDatabase]
) -> None:
    alpha, beta = two_services
    as_alpha = await asyncpg.connect(with_credentials(test_database_url, alpha.role, None))
    as_beta = await asyncpg.connect(with_credentials(test_database_url, beta.role, None))
    try:
        await as_alpha.execute(f'CREATE TABLE "{alpha.schema}".secrets (v text)')
        await as_alpha.execute(f"INSERT INTO \"{alpha.schema}\".secrets VALUES ('alpha only')")
        assert await as_alpha.fetchval(f'SELECT v FROM "{alpha.schema}".secrets') == "alpha only"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await as_beta.fetch(f'SELECT * FROM "{alpha.schema}".secrets')
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await as_beta.execute(f'CREATE TABLE "{alpha.schema}".intruder (v text)')
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await as_beta.execute("CREATE TABLE public.intruder (v text)")
    finally:
        await as_alpha.close()
        await as_beta.close()


async def test_bootstrap_is_idempotent(
    test_database_url: str, two_services: tuple[ServiceDatabase, ServiceDatabase]
) -> None:
    alpha, _ = two_services
    await ensure_service_schema(test_database_url, alpha)
    await ensure_service_schema(test_database_url, alpha)


async def test_unit_of_work_commits_on_success_and_rolls_back_on_error(
    test_database_url: str, two_services: tuple[ServiceDatabase, ServiceDatabase]
) -> None:
    alpha, _ = two_services
    metadata = schema_metadata(alpha.schema)
    notes = Table("notes", metadata, Column("id", Integer, primary_key=True), Column("text", String))
    engine = make_engine(with_credentials(test_database_url, alpha.role, None), schema=alpha.schema)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        sessions = make_sessionmaker(engine)
        ran: list[str] = []

        async def hook() -> None:
            ran.append("after")

        async with unit_of_work(sessions) as uow:
            await uow.session.execute(notes.insert().values(id=1, text="kept"))
            uow.after_commit(hook)
        assert ran == ["after"]

        with pytest.raises(RuntimeError):
            async with unit_of_work(sessions) as uow:
                await uow.session.execute(notes.insert().values(id=2, text="lost"))
                uow.after_commit(hook)
                raise RuntimeError("handler failed")
        assert ran == ["after"]

        async with sessions() as session:
            rows = (await session.execute(select(notes.c.text))).scalars().all()
        assert rows == ["kept"]

        # Before-commit hooks write inside the transaction: with it, or (on a failure) not at all.
        async def write_collected(uow: UnitOfWork, note_id: int) -> None:
            await uow.session.execute(notes.insert().values(id=note_id, text="collected"))

        async with unit_of_work(sessions) as uow:  # nothing else done: the hook alone commits
            uow.before_commit(functools.partial(write_collected, uow, 3))
        with pytest.raises(RuntimeError):
            async with unit_of_work(sessions) as uow:
                uow.before_commit(functools.partial(write_collected, uow, 4))
                raise RuntimeError("handler failed")
        async with sessions() as session:
            ids = (await session.execute(select(notes.c.id).order_by(notes.c.id))).scalars().all()
        assert ids == [1, 3]
    finally:
        await engine.dispose()


async def test_a_pooled_connection_the_server_ended_is_replaced_without_an_error(
    test_database_url: str, two_services: tuple[ServiceDatabase, ServiceDatabase]
) -> None:
    """No ping per checkout, yet a connection terminated while it sat in the pool (a database
    restart, an operator's pg_terminate_backend) costs the next request nothing."""
    alpha, _ = two_services
    engine = make_engine(
        with_credentials(test_database_url, alpha.role, None), schema=alpha.schema, pool_size=1
    )
    admin = await _connect(test_database_url)
    try:
        async with engine.connect() as conn:
            first = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", first)
        for _ in range(50):  # the driver notices the closed socket as soon as the loop runs
            await asyncio.sleep(0.02)
            if not await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", first):
                break
        await asyncio.sleep(0.05)
        async with engine.connect() as conn:
            second = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert second != first
    finally:
        await admin.close()
        await engine.dispose()


def test_cursor_round_trip_and_rejection() -> None:
    cursor = Cursor(created_at=datetime(2026, 11, 22, 10, 0, tzinfo=UTC), id=uuid.uuid4())
    assert Cursor.decode(cursor.encode()) == cursor
    for bad in ("%%%", "bm90LWpzb24", cursor.encode()[:-3]):
        with pytest.raises(ValidationFailed):
            Cursor.decode(bad)
