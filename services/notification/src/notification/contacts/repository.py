"""Every query on ``notification.contacts``."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notification.contacts.models import Contact


class ContactRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID) -> Contact | None:
        return await self.session.get(Contact, user_id)

    async def upsert(self, user_id: uuid.UUID, email: str, full_name: str) -> Contact:
        """Insert or refresh a contact; the newest word on an address wins."""
        values = insert(Contact).values(user_id=user_id, email=email, full_name=full_name)
        stmt = values.on_conflict_do_update(
            index_elements=[Contact.user_id],
            set_={
                "email": values.excluded.email,
                "full_name": values.excluded.full_name,
                "updated_at": func.now(),
            },
        ).returning(Contact)
        contact: Contact | None = await self.session.scalar(stmt.execution_options(populate_existing=True))
        assert contact is not None
        return contact

    async def delete(self, user_id: uuid.UUID) -> None:
        await self.session.execute(delete(Contact).where(Contact.user_id == user_id))
