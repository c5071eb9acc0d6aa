"""The notification jobs: the daily report reaches every admin's mailbox with the right figures."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, time, timedelta

import httpx
import pytest

from notification import jobs
from notification.contacts.directory import UsersDirectory
from shared.jobs.scheduler import Scheduler
from shared.messaging.events import (
    OrderCreated,
    OrderCreatedData,
    OrderStatusChanged,
    OrderStatusChangedData,
    UserRegistered,
    UserRegisteredData,
)
from shared.testing.clock import FakeClock
from shared.testing.users import SERVICE_TOKEN, UsersStandIn
from shared.testing.waits import eventually

from .conftest import Bus, Database, Service
from .mailserver import MailServer
from .test_notification_events import welcome_email

pytestmark = pytest.mark.integration


def registered(email: str, occurred_at: datetime) -> UserRegistered:
    data = UserRegisteredData(user_id=uuid.uuid4(), email=email, full_name="Someone")
    return UserRegistered(data=data, occurred_at=occurred_at)


def created(occurred_at: datetime) -> OrderCreated:
    data = OrderCreatedData(
        order_id=uuid.uuid4(), user_id=uuid.uuid4(), status="pending", currency="EUR", total_cents=0, items=[]
    )
    return OrderCreated(data=data, occurred_at=occurred_at)


def changed(to_status: str, occurred_at: datetime) -> OrderStatusChanged:
    data = OrderStatusChangedData(
        order_id=uuid.uuid4(), user_id=uuid.uuid4(), from_status="pending", to_status=to_status, reason="user"
    )
    return OrderStatusChanged(data=data, occurred_at=occurred_at)


@asynccontextmanager
async def report_scheduler(service: Service, users: UsersStandIn, now: datetime) -> AsyncIterator[Scheduler]:
    """The service's jobs on a clock of the test's: "now" is the next day at 08:00."""
    async with httpx.AsyncClient() as http:
        yield jobs.scheduler(
            service.resources.engine,
            service.resources.sessions,
            UsersDirectory(http, users.url, SERVICE_TOKEN, 2.0),
            clock=FakeClock(now),
        )


async def test_the_daily_report_mails_each_admin_the_previous_days_figures(
    service: Service, bus: Bus, db: Database, smtp: MailServer, users: UsersStandIn
) -> None:
    today = datetime.now(UTC).date()
    midday = datetime.combine(today, time(12), tzinfo=UTC)
    day_before = midday - timedelta(days=1)
    users.add_user("root@example.test", "Root Admin", admin=True)
    users.add_user("second@example.test", "Second Admin", admin=True)
    users.add_user("retired@example.test", "Retired Admin", admin=True, active=False)
    users.add_user("customer@example.test", "Customer")

    events = [
        registered("alice@example.test", midday),
        registered("bob@refused.invalid", midday),  # its welcome e-mail fails for good
        registered("old@example.test", day_before),  # another day: not in the report
        created(midday),
        created(midday),
        created(midday),
        changed("paid", midday),
        changed("paid", midday),
        changed("cancelled", midday),
        changed("shipped", day_before),
    ]
    # The welcome e-mails: the verification e-mails users asks for beside each registration.
    mails = [welcome_email(event) for event in events[:3] if isinstance(event, UserRegistered)]
    for event in [*events, *mails]:
        await bus.publish(event)
    # Delivered twice, as at-least-once delivery may: counted once.
    await bus.publish(events[3])
    await eventually(lambda: db.count("inbox"), equals=len(events) + len(mails), timeout=20)
    await eventually(lambda: db.count("emails", "status = 'pending'"), equals=0, timeout=20)

    tomorrow_8am = datetime.combine(today + timedelta(days=1), time(8), tzinfo=UTC)
    async with report_scheduler(service, users, tomorrow_8am) as scheduler:
        run = await scheduler.run_here("daily-report")
        assert run is not None
        assert (run.status, run.detail) == ("succeeded", f"report of {today}: 2 e-mails queued for 2 admins")
        [root] = await eventually(lambda: smtp.to("root@example.test"), timeout=20)
        [second] = await eventually(lambda: smtp.to("second@example.test"), timeout=20)
        again = await scheduler.run_here("daily-report")
        assert again is not None
        assert again.detail == f"report of {today}: 0 e-mails queued for 2 admins"

    assert root["Subject"] == f"Daily report for {today}"
    body = root.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    for line in (
        "Users registered: 2",
        "Orders created: 3",
        "Orders paid: 2",
        "Orders shipped: 0",
        "Orders delivered: 0",
        "Orders cancelled: 1",
        "E-mails sent: 2",  # the welcomes of alice and old@ (sent today, whatever their event's day)
        "E-mails failed: 1",
    ):
        assert line in text.splitlines(), text
    assert "Hello Second Admin" in (second.get_body(("plain",)) or root).get_content()
    assert smtp.to("retired@example.test") == []
    assert smtp.to("customer@example.test") == []
