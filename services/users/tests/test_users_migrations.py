"""The hand-written migration and the ORM models describe the same schema."""

from __future__ import annotations

from typing import Any

import pytest

from shared.testing.migrations import schema_differences
from users.database import Base, load_models

pytestmark = pytest.mark.integration


async def test_models_match_the_migrated_schema(users_db: Any) -> None:
    load_models()
    differences = await schema_differences(users_db.service_url, Base.metadata, "users")
    assert differences == [], "\n".join(map(str, differences))
