"""Account use cases. They flush; the request's unit of work commits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.db.pagination import Cursor, Page, PageParams
from shared.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from users import outbox
from users.accounts.models import ROLE_USER, User
from users.accounts.passwords import Passwords
from users.accounts.repository import (
    BatchRow,
    EmailTaken,
    InternalRow,
    UserRepository,
    active_admins,
    batch_view,
    internal_view,
)
from users.accounts.schemas import ChangePasswordRequest, RegisterRequest, UpdateMeRequest, UserOut
from users.throttling.service import LoginThrottle
from users.tokens.repository import RefreshTokenRepository
from users.verification import service as verification


async def register(session: AsyncSession, passwords: Passwords, data: RegisterRequest) -> User:
    # Hashed before the first query: the session takes its pooled connection only then, so sign-ups
    # queued for a hashing thread do not hold connections that logins need meanwhile.
    password_hash = await passwords.hash(data.password)
    repo = UserRepository(session)
    # Checked first for a clear answer; the unique index still decides a race between two sign-ups.
    if await repo.get_by_email(data.email) is not None:
        raise Conflict("An account with this e-mail already exists.")
    user = User(
        id=uuid.uuid4(),
        email=data.email,
        password_hash=password_hash,
        full_name=data.full_name,
        roles=[ROLE_USER],
        is_active=True,
    )
    try:
        user = await repo.add(user)
    except EmailTaken as exc:
        raise Conflict("An account with this e-mail already exists.") from exc
    await outbox.user_registered(session, user)
    await verification.send_welcome(session, user)
    return user


async def active_user(session: AsyncSession, user_id: uuid.UUID, *, for_update: bool = False) -> User:
    """The caller's own account; its access token may outlive a deactivation by a few minutes."""
    user = await UserRepository(session).get(user_id, for_update=for_update)
    if user is None:
        raise Unauthorized("The account of this access token no longer exists.")
    if not user.is_active:
        raise Forbidden("The account is deactivated.")
    return user


async def update_profile(session: AsyncSession, user: User, data: UpdateMeRequest) -> User:
    if data.full_name is not None and data.full_name != user.full_name:
        user.full_name = data.full_name
        await UserRepository(session).flush(user)
    return user


async def change_password(
    session: AsyncSession,
    passwords: Passwords,
    throttle: LoginThrottle,
    user: User,
    data: ChangePasswordRequest,
    ip: str,
) -> None:
    # Throttled like a login: a stolen access token must not become a password-guessing oracle.
    attempt = await throttle.begin(user.email, ip)
    if not (await passwords.verify(user.password_hash, data.current_password)).ok:
        throttle.failed(attempt)
        raise ValidationFailed(
            "The current password is not correct.",
            [{"loc": ["body", "current_password"], "msg": "Incorrect password", "type": "value_error"}],
        )
    await throttle.succeeded(attempt)
    user.password_hash = await passwords.hash(data.new_password)
    await UserRepository(session).flush(user)
    await verification.password_changed(session, user.id)


async def read_for_service(reads: AsyncEngine, user_id: uuid.UUID) -> InternalRow:
    """The account as other services see it: one statement on an autocommit connection.

    No transaction around a single read: with asyncpg its BEGIN and COMMIT would be two of the
    three round trips of this call, which orders makes once per order placed.
    """
    async with reads.connect() as conn:
        row = await internal_view(conn, user_id)
    if row is None:
        raise NotFound("No user with this id.")
    return row


async def read_many_for_service(reads: AsyncEngine, user_ids: list[uuid.UUID]) -> list[BatchRow]:
    """Many accounts at once (GraphQL's DataLoader); ids with no account are left out, not an error."""
    async with reads.connect() as conn:
        return await batch_view(conn, user_ids)


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await UserRepository(session).get(user_id)
    if user is None:
        raise NotFound("No user with this id.")
    return user


async def deactivate(session: AsyncSession, user_id: uuid.UUID) -> User:
    """Deactivate and end every session; idempotent."""
    user = await UserRepository(session).get(user_id, for_update=True)
    if user is None:
        raise NotFound("No user with this id.")
    was_active = user.is_active
    user.deactivate()
    await UserRepository(session).flush(user)
    await RefreshTokenRepository(session).revoke_all_for_user(user.id, datetime.now(UTC))
    if was_active:
        await outbox.user_deactivated(session, user)
    return user


async def list_users(session: AsyncSession, params: PageParams) -> Page[UserOut]:
    rows = await UserRepository(session).newest_first(params.limit + 1, params.cursor)
    items, more = rows[: params.limit], len(rows) > params.limit
    next_cursor = Cursor(items[-1].created_at, items[-1].id).encode() if more else None
    return Page[UserOut](items=[UserOut.model_validate(u) for u in items], next_cursor=next_cursor)


async def admins_for_service(reads: AsyncEngine) -> list[InternalRow]:
    """The active admins, for a service that writes to them (notification's daily report)."""
    async with reads.connect() as conn:
        return await active_admins(conn)
