"""Every query on ``users.users``."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import bindparam, select, tuple_
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from shared.db.pagination import Cursor
from users.accounts.models import ROLE_ADMIN, User, email_key

EMAIL_INDEX = "ux_users_email_key"


class EmailTaken(Exception):
    """Another account already uses this address (compared case-insensitively)."""


def _violated_constraint(exc: IntegrityError) -> str | None:
    # SQLAlchemy wraps the driver's error; asyncpg's original names the constraint.
    cause = exc.orig.__cause__ if exc.orig is not None else None
    return getattr(cause, "constraint_name", None) or getattr(exc.orig, "constraint_name", None)


# What other services read of an account (``/internal/users/{id}``): id, email, full_name, roles, is_active.
InternalRow = Row[uuid.UUID, str, str, list[str], bool]
# Built once with a bound parameter: no expression to build, nor cache key to compute, per call.
_INTERNAL_VIEW = select(User.id, User.email, User.full_name, User.roles, User.is_active).where(
    User.id == bindparam("user_id")
)


async def internal_view(conn: AsyncConnection, user_id: uuid.UUID) -> InternalRow | None:
    """The account's public columns as one row, without loading an ORM object.

    Orders asks this once per order placed: a Core query on a plain connection skips the session,
    its identity map and the object's instrumentation, which the profile showed as most of the
    endpoint's cost besides the round trips.
    """
    return (await conn.execute(_INTERNAL_VIEW, {"user_id": user_id})).first()


# At most this many admins are named to another service (the daily report's recipients).
MAX_ADMINS = 1000


async def active_admins(conn: AsyncConnection) -> list[InternalRow]:
    stmt = (
        select(User.id, User.email, User.full_name, User.roles, User.is_active)
        .where(User.roles.contains([ROLE_ADMIN]), User.is_active.is_(True))
        .order_by(User.created_at, User.id)
        .limit(MAX_ADMINS)
    )
    return list((await conn.execute(stmt)).all())


# The batch form for GraphQL's DataLoader (``/internal/users?ids=``): the public profile of many accounts.
BatchRow = Row[uuid.UUID, str, str, list[str], bool, datetime]
_BATCH_VIEW = select(User.id, User.email, User.full_name, User.roles, User.is_active, User.created_at).where(
    User.id.in_(bindparam("ids", expanding=True))
)


async def batch_view(conn: AsyncConnection, ids: list[uuid.UUID]) -> list[BatchRow]:
    """The accounts among ``ids`` that exist, in no particular order, in one statement."""
    return list((await conn.execute(_BATCH_VIEW, {"ids": ids})).all())


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID, *, for_update: bool = False) -> User | None:
        if not for_update:
            return await self.session.get(User, user_id)
        stmt = select(User).where(User.id == user_id).with_for_update()
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def get_by_email(self, email: str, *, for_update: bool = False) -> User | None:
        stmt = select(User).where(User.email_key == email_key(email))
        if for_update:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        return await self.session.scalar(stmt)

    async def add(self, user: User) -> User:
        """Insert and flush, so a duplicate e-mail surfaces here as ``EmailTaken``."""
        self.session.add(user)
        try:
            await self.session.flush()
        except IntegrityError as exc:
            if _violated_constraint(exc) == EMAIL_INDEX:
                raise EmailTaken(user.email) from exc
            raise
        return user

    async def delete(self, user: User) -> None:
        await self.session.delete(user)
        await self.session.flush()

    async def flush(self, user: User) -> User:
        """Write pending changes; ``updated_at`` comes back with the UPDATE (eager defaults)."""
        await self.session.flush()
        return user

    async def newest_first(self, limit: int, after: Cursor | None) -> list[User]:
        """One keyset page ordered by (created_at, id) descending, starting after ``after``."""
        stmt = select(User).order_by(User.created_at.desc(), User.id.desc()).limit(limit)
        if after is not None:
            stmt = stmt.where(tuple_(User.created_at, User.id) < tuple_(after.created_at, after.id))
        return list(await self.session.scalars(stmt))
