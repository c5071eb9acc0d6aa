"""Does a service's hand-written migration history build exactly the schema its models describe?"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from shared.db.engine import make_engine


async def schema_differences(service_url: str, metadata: MetaData, schema: str) -> list[Any]:
    """What Alembic's autogenerate would change to make the migrated ``schema`` match ``metadata``:
    tables, columns, types, server defaults, indexes and constraints; empty when they agree."""

    def ours(name: str | None, type_: str, parent_names: Any) -> bool:
        return type_ != "schema" or name == schema

    def not_alembic(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        return not (type_ == "table" and name == "alembic_version")

    def diff(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_schemas": True,
                "include_name": ours,
                "include_object": not_alembic,
            },
        )
        return list(compare_metadata(context, metadata))

    # Outside the schema's search path, so reflected tables carry their schema name like the models.
    engine = make_engine(service_url, schema="public")
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(diff)
    finally:
        await engine.dispose()
