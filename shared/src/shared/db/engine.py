"""Async SQLAlchemy engines and sessions: one engine per service, its tables in its own schema."""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData, event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from shared.service.settings import asyncpg_url

# Explicit constraint names, so migrations and error handling can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def schema_metadata(schema: str) -> MetaData:
    """Metadata for a service's tables, all inside its own schema."""
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


# Seconds a request waits for a free pooled connection before it is answered 503 (shared.web.problems):
# under the gateway's 10 s upstream timeout, so the client gets the service's Retry-After, not a 504.
POOL_TIMEOUT = 8.0


def make_engine(
    url: str, *, schema: str, pool_size: int = 10, pool_timeout: float = POOL_TIMEOUT, echo: bool = False
) -> AsyncEngine:
    """An engine whose connections are kept, not churned, and not pinged on every checkout.

    At most ``pool_size`` connections, all of them kept once opened (they are opened only when
    needed). Before, 10 were kept plus 10 "overflow" ones, which SQLAlchemy closes as soon as they
    are returned: under a concurrency just above 10 every few requests paid for a new connection (a
    Postgres backend fork, authentication, asyncpg's type set-up); under the orders bench most of
    orders' connections were younger than two seconds. A request beyond ``pool_size`` now waits for
    a connection instead; the hot paths hold one for a single statement. Keeping 20 instead filled
    both pools under the bench and, with a few stacks on one Postgres, used up its 100 slots.

    No ``pool_pre_ping``: with asyncpg it costs three round trips per checkout (BEGIN, a query,
    ROLLBACK), most of a simple request's database time. ``_drop_closed`` catches what a ping is for,
    a connection the server or the network ended while it sat in the pool, without a round trip: the
    driver has seen that socket close. A connection that breaks otherwise fails its statement once;
    SQLAlchemy then recognises the disconnect and replaces every pooled connection.
    """
    engine = create_async_engine(
        asyncpg_url(url),
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=pool_timeout,
        pool_recycle=1800,
        echo=echo,
        connect_args={
            "server_settings": {"search_path": schema, "application_name": schema},
            "timeout": 5,
            "command_timeout": 30,
        },
    )
    event.listen(engine.sync_engine, "checkout", _drop_closed)
    return engine


def _drop_closed(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Refuse a pooled connection whose socket is already closed; the pool then opens a fresh one."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the pooled connection was closed")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
