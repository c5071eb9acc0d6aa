"""The e-mail sender against a real SMTP server that goes down, comes back, or refuses."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from shared.messaging.events import UserRegistered, UserRegisteredData
from shared.testing.waits import eventually

from .conftest import Bus, Database, RunService, Service
from .mailserver import MailServer
from .test_notification_events import sign_up

pytestmark = pytest.mark.integration


async def sign_up_as(bus: Bus, email: str) -> None:
    """A registration with its welcome e-mail (the verification e-mail users asks for)."""
    await sign_up(
        bus, UserRegistered(data=UserRegisteredData(user_id=uuid.uuid4(), email=email, full_name="Ada"))
    )


def metric(service: Service, name: str, **labels: str) -> float:
    return service.app.state.registry.get_sample_value(name, labels) or 0.0


async def test_an_smtp_outage_delays_the_email_without_losing_it(
    service: Service, bus: Bus, db: Database, smtp: MailServer
) -> None:
    await smtp.stop()
    await sign_up_as(bus, "ada@example.com")
    # The in-app side does not wait for the mail server.
    await eventually(lambda: db.count("notifications"))
    await eventually(lambda: db.count("emails", "status = 'pending' AND attempts >= 3"), message="no retries")
    await eventually(lambda: metric(service, "emails_pending") == 1)
    [row] = await db.fetch("SELECT last_error FROM notification.emails")
    assert row["last_error"]

    await smtp.start()
    [mail] = await eventually(lambda: smtp.to("ada@example.com"))
    assert mail["Subject"] == "Welcome aboard"
    await eventually(lambda: db.count("emails", "status = 'sent'"))
    attempts = await db.fetch("SELECT attempt, outcome FROM notification.email_attempts ORDER BY attempt")
    assert [a["outcome"] for a in attempts][-1] == "sent"
    assert {a["outcome"] for a in attempts[:-1]} == {"failed"}
    assert [a["attempt"] for a in attempts] == list(range(1, len(attempts) + 1))
    assert metric(service, "emails_sent_total", template="welcome") == 1
    assert metric(service, "email_attempt_failures_total", kind="transient") == len(attempts) - 1


async def test_an_email_is_recorded_as_failed_after_its_last_attempt(
    run_service: RunService, bus: Bus, db: Database, smtp: MailServer
) -> None:
    await smtp.stop()
    async with run_service(email_max_attempts=3) as service:
        await sign_up_as(bus, "ada@example.com")
        await eventually(lambda: db.count("emails", "status = 'failed'"))
        [row] = await db.fetch("SELECT attempts, last_error FROM notification.emails")
        assert row["attempts"] == 3
        assert await db.count("email_attempts", "outcome = 'failed'") == 3
        assert metric(service, "emails_failed_total", template="welcome") == 1
        await smtp.start()
        # Given up means given up: the server's return does not bring it back.
        await asyncio.sleep(0.3)
        assert smtp.messages == []


async def test_a_recipient_refused_for_good_is_not_retried(
    service: Service, bus: Bus, db: Database, smtp: MailServer
) -> None:
    await sign_up_as(bus, "nobody@refused.invalid")
    await eventually(lambda: db.count("emails", "status = 'failed'"))
    [row] = await db.fetch("SELECT attempts, last_error FROM notification.emails")
    assert row["attempts"] == 1
    assert "550" in row["last_error"]
    assert metric(service, "email_attempt_failures_total", kind="permanent") == 1


async def test_two_senders_never_send_one_email_twice(
    run_service: RunService, bus: Bus, db: Database, smtp: MailServer
) -> None:
    # Two replicas of the service share the table; SKIP LOCKED claims keep them apart.
    await smtp.stop()
    async with run_service() as first, run_service():
        for n in range(20):
            await sign_up_as(bus, f"user{n}@example.com")
        await eventually(lambda: db.count("emails"), equals=20)
        await smtp.start()
        await eventually(lambda: len(smtp.messages), timeout=15, equals=20)
        await eventually(lambda: db.count("emails", "status = 'sent'"), equals=20)
        await asyncio.sleep(0.2)
        assert len(smtp.messages) == 20
        assert len({m["To"] for m in smtp.messages}) == 20
        assert first.resources.consumer.consuming
