"""Every query on ``orders.idempotency_keys``."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from orders.idempotency.models import IdempotencyKey


class IdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def find(self, user_id: uuid.UUID, key: str) -> IdempotencyKey | None:
        stmt = (
            select(IdempotencyKey)
            .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
            .execution_options(populate_existing=True)
        )
        return await self.session.scalar(stmt)

    async def claim(self, user_id: uuid.UUID, key: str, request_hash: str) -> bool:
        """Insert the key row; False when another transaction holds it already.

        A concurrent claim of the same key blocks on the primary key until the first transaction
        ends: if it commits, this one sees the conflict and reads the stored answer; if it rolls
        back, this one takes the key over. So concurrent retries wait for the winner.
        """
        stmt = (
            insert(IdempotencyKey)
            .values(user_id=user_id, key=key, request_hash=request_hash)
            .on_conflict_do_nothing(index_elements=[IdempotencyKey.user_id, IdempotencyKey.key])
            .returning(IdempotencyKey.user_id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def record(
        self, user_id: uuid.UUID, key: str, *, status_code: int, body: str, order_id: uuid.UUID
    ) -> None:
        await self.session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
            .values(status_code=status_code, response_body=body, order_id=order_id)
        )
