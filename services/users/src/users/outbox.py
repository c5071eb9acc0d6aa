"""What the users service tells the rest of the system: its events, written to its outbox."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from shared.messaging.events import (
    UserDeactivated,
    UserDeactivatedData,
    UserDeleted,
    UserDeletedData,
    UserRegistered,
    UserRegisteredData,
)
from shared.messaging.outbox import add_event, outbox_table
from users.accounts.models import User
from users.database import Base

OUTBOX = outbox_table(Base.metadata)


async def user_registered(session: AsyncSession, user: User) -> None:
    data = UserRegisteredData(user_id=user.id, email=user.email, full_name=user.full_name)
    await add_event(session, OUTBOX, UserRegistered(data=data))


async def user_deactivated(session: AsyncSession, user: User) -> None:
    await add_event(session, OUTBOX, UserDeactivated(data=UserDeactivatedData(user_id=user.id)))


async def user_deleted(session: AsyncSession, user_id: uuid.UUID) -> None:
    await add_event(session, OUTBOX, UserDeleted(data=UserDeletedData(user_id=user_id)))
