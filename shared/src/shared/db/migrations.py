"""Alembic glue: each service keeps its own history, its version table inside its own schema.

A migration runs under a PostgreSQL advisory lock named after the schema, so replicas that start
together (an init container in every pod of a new version) migrate once: the first applies the new
revisions, the others wait for it and then find the schema at head.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.service.settings import asyncpg_url


def alembic_config(script_location: Path, url: str, schema: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", asyncpg_url(url).replace("%", "%%"))
    config.set_main_option("version_table_schema", schema)
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    return config


def upgrade(script_location: Path, url: str, schema: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(script_location, url, schema), revision)


def migration_lock_key(schema: str) -> str:
    """The advisory lock's name (``hashtext`` of it is the key): one per schema, so services migrate
    side by side while the replicas of one service take turns."""
    return f"alembic-migrate:{schema}"


def run_env(metadata: MetaData) -> None:
    """Body of a service's ``migrations/env.py``: online, async, schema-scoped."""
    config = context.config
    schema = config.get_main_option("version_table_schema") or metadata.schema
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url must be set"

    def do_run(connection: Connection) -> None:
        # A session lock, held across alembic's own transaction and released on the way out (or when
        # the connection drops, should the process die): concurrent runs queue behind it.
        key = {"key": migration_lock_key(schema or "public")}
        connection.execute(text("SELECT pg_advisory_lock(hashtext(:key))"), key)
        connection.commit()
        try:
            context.configure(
                connection=connection,
                target_metadata=metadata,
                version_table_schema=schema,
                include_schemas=False,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(hashtext(:key))"), key)
            connection.commit()

    async def run() -> None:
        engine = create_async_engine(
            url,
            poolclass=pool.NullPool,
            connect_args={"server_settings": {"search_path": schema or "public"}},
        )
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
        await engine.dispose()

    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, version_table_schema=schema, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(run())
