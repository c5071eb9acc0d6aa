"""What each event does here; every handler runs inside the consumer's transaction (inbox included).

An event that e-mails a user whose address this service has not seen needs the users service first:
``prepare`` asks it before that transaction opens, so no transaction is held open across the call.

Effects are rows only: the notification (with its notification.created outbox row) and a pending
e-mail. Both are keyed by the event id, so a redelivered event can never add a second one, even if
the inbox row were gone. SMTP is never spoken here: the sender does that after the commit.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notification.contacts import service as contacts
from notification.contacts.directory import UsersDirectory
from notification.contacts.models import Contact
from notification.email import account, templates
from notification.email.outbound import enqueue
from notification.erasure import service as erasure
from notification.notifications import service as notifications
from notification.notifications import wording
from notification.report import counts
from shared.db.unit_of_work import UnitOfWork
from shared.messaging.consumer import Handler
from shared.messaging.events import (
    AccountEmailRequested,
    Event,
    NotificationRequested,
    OrderCreated,
    OrderStatusChanged,
    UserDeactivated,
    UserDeleted,
    UserRegistered,
    event_type_name,
)

log = logging.getLogger(__name__)

Render = Callable[[Contact], templates.RenderedEmail]


class EventHandlers:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        directory: UsersDirectory,
        public_url: str,
        email_order_statuses: list[str],
    ) -> None:
        self.sessions = sessions
        self.directory = directory
        self.public_url = public_url
        self.email_order_statuses = frozenset(email_order_statuses)

    def mapping(self) -> Mapping[str, Handler]:
        """Event type -> handler, for the consumer (and its queue bindings)."""
        return {
            event_type_name(UserRegistered): self.user_registered,
            event_type_name(UserDeactivated): self.user_deactivated,
            event_type_name(UserDeleted): self.user_deleted,
            event_type_name(AccountEmailRequested): self.account_email_requested,
            event_type_name(OrderCreated): self.order_created,
            event_type_name(OrderStatusChanged): self.order_status_changed,
            event_type_name(NotificationRequested): self.notification_requested,
        }

    async def prepare(self, event: Event) -> None:
        """Before the event's transaction: learn the address of the user it e-mails, if not known."""
        if (user_id := self._recipient(event)) is not None:
            await contacts.learn(self.sessions, self.directory, user_id)

    def _recipient(self, event: Event) -> uuid.UUID | None:
        """The user this event e-mails through ``_email``, if it e-mails anyone."""
        if isinstance(event, OrderCreated) and event.data.status in self.email_order_statuses:
            return event.data.user_id
        if isinstance(event, OrderStatusChanged) and event.data.to_status in self.email_order_statuses:
            return event.data.user_id
        if isinstance(event, NotificationRequested) and "email" in event.data.channels:
            return event.data.user_id
        return None

    async def user_registered(self, event: Event, uow: UnitOfWork) -> None:
        assert isinstance(event, UserRegistered)
        counts.record(uow, event)
        user = event.data
        session = uow.session
        if await erasure.is_erased(session, user.user_id):
            return  # a late delivery of the sign-up of an account already erased
        await contacts.remember(session, user.user_id, user.email, user.full_name)
        notifications.create_once(
            uow,
            user_id=user.user_id,
            type="welcome",
            title=f"Welcome, {user.full_name}!",
            body="Your account is ready. We will let you know here whenever one of your orders moves.",
            data={"email": user.email},
            source_event_id=event.id,
        )
        # The welcome e-mail is the verification e-mail users asks for (account.email_requested).

    async def account_email_requested(self, event: Event, uow: UnitOfWork) -> None:
        """A verification or reset link, to the address in the command (the one to prove)."""
        assert isinstance(event, AccountEmailRequested)
        request = event.data
        if await erasure.is_erased(uow.session, request.user_id):
            return
        rendered = account.render(request, public_url=self.public_url, now=datetime.now(UTC))
        await enqueue(
            uow.session,
            source_event_id=event.id,
            user_id=request.user_id,
            recipient=request.email,
            rendered=rendered,
        )

    async def user_deactivated(self, event: Event, uow: UnitOfWork) -> None:
        """Forget the contact: a later e-mail asks users, which says the account is inactive."""
        assert isinstance(event, UserDeactivated)
        await contacts.forget(uow.session, event.data.user_id)

    async def user_deleted(self, event: Event, uow: UnitOfWork) -> None:
        """Erase the user's notifications, contact and e-mails; idempotent."""
        assert isinstance(event, UserDeleted)
        await erasure.erase(uow, event.data.user_id)
        log.info("erased a deleted user's data", extra={"user_id": str(event.data.user_id)})

    async def order_created(self, event: Event, uow: UnitOfWork) -> None:
        assert isinstance(event, OrderCreated)
        counts.record(uow, event)
        order = event.data
        text = wording.order_created(order.order_id, order.total_cents, order.currency, len(order.items))
        data: dict[str, Any] = {
            "order_id": str(order.order_id),
            "status": order.status,
            "total_cents": order.total_cents,
            "currency": order.currency,
        }
        notifications.create_once(
            uow,
            user_id=order.user_id,
            type="order_created",
            title=text.title,
            body=text.body,
            data=data,
            source_event_id=event.id,
        )
        if self._recipient(event) is not None:
            total = wording.money(order.total_cents, order.currency)
            await self._email(
                uow.session,
                event,
                order.user_id,
                self._order_email(order.order_id, order.status, text, total),
            )

    async def order_status_changed(self, event: Event, uow: UnitOfWork) -> None:
        assert isinstance(event, OrderStatusChanged)
        counts.record(uow, event)
        change = event.data
        text = wording.order_status_changed(change.order_id, change.to_status)
        data: dict[str, Any] = {
            "order_id": str(change.order_id),
            "from_status": change.from_status,
            "to_status": change.to_status,
        }
        notifications.create_once(
            uow,
            user_id=change.user_id,
            type="order_status_changed",
            title=text.title,
            body=text.body,
            data=data,
            source_event_id=event.id,
        )
        if self._recipient(event) is not None:
            await self._email(
                uow.session,
                event,
                change.user_id,
                self._order_email(change.order_id, change.to_status, text, None),
            )

    async def notification_requested(self, event: Event, uow: UnitOfWork) -> None:
        assert isinstance(event, NotificationRequested)
        request = event.data
        if "in_app" in request.channels:
            notifications.create_once(
                uow,
                user_id=request.user_id,
                type="message",
                title=request.title,
                body=request.body,
                data=request.data,
                source_event_id=event.id,
            )
        if self._recipient(event) is not None:

            def render(contact: Contact) -> templates.RenderedEmail:
                return templates.message(full_name=contact.full_name, title=request.title, body=request.body)

            await self._email(uow.session, event, request.user_id, render)

    def _order_email(
        self, order_id: uuid.UUID, status: str, text: wording.Wording, total: str | None
    ) -> Render:
        def render(contact: Contact) -> templates.RenderedEmail:
            return templates.order_status(
                full_name=contact.full_name,
                subject=f"{text.title}: order {wording.short_id(order_id)}",
                headline=text.body,
                order_id=str(order_id),
                status=status,
                total=total,
                public_url=self.public_url,
            )

        return render

    async def _email(self, session: AsyncSession, event: Event, user_id: uuid.UUID, render: Render) -> None:
        """Queue an e-mail to the user at the address ``prepare`` made sure of, if there is one."""
        contact = await contacts.find(session, user_id)
        if contact is None:
            log.warning("no address to e-mail", extra={"event_id": str(event.id), "user_id": str(user_id)})
            return
        await enqueue(
            session,
            source_event_id=event.id,
            user_id=user_id,
            recipient=contact.email,
            rendered=render(contact),
        )
