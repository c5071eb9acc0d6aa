"""Where to reach a user: the contact table first, the users service once when it has no row."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from notification.contacts.directory import UsersDirectory
from notification.contacts.models import Contact
from notification.contacts.repository import ContactRepository

log = logging.getLogger(__name__)


async def remember(session: AsyncSession, user_id: uuid.UUID, email: str, full_name: str) -> Contact:
    return await ContactRepository(session).upsert(user_id, email, full_name)


async def forget(session: AsyncSession, user_id: uuid.UUID) -> None:
    await ContactRepository(session).delete(user_id)


async def find(session: AsyncSession, directory: UsersDirectory, user_id: uuid.UUID) -> Contact | None:
    """The user's contact, asking the users service (and caching its answer) when we have none.

    None means there is nobody to e-mail: the account does not exist or is deactivated.
    """
    repository = ContactRepository(session)
    contact = await repository.get(user_id)
    if contact is not None:
        return contact
    entry = await directory.lookup(user_id)
    if entry is None or not entry.is_active:
        log.info("no contact for user", extra={"user_id": str(user_id), "known": entry is not None})
        return None
    return await repository.upsert(entry.user_id, entry.email, entry.full_name)
