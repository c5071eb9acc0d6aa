"""The consumer on the real broker and database: what each event leaves behind, exactly once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.messaging.dlq import list_dead_letters, redrive
from shared.messaging.events import (
    AccountEmailRequested,
    AccountEmailRequestedData,
    NotificationRequested,
    NotificationRequestedData,
    OrderCreated,
    OrderCreatedData,
    OrderItem,
    OrderStatusChanged,
    OrderStatusChangedData,
    UserDeactivated,
    UserDeactivatedData,
    UserRegistered,
    UserRegisteredData,
)
from shared.testing.users import UsersStandIn
from shared.testing.waits import eventually

from .conftest import Bus, Database, Service
from .mailserver import MailServer

pytestmark = pytest.mark.integration


def registered(email: str = "ada@example.com", full_name: str = "Ada Lovelace") -> UserRegistered:
    return UserRegistered(data=UserRegisteredData(user_id=uuid.uuid4(), email=email, full_name=full_name))


def welcome_email(user: UserRegistered) -> AccountEmailRequested:
    """What users asks for beside user.registered: the verification e-mail, which is the welcome."""
    data = AccountEmailRequestedData(
        user_id=user.data.user_id,
        email=user.data.email,
        full_name=user.data.full_name,
        kind="verify_email",
        token="t0ken-" + uuid.uuid4().hex,
        expires_at=datetime.now(UTC) + timedelta(hours=24),
        welcome=True,
    )
    return AccountEmailRequested(data=data)


async def sign_up(bus: Bus, user: UserRegistered, times: int = 1) -> AccountEmailRequested:
    """Publish a registration as users does: the event and the welcome e-mail's command."""
    mail = welcome_email(user)
    await bus.publish(user, times=times)
    await bus.publish(mail, times=times)
    return mail


def order_created(user_id: uuid.UUID, status: str = "pending") -> OrderCreated:
    item = OrderItem(sku="BOOK-1", name="Notes", quantity=2, unit_price_cents=1250, line_total_cents=2500)
    data = OrderCreatedData(
        order_id=uuid.uuid4(), user_id=user_id, status=status, currency="EUR", total_cents=2500, items=[item]
    )
    return OrderCreated(data=data)


def status_changed(user_id: uuid.UUID, to_status: str, from_status: str = "pending") -> OrderStatusChanged:
    data = OrderStatusChangedData(
        order_id=uuid.uuid4(), user_id=user_id, from_status=from_status, to_status=to_status, reason="user"
    )
    return OrderStatusChanged(data=data)


def consumed(service: Service, event_type: str, outcome: str) -> float:
    labels = {"consumer": "notification", "event_type": event_type, "outcome": outcome}
    return service.app.state.registry.get_sample_value("events_consumed_total", labels) or 0.0


async def test_user_registered_stores_the_contact_a_welcome_and_one_email(
    service: Service, bus: Bus, db: Database, smtp: MailServer
) -> None:
    event = registered()
    command = await sign_up(bus, event)
    [mail] = await eventually(lambda: smtp.to("ada@example.com"))
    assert mail["Subject"] == "Welcome aboard"
    plain = mail.get_body(("plain",))
    assert plain is not None
    assert "Ada Lovelace" in plain.get_content()
    # The welcome is the verification e-mail: its link, from PUBLIC_URL, in both parts.
    link = f"http://127.0.0.1:8000/console/verify?token={command.data.token}"
    assert link in plain.get_content()
    html = mail.get_body(("html",))
    assert html is not None
    assert f'href="{link}"' in html.get_content()
    await eventually(lambda: consumed(service, "user.registered", "handled"))
    assert await db.count("emails") == 1
    [contact] = await db.fetch("SELECT * FROM notification.contacts")
    assert (contact["user_id"], contact["email"]) == (event.data.user_id, "ada@example.com")
    [row] = await db.fetch("SELECT * FROM notification.notifications")
    assert (row["user_id"], row["type"], row["source_event_id"]) == (event.data.user_id, "welcome", event.id)


