"""The hand-written migrations and the table definitions (streams, rooms, leases, jobs) agree."""

from __future__ import annotations

import pytest

import realtime.rooms.models  # noqa: F401 - registers the rooms tables on the schema's metadata
from realtime.settings import SCHEMA
from realtime.streams.models import METADATA
from shared.testing.migrations import schema_differences

from .conftest import RealtimeDb

pytestmark = pytest.mark.integration


async def test_models_match_the_migrated_schema(realtime_db: RealtimeDb) -> None:
    differences = await schema_differences(realtime_db.service_url, METADATA, SCHEMA)
    assert differences == [], "\n".join(map(str, differences))
