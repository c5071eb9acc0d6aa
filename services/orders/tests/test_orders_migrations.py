"""The hand-written migration and the ORM models describe the same schema, owned by the service role."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from orders.database import Base, load_models
from shared.db.engine import make_engine

pytestmark = pytest.mark.integration


def _ours(name: str | None, type_: str, parent_names: Any) -> bool:
    return type_ != "schema" or name == "orders"


def _not_alembic(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return not (type_ == "table" and name == "alembic_version")


async def test_models_match_the_migrated_schema(orders_db: Any) -> None:
    load_models()
    # Outside the schema's search path, so reflected tables carry their schema name like the models.
    engine = make_engine(orders_db.service_url, schema="public")

    def diff(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_schemas": True,
                "include_name": _ours,
                "include_object": _not_alembic,
            },
        )
        return list(compare_metadata(context, Base.metadata))

    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(diff)
    finally:
        await engine.dispose()
    assert differences == [], "\n".join(map(str, differences))


async def test_the_tables_and_the_version_table_belong_to_the_service_role(orders_db: Any) -> None:
    conn = await asyncpg.connect(orders_db.admin_url)
    try:
        rows = await conn.fetch("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'orders'")
    finally:
        await conn.close()
    owners = {row["tablename"]: row["tableowner"] for row in rows}
    assert set(owners) == {
        "orders",
        "order_items",
        "idempotency_keys",
        "outbox",
        "inbox",
        "jobs",
        "job_runs",
        "alembic_version",
    }
    assert set(owners.values()) == {"orders_svc"}