async def test_the_same_event_delivered_three_times_gives_one_notification_and_one_email(
    service: Service, bus: Bus, db: Database, smtp: MailServer
) -> None:
    event = registered()
    await sign_up(bus, event, times=3)
    await eventually(
        lambda: (
            consumed(service, "user.registered", "handled")
            + consumed(service, "user.registered", "duplicate")
            == 3
        )
    )
    await eventually(lambda: smtp.messages)
    assert consumed(service, "user.registered", "handled") == 1
    assert await db.count("notifications") == 1
    assert await db.count("emails") == 1
    assert await db.count("outbox", "event_type = 'notification.created'") == 1
    await eventually(lambda: db.count("emails", "status = 'sent'"))
    assert len(smtp.messages) == 1


async def test_a_burst_gives_each_event_its_notification_and_announcement_in_order(
    service: Service, bus: Bus, db: Database
) -> None:
    """A burst is handled in batches (one transaction, one INSERT per table each): every event still
    gets exactly its own notification and notification.created, announced in the order consumed."""
    user_id = uuid.uuid4()
    events = [status_changed(user_id, "paid") for _ in range(60)]
    for event in events:
        await bus.publish(event)
    await eventually(lambda: consumed(service, "order.status_changed", "handled") == 60)
    rows = await db.fetch(
        "SELECT n.id, n.source_event_id, o.payload FROM notification.notifications n"
        " JOIN notification.outbox o ON (o.payload::jsonb -> 'data' ->> 'notification_id')::uuid = n.id"
        " ORDER BY o.seq"
    )
    assert [row["source_event_id"] for row in rows] == [event.id for event in events]
    assert await db.count("outbox", "event_type = 'notification.created'") == 60


async def test_an_event_whose_inbox_entry_is_gone_is_still_not_announced_twice(
    service: Service, bus: Bus, db: Database
) -> None:
    """The notification is keyed by its event too: with the inbox row purged, a late redelivery stores
    and announces nothing (and the consumer still acks it)."""
    event = status_changed(uuid.uuid4(), "paid")
    await bus.publish(event)
    await eventually(lambda: consumed(service, "order.status_changed", "handled") == 1)
    await db.fetch("DELETE FROM notification.inbox WHERE event_id = $1", event.id)
    await bus.publish(event)
    await eventually(lambda: consumed(service, "order.status_changed", "handled") == 2)
    assert await db.count("notifications") == 1
    assert await db.count("outbox", "event_type = 'notification.created'") == 1


async def test_a_handler_that_fails_twice_then_succeeds_has_one_effect(
    service: Service, bus: Bus, db: Database, smtp: MailServer, users: UsersStandIn
) -> None:
    # A user this service has never seen: the e-mail needs the users service, which fails twice.
    user_id = users.add_user("grace@example.com", "Grace Hopper")
    users.fail(user_id, times=2)
    await bus.publish(order_created(user_id))
    [mail] = await eventually(lambda: smtp.to("grace@example.com"))
    assert mail["Subject"].startswith("Order received")
    assert users.lookups == [user_id] * 3
    assert await db.count("notifications") == 1
    assert await db.count("emails") == 1
    assert await db.count("contacts", "email = 'grace@example.com'") == 1
    assert await list_dead_letters(service.settings.amqp_url, "notification") == []


async def test_a_handler_that_always_fails_is_dead_lettered_then_redriven(
    service: Service, bus: Bus, db: Database, smtp: MailServer, users: UsersStandIn
) -> None:
    user_id = users.add_user("linus@example.com", "Linus")
    users.fail(user_id)
    event = order_created(user_id)
    await bus.publish(event)
    [letter] = await eventually(lambda: list_dead_letters(service.settings.amqp_url, "notification"))
    assert letter.message_id == str(event.id)
    assert letter.attempts == 3
    assert "UpstreamUnavailable" in letter.error
    assert await db.count("notifications") == 0

    users.heal(user_id)
    assert await redrive(service.settings.amqp_url, "notification", None) == 1
    await eventually(lambda: smtp.to("linus@example.com"))
    assert await db.count("notifications") == 1
    assert await list_dead_letters(service.settings.amqp_url, "notification") == []


