"""``user.deleted``: erase what this service holds of the user, and remember the id.

Events about the user can arrive after the deletion (an order cancelled because of it, a redelivery,
a retry): the id is kept in ``erased_users`` so that they store nothing, whatever their order.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import delete, exists, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notification.contacts.models import Contact
from notification.email.models import Email
from notification.erasure.models import ErasedUser
from notification.notifications.models import Notification
from shared.db.unit_of_work import UnitOfWork


async def is_erased(session: AsyncSession, user_id: uuid.UUID) -> bool:
    return bool(await session.scalar(select(exists().where(ErasedUser.user_id == user_id))))


async def erased_among(session: AsyncSession, user_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """Which of ``user_ids`` were erased: one query for a whole consumer batch."""
    if not user_ids:
        return set()
    return set(await session.scalars(select(ErasedUser.user_id).where(ErasedUser.user_id.in_(user_ids))))


async def erase(uow: UnitOfWork, user_id: uuid.UUID) -> None:
    """Remember the id now (later handlers of this transaction see it), erase just before the commit:
    after the notifications that earlier events of the same consumer batch are about to write."""
    stmt = (
        insert(ErasedUser).values(user_id=user_id).on_conflict_do_nothing(index_elements=[ErasedUser.user_id])
    )
    await uow.session.execute(stmt)

    async def erase_rows() -> None:
        session = uow.session
        await session.execute(delete(Notification).where(Notification.user_id == user_id))
        await session.execute(delete(Contact).where(Contact.user_id == user_id))
        # Every e-mail of the user: pending ones must not go out, and sent ones hold the address and
        # what was said. Their attempts go with them (ON DELETE CASCADE).
        await session.execute(delete(Email).where(Email.user_id == user_id))

    uow.before_commit(erase_rows)
