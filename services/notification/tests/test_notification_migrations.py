"""The hand-written migration and the models (outbox and inbox included) describe the same schema."""

from __future__ import annotations

import pytest

from notification.database import Base, load_models
from shared.testing.migrations import schema_differences

from .conftest import NotificationDb

pytestmark = pytest.mark.integration


async def test_models_match_the_migrated_schema(notification_db: NotificationDb) -> None:
    load_models()
    differences = await schema_differences(notification_db.service_url, Base.metadata, "notification")
    assert differences == [], "\n".join(map(str, differences))