async def test_a_malformed_message_is_dead_lettered_and_blocks_nothing(
    service: Service, bus: Bus, db: Database
) -> None:
    await bus.publish_raw(b"{not json", routing_key="user.registered", message_id="poison-1")
    await bus.publish_raw(
        b'{"type": "order.created", "data": {}}', routing_key="order.created", message_id="poison-2"
    )
    good = registered()
    await bus.publish(good)
    await eventually(lambda: db.count("notifications"))
    letters = await eventually(lambda: _letters(service, 2))
    assert sorted(letter.message_id for letter in letters) == ["poison-1", "poison-2"]
    assert all(letter.error.startswith("unparseable") for letter in letters)


async def _letters(service: Service, n: int) -> list[object] | None:
    letters = await list_dead_letters(service.settings.amqp_url, "notification")
    return list(letters) if len(letters) == n else None


async def test_order_events_notify_and_email_only_for_the_chosen_statuses(
    service: Service, bus: Bus, db: Database, smtp: MailServer
) -> None:
    user = registered("mary@example.com", "Mary")
    await sign_up(bus, user)
    await eventually(lambda: smtp.to("mary@example.com"))
    user_id = user.data.user_id
    paid, shipped = status_changed(user_id, "paid"), status_changed(user_id, "shipped", "paid")
    await bus.publish(paid)
    await bus.publish(shipped)
    await eventually(lambda: len(smtp.to("mary@example.com")) == 2)
    rows = await db.fetch(
        "SELECT type, title, data FROM notification.notifications WHERE type = 'order_status_changed'"
    )
    by_status = {row["title"]: row for row in rows}
    assert set(by_status) == {"Payment received", "Order shipped"}
    assert '"to_status": "shipped"' in by_status["Order shipped"]["data"]
    mail = smtp.to("mary@example.com")[-1]
    assert mail["Subject"] == f"Order shipped: order {str(shipped.data.order_id)[:8]}"
    # Nothing more arrives for "paid": its notification exists, its e-mail does not.
    assert await db.count("emails", "source_event_id = $1", paid.id) == 0


async def test_notification_requested_does_what_it_asks(
    service: Service, bus: Bus, db: Database, smtp: MailServer, users: UsersStandIn
) -> None:
    user_id = users.add_user("joan@example.com", "Joan")

    def request(channels: list[str]) -> NotificationRequested:
        data = NotificationRequestedData(
            user_id=user_id,
            title="Heads up",
            body="Line one.\n\nLine <two>.",
            data={"k": 1},
            channels=channels,
        )
        return NotificationRequested(source="orders", data=data)

    await bus.publish(request(["in_app"]))
    await bus.publish(request(["email"]))
    await bus.publish(request(["in_app", "email"]))
    await eventually(lambda: len(smtp.to("joan@example.com")) == 2)
    rows = await db.fetch("SELECT type, title, body, data FROM notification.notifications")
    assert len(rows) == 2
    assert {(r["type"], r["title"], r["data"]) for r in rows} == {("message", "Heads up", '{"k": 1}')}
    html = smtp.to("joan@example.com")[0].get_body(("html",))
    assert html is not None
    assert "Line &lt;two&gt;." in html.get_content()


async def test_an_unknown_user_gets_the_notification_but_no_email(
    service: Service, bus: Bus, db: Database, users: UsersStandIn
) -> None:
    stranger = uuid.uuid4()
    await bus.publish(order_created(stranger))
    await eventually(lambda: db.count("notifications"))
    assert users.lookups == [stranger]
    assert await db.count("emails") == 0
    assert await db.count("contacts") == 0


async def test_a_deactivated_user_is_forgotten_and_not_emailed(
    service: Service, bus: Bus, db: Database, users: UsersStandIn
) -> None:
    user = registered("old@example.com")
    await bus.publish(user)
    await eventually(lambda: db.count("contacts"))
    users.accounts[user.data.user_id] = {
        "id": str(user.data.user_id),
        "email": "old@example.com",
        "full_name": "Old",
        "is_active": False,
    }
    await bus.publish(UserDeactivated(data=UserDeactivatedData(user_id=user.data.user_id)))
    await eventually(lambda: consumed(service, "user.deactivated", "handled"))
    assert await db.count("contacts") == 0
    later = order_created(user.data.user_id)
    await bus.publish(later)
    await eventually(lambda: db.count("notifications", "source_event_id = $1", later.id))
    assert await db.count("emails", "source_event_id = $1", later.id) == 0
