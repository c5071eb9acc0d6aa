"""Every query on ``notification.notifications``; each one is scoped to one user."""

from __future__ import annotations

import uuid
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notification.notifications.models import Notification
from shared.pagination import Cursor


class NotificationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_once(
        self,
        *,
        user_id: uuid.UUID,
        type: str,
        title: str,
        body: str,
        data: dict[str, Any],
        source_event_id: uuid.UUID,
    ) -> Notification | None:
        """Insert the notification of ``source_event_id``; None when that event already has one."""
        stmt = (
            insert(Notification)
            .values(
                id=uuid.uuid4(),
                user_id=user_id,
                type=type,
                title=title,
                body=body,
                data=data,
                source_event_id=source_event_id,
            )
            .on_conflict_do_nothing(index_elements=[Notification.source_event_id])
            .returning(Notification)
        )
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def newest_first(
        self, user_id: uuid.UUID, *, limit: int, after: Cursor | None, unread_only: bool
    ) -> list[Notification]:
        """One keyset page ordered by (created_at, id) descending, starting after ``after``."""
        stmt = (
            select(Notification)
            .where(Notification.user_id == user_id)
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(limit)
        )
        if unread_only:
            stmt = stmt.where(Notification.read_at.is_(None))
        if after is not None:
            stmt = stmt.where(
                tuple_(Notification.created_at, Notification.id) < tuple_(after.created_at, after.id)
            )
        return list(await self.session.scalars(stmt))

    async def count_unread(self, user_id: uuid.UUID) -> int:
        stmt = select(func.count()).where(Notification.user_id == user_id, Notification.read_at.is_(None))
        return int(await self.session.scalar(stmt) or 0)

    async def mark_read(self, user_id: uuid.UUID, notification_id: uuid.UUID) -> Notification | None:
        """Set ``read_at`` once (a second call keeps the first time); None when not the user's."""
        stmt = (
            update(Notification)
            .where(Notification.id == notification_id, Notification.user_id == user_id)
            .values(read_at=func.coalesce(Notification.read_at, func.now()))
            .returning(Notification)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        return await self.session.scalar(stmt)

    async def mark_all_read(self, user_id: uuid.UUID) -> int:
        result = await self.session.execute(
            update(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
            .values(read_at=func.now())
            .execution_options(synchronize_session=False)
        )
        # An UPDATE's result is a CursorResult at run time; the session's signature says only Result.
        return int(cast("CursorResult[Any]", result).rowcount or 0)
