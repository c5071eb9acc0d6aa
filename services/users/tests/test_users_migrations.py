"""The hand-written migration and the ORM models describe the same schema."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from shared.db.engine import make_engine
from users.database import Base, load_models

pytestmark = pytest.mark.integration


def _ours(name: str | None, type_: str, parent_names: Any) -> bool:
    return type_ != "schema" or name == "users"


def _not_alembic(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return not (type_ == "table" and name == "alembic_version")


async def test_models_match_the_migrated_schema(users_db: Any) -> None:
    load_models()
    # Outside the schema's search path, so reflected tables carry their schema name like the models.
    engine = make_engine(users_db.service_url, schema="public")

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
