"""What can happen to notifications: stored once per event and announced, listed, marked read."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from notification.database import outbox
from notification.erasure import service as erasure
from notification.notifications.models import Notification
from notification.notifications.repository import Draft, NotificationRepository
from notification.notifications.schemas import NotificationOut
from shared.db.pagination import Cursor, Page, PageParams
from shared.db.unit_of_work import UnitOfWork
from shared.errors import NotFound
from shared.messaging.events import NotificationCreated, NotificationCreatedData
from shared.messaging.outbox import add_events, event_headers

log = logging.getLogger(__name__)

_PENDING = "notification.pending"


class _Pending:
    """The notifications of one transaction, written together just before it commits.

    A consumer batch handles many events in one transaction; one INSERT for all their notifications and
    one for all their notification.created outbox rows cost two round trips instead of two per event.
    Each announcement is made (correlation id, trace headers) when its handler asks for it.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.drafts: list[Draft] = []
        self.events: list[NotificationCreated] = []
        self.headers: list[dict[str, str]] = []

    def add(self, draft: Draft) -> None:
        event = NotificationCreated(
            data=NotificationCreatedData(
                notification_id=draft.id,
                user_id=draft.user_id,
                type=draft.type,
                title=draft.title,
                body=draft.body,
            )
        )
        self.drafts.append(draft)
        self.events.append(event)
        self.headers.append(event_headers(event))

    async def write(self) -> None:
        # An event about an account erased meanwhile (an order cancelled by the erasure) stores nothing.
        erased = await erasure.erased_among(self.session, {draft.user_id for draft in self.drafts})
        if erased:
            kept = [i for i, draft in enumerate(self.drafts) if draft.user_id not in erased]
            self.drafts = [self.drafts[i] for i in kept]
            self.events = [self.events[i] for i in kept]
            self.headers = [self.headers[i] for i in kept]
        stored = set(await NotificationRepository(self.session).add_many_once(self.drafts))
        events: list[NotificationCreated] = []
        headers: list[dict[str, str]] = []
        for draft, event, header in zip(self.drafts, self.events, self.headers, strict=True):
            if draft.id in stored:
                events.append(event)
                headers.append(header)
            else:
                source = str(draft.source_event_id)
                log.info("notification already stored for event", extra={"event_id": source})
        await add_events(self.session, outbox, events, headers)


def create_once(
    uow: UnitOfWork,
    *,
    user_id: uuid.UUID,
    type: str,
    title: str,
    body: str,
    data: dict[str, Any],
    source_event_id: uuid.UUID,
) -> None:
    """Store the notification of an event and announce it (notification.created) in ``uow``'s transaction.

    Written just before the transaction commits, with the others of that transaction. An event that
    already produced its notification stores and announces nothing a second time.
    """
    pending = uow.state.get(_PENDING)
    if pending is None:
        pending = uow.state[_PENDING] = _Pending(uow.session)
        uow.before_commit(pending.write)
    pending.add(
        Draft(user_id=user_id, type=type, title=title, body=body, data=data, source_event_id=source_event_id)
    )


async def list_page(
    session: AsyncSession, user_id: uuid.UUID, page: PageParams, *, unread_only: bool
) -> Page[NotificationOut]:
    # One extra row tells whether another page exists without a second query.
    rows = await NotificationRepository(session).newest_first(
        user_id, limit=page.limit + 1, after=page.cursor, unread_only=unread_only
    )
    items, more = rows[: page.limit], len(rows) > page.limit
    next_cursor = Cursor(items[-1].created_at, items[-1].id).encode() if more and items else None
    return Page[NotificationOut](
        items=[NotificationOut.model_validate(n) for n in items], next_cursor=next_cursor
    )


async def unread_count(session: AsyncSession, user_id: uuid.UUID) -> int:
    return await NotificationRepository(session).count_unread(user_id)


async def mark_read(session: AsyncSession, user_id: uuid.UUID, notification_id: uuid.UUID) -> Notification:
    notification = await NotificationRepository(session).mark_read(user_id, notification_id)
    if notification is None:
        # Someone else's notification is as invisible as one that does not exist.
        raise NotFound("No such notification.")
    return notification


async def mark_all_read(session: AsyncSession, user_id: uuid.UUID) -> int:
    return await NotificationRepository(session).mark_all_read(user_id)
