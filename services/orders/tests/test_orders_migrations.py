"""The hand-written migration and the ORM models describe the same schema, owned by the service role."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from orders.database import Base, load_models
from shared.testing.migrations import schema_differences

pytestmark = pytest.mark.integration


async def test_models_match_the_migrated_schema(orders_db: Any) -> None:
    load_models()
    differences = await schema_differences(orders_db.service_url, Base.metadata, "orders")
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
