"""Where to reach a user: the contact table first, the users service once when it has no row."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notification.contacts.directory import UsersDirectory
from notification.contacts.models import Contact
from notification.contacts.repository import ContactRepository
from shared.db.unit_of_work import unit_of_work

log = logging.getLogger(__name__)


async def remember(session: AsyncSession, user_id: uuid.UUID, email: str, full_name: str) -> Contact:
    return await ContactRepository(session).upsert(user_id, email, full_name)


async def forget(session: AsyncSession, user_id: uuid.UUID) -> None:
    await ContactRepository(session).delete(user_id)


async def learn(
    sessions: async_sessionmaker[AsyncSession], directory: UsersDirectory, user_id: uuid.UUID
) -> None:
    """Ask the users service for a contact the table lacks, and store it when the account is active.

    Runs before the event's transaction opens, with no transaction of its own open during the call:
    a slow users service then holds no database connection, row or lock. Raises
    ``UpstreamUnavailable`` when users cannot answer, so the event is retried.
    """
    async with sessions() as session:
        known = await ContactRepository(session).get(user_id) is not None
    if known:
        return
    entry = await directory.lookup(user_id)
    if entry is None or not entry.is_active:
        log.info("no contact for user", extra={"user_id": str(user_id), "known": entry is not None})
        return
    async with unit_of_work(sessions) as uow:
        await ContactRepository(uow.session).upsert(entry.user_id, entry.email, entry.full_name)


async def find(session: AsyncSession, user_id: uuid.UUID) -> Contact | None:
    """The user's contact; None means nobody to e-mail (no account, or a deactivated one)."""
    return await ContactRepository(session).get(user_id)
