"""user.deleted: nothing of the user is left here, whatever arrives about them afterwards."""

from __future__ import annotations

import uuid

import pytest

from shared.messaging.events import UserDeleted, UserDeletedData
from shared.testing.users import UsersStandIn
from shared.testing.waits import eventually

from .conftest import Bus, Database, Service
from .test_notification_events import (
    consumed,
    order_created,
    registered,
    sign_up,
    status_changed,
)

pytestmark = pytest.mark.integration


async def _holdings(db: Database, user_id: uuid.UUID) -> dict[str, int]:
    return {
        table: await db.count(table, "user_id = $1", user_id)
        for table in ("notifications", "contacts", "emails")
    }


async def test_user_deleted_erases_notifications_contact_and_emails_once(
    service: Service, bus: Bus, db: Database, users: UsersStandIn
) -> None:
    user = registered("leaving@example.com")
    user_id = user.data.user_id
    other = registered("staying@example.com")
    await sign_up(bus, user)
    await sign_up(bus, other)
    await bus.publish(order_created(user_id))
    await eventually(lambda: db.count("notifications", "user_id = $1", user_id), equals=2)
    await eventually(lambda: db.count("emails", "user_id = $1", user_id))
    await eventually(lambda: db.count("notifications", "user_id = $1", other.data.user_id))

    deleted = UserDeleted(data=UserDeletedData(user_id=user_id))
    await bus.publish(deleted, times=2)
    await eventually(lambda: consumed(service, "user.deleted", "handled"))
    assert await _holdings(db, user_id) == {"notifications": 0, "contacts": 0, "emails": 0}
    # Someone else's rows are untouched.
    assert await db.count("notifications", "user_id = $1", other.data.user_id) == 1
    assert await db.count("contacts", "user_id = $1", other.data.user_id) == 1

    # What the erasure itself causes (orders cancels the open orders) and late deliveries store nothing.
    cancelled = status_changed(user_id, "cancelled")
    late_signup = registered("leaving@example.com")
    late_signup = late_signup.model_copy(
        update={"data": late_signup.data.model_copy(update={"user_id": user_id})}
    )
    await bus.publish(cancelled)
    await sign_up(bus, late_signup)
    await eventually(lambda: consumed(service, "order.status_changed", "handled"))
    await eventually(lambda: consumed(service, "user.registered", "handled"), equals=3.0)
    await eventually(lambda: consumed(service, "account.email_requested", "handled"), equals=3.0)
    assert await _holdings(db, user_id) == {"notifications": 0, "contacts": 0, "emails": 0}


async def test_user_deleted_of_an_unknown_user_is_handled(service: Service, bus: Bus, db: Database) -> None:
    await bus.publish(UserDeleted(data=UserDeletedData(user_id=uuid.uuid4())))
    await eventually(lambda: consumed(service, "user.deleted", "handled"))
    assert await db.count("erased_users") == 1
