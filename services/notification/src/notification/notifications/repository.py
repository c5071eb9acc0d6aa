"""Every query on ``notification.notifications``; each one is scoped to one user."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import ARRAY, CursorResult, Insert, Table, Text, Uuid, bindparam, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from notification.notifications.models import Notification
from shared.db.pagination import Cursor


@dataclass(frozen=True)
class Draft:
    """A notification to store (once per ``source_event_id``)."""

    user_id: uuid.UUID
    type: str
    title: str
    body: str
    data: dict[str, Any]
    source_event_id: uuid.UUID
    id: uuid.UUID = field(default_factory=uuid.uuid4)


_COLUMNS = ("id", "user_id", "type", "title", "body", "data", "source_event_id")


@functools.cache
def _insert_many() -> Insert:
    """INSERT of any number of drafts, given as one array per column: one fixed text, prepared once."""
    table = cast("Table", Notification.__table__)
    types = {"id": Uuid, "user_id": Uuid, "data": JSONB, "source_event_id": Uuid}
    rows = (
        func.unnest(*(bindparam(f"n_{name}", type_=ARRAY(types.get(name, Text))) for name in _COLUMNS))
        .table_valued(*_COLUMNS)
        .render_derived()
    )
    return (
        insert(table)
        .from_select(list(_COLUMNS), select(*(rows.c[name] for name in _COLUMNS)))
        .on_conflict_do_nothing(index_elements=["source_event_id"])
        .returning(table.c.id)
    )


class NotificationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_many_once(self, drafts: Sequence[Draft]) -> list[uuid.UUID]:
        """Insert the drafts as one statement; the ids stored (a draft of an event that has one is not)."""
        params = {f"n_{name}": [getattr(d, name) for d in drafts] for name in _COLUMNS}
        return list((await self.session.execute(_insert_many(), params)).scalars())

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
