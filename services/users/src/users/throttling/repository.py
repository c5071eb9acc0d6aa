"""Every query on ``users.login_failures``, at the time the caller passes (its clock, not the server's)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, DateTime, delete, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from users.throttling.models import LoginFailure

# Old rows are purged a batch at a time on each write, so no background job is needed.
PURGE_BATCH = 500


class LoginFailureRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, account_key: str, ip: str, now: datetime) -> int:
        stmt = (
            insert(LoginFailure)
            .values(account_key=account_key, ip=ip, created_at=now)
            .returning(LoginFailure.id)
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def seconds_until_below(
        self, *, column: str, key: str, limit: int, window: timedelta, excluding: int, now: datetime
    ) -> int | None:
        """None while fewer than ``limit`` failures sit in the window, else seconds until that holds.

        The answer is when the ``limit``-th most recent failure leaves the window.
        """
        col: ColumnElement[str] = getattr(LoginFailure, column)
        at = literal(now, DateTime(timezone=True))
        pivot = (
            select(LoginFailure.created_at)
            .where(
                col == key,
                LoginFailure.id != excluding,
                LoginFailure.created_at > at - literal(window),
            )
            .order_by(LoginFailure.created_at.desc())
            .offset(limit - 1)
            .limit(1)
            .scalar_subquery()
        )
        remaining = func.extract("epoch", pivot + literal(window) - at)
        seconds = (await self.session.execute(select(remaining))).scalar_one()
        return None if seconds is None else max(1, math.ceil(float(seconds)))

    async def delete(self, failure_id: int) -> None:
        await self.session.execute(delete(LoginFailure).where(LoginFailure.id == failure_id))

    async def clear_account(self, account_key: str) -> None:
        await self.session.execute(delete(LoginFailure).where(LoginFailure.account_key == account_key))

    async def purge_older_than(self, age: timedelta, now: datetime) -> None:
        batch = (
            select(LoginFailure.id)
            .where(LoginFailure.created_at < literal(now, DateTime(timezone=True)) - literal(age))
            .limit(PURGE_BATCH)
            .scalar_subquery()
        )
        await self.session.execute(delete(LoginFailure).where(LoginFailure.id.in_(batch)))
