"""Every query on ``users.verification_tokens``."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from users.verification.models import VerificationToken


class VerificationTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, token: VerificationToken) -> None:
        self.session.add(token)
        await self.session.flush()

    async def lock_by_hash(self, token_hash: bytes, purpose: str) -> VerificationToken | None:
        """The row, locked: two concurrent uses of one token are served one after the other."""
        stmt = (
            select(VerificationToken)
            .where(VerificationToken.token_hash == token_hash, VerificationToken.purpose == purpose)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return await self.session.scalar(stmt)

    async def count_since(self, user_id: uuid.UUID, purpose: str, since: datetime) -> int:
        stmt = select(func.count()).where(
            VerificationToken.user_id == user_id,
            VerificationToken.purpose == purpose,
            VerificationToken.created_at > since,
        )
        return int(await self.session.scalar(stmt) or 0)

    async def newest_created_at(self, user_id: uuid.UUID, purpose: str) -> datetime | None:
        stmt = select(func.max(VerificationToken.created_at)).where(
            VerificationToken.user_id == user_id, VerificationToken.purpose == purpose
        )
        newest: datetime | None = await self.session.scalar(stmt)
        return newest

    async def use_all(self, user_id: uuid.UUID, purpose: str, now: datetime) -> None:
        """Spend every unused token of one purpose (a password change ends the reset links)."""
        await self.session.execute(
            update(VerificationToken)
            .where(
                VerificationToken.user_id == user_id,
                VerificationToken.purpose == purpose,
                VerificationToken.used_at.is_(None),
            )
            .values(used_at=now)
        )
