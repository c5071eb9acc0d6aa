"""What can happen to notifications: stored once per event and announced, listed, marked read."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from notification.database import outbox
from notification.notifications.models import Notification
from notification.notifications.repository import NotificationRepository
from notification.notifications.schemas import NotificationOut
from shared.errors import NotFound
from shared.events import NotificationCreated, NotificationCreatedData
from shared.outbox import add_event
from shared.pagination import Cursor, Page, PageParams

log = logging.getLogger(__name__)


async def create_once(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    type: str,
    title: str,
    body: str,
    data: dict[str, Any],
    source_event_id: uuid.UUID,
) -> Notification | None:
    """Store the notification of an event and announce it (notification.created) in the same transaction.

    None when the event already produced its notification: nothing is stored or announced twice.
    """
    notification = await NotificationRepository(session).add_once(
        user_id=user_id, type=type, title=title, body=body, data=data, source_event_id=source_event_id
    )
    if notification is None:
        log.info("notification already stored for event", extra={"event_id": str(source_event_id)})
        return None
    event = NotificationCreated(
        data=NotificationCreatedData(
            notification_id=notification.id,
            user_id=notification.user_id,
            type=notification.type,
            title=notification.title,
            body=notification.body,
        )
    )
    await add_event(session, outbox, event)
    return notification


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
