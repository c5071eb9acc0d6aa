"""Erasing an account: by its owner (with the password) or by an admin. They flush; the request's unit
of work commits, with the ``user.deleted`` event in the same transaction."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import Forbidden
from users import outbox
from users.accounts.models import User
from users.accounts.passwords import Passwords
from users.accounts.repository import UserRepository
from users.throttling.service import LoginThrottle


async def delete_self(
    session: AsyncSession, passwords: Passwords, throttle: LoginThrottle, user: User, password: str, ip: str
) -> None:
    """The owner erases their account; the password is checked (and throttled) like a login, so a
    stolen access token alone cannot erase anyone."""
    attempt = await throttle.begin(user.email, ip)
    if not (await passwords.verify(user.password_hash, password)).ok:
        raise Forbidden("The password is not correct.")
    await throttle.succeeded(attempt)
    await _erase(session, user)


async def delete_by_admin(session: AsyncSession, user_id: uuid.UUID) -> None:
    """An admin erases an account. Idempotent: an id that is already gone is not an error (204 again)."""
    user = await UserRepository(session).get(user_id, for_update=True)
    if user is not None:
        await _erase(session, user)


async def _erase(session: AsyncSession, user: User) -> None:
    # The row goes: its refresh tokens (and every other row of the user in this schema) go with it
    # through ON DELETE CASCADE, and the e-mail is free to register again. Locked by the caller, so
    # two concurrent deletions publish one event.
    user_id = user.id
    await UserRepository(session).delete(user)
    await outbox.user_deleted(session, user_id)
