"""E-mail verification and password reset, after Django's and Devise's: random single-use tokens,
stored as their SHA-256, time-bound, spent by a password change; the reset request tells nobody
whether an address has an account. The e-mails are notification's to render and send: this service
writes an ``account.email_requested`` command to its outbox, in the transaction that made the token.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import BadRequest, TooManyRequests
from shared.messaging.events import AccountEmailKind, AccountEmailRequested, AccountEmailRequestedData
from shared.messaging.outbox import add_event
from users.accounts.models import User
from users.accounts.passwords import Passwords
from users.accounts.repository import UserRepository
from users.outbox import OUTBOX
from users.tokens.repository import RefreshTokenRepository
from users.verification.models import PASSWORD_RESET, VERIFY_EMAIL, VerificationToken
from users.verification.repository import VerificationTokenRepository

# Contract section 9.
VERIFY_TTL = timedelta(hours=24)
RESET_TTL = timedelta(minutes=30)
RESEND_INTERVAL = timedelta(minutes=1)
RESETS_PER_HOUR = 3

INVALID_LINK = "This link is not valid: it was used already, it expired, or it was never issued."


def hash_token(token: str) -> bytes:
    # 256 random bits: a plain SHA-256 (no salt, no stretching) is enough, as for refresh tokens.
    return hashlib.sha256(token.encode()).digest()


def _now() -> datetime:
    return datetime.now(UTC)


async def _issue(session: AsyncSession, user: User, kind: AccountEmailKind, *, welcome: bool = False) -> None:
    token = secrets.token_urlsafe(32)
    expires_at = _now() + (VERIFY_TTL if kind == VERIFY_EMAIL else RESET_TTL)
    await VerificationTokenRepository(session).add(
        VerificationToken(
            id=uuid.uuid4(),
            user_id=user.id,
            purpose=kind,
            token_hash=hash_token(token),
            expires_at=expires_at,
        )
    )
    data = AccountEmailRequestedData(
        user_id=user.id,
        email=user.email,
        full_name=user.full_name,
        kind=kind,
        token=token,
        expires_at=expires_at,
        welcome=welcome,
    )
    await add_event(session, OUTBOX, AccountEmailRequested(data=data))


async def send_welcome(session: AsyncSession, user: User) -> None:
    """At registration: the verification e-mail, which is also the welcome."""
    await _issue(session, user, VERIFY_EMAIL, welcome=True)


async def resend_verification(session: AsyncSession, user: User) -> None:
    """Another verification e-mail, at most once a minute (429 with Retry-After otherwise)."""
    if user.email_verified:
        return  # nothing to verify: accepted, and nothing is sent
    newest = await VerificationTokenRepository(session).newest_created_at(user.id, VERIFY_EMAIL)
    if newest is not None:
        wait = (newest + RESEND_INTERVAL - _now()).total_seconds()
        if wait > 0:
            seconds = math.ceil(wait)
            raise TooManyRequests(f"A verification e-mail was just sent; try again in {seconds} s.", seconds)
    await _issue(session, user, VERIFY_EMAIL)


async def _spend(session: AsyncSession, token: str, purpose: str) -> VerificationToken:
    row = await VerificationTokenRepository(session).lock_by_hash(hash_token(token), purpose)
    if row is None or not row.usable_at(_now()):
        raise BadRequest(INVALID_LINK)
    row.used_at = _now()
    return row


async def verify_email(session: AsyncSession, token: str) -> User:
    row = await _spend(session, token, VERIFY_EMAIL)
    user = await UserRepository(session).get(row.user_id, for_update=True)
    if user is None:  # cannot happen while the foreign key cascades; answered as an unknown link
        raise BadRequest(INVALID_LINK)
    user.email_verified = True
    return await UserRepository(session).flush(user)


async def request_reset(session: AsyncSession, email: str) -> None:
    """Send a reset link when the address has an active account, at most 3 an hour; the caller answers
    the same whatever happened here."""
    user = await UserRepository(session).get_by_email(email, for_update=True)
    if user is None or not user.is_active:
        return
    recent = await VerificationTokenRepository(session).count_since(
        user.id, PASSWORD_RESET, _now() - timedelta(hours=1)
    )
    if recent >= RESETS_PER_HOUR:
        return
    await _issue(session, user, PASSWORD_RESET)


async def confirm_reset(session: AsyncSession, passwords: Passwords, token: str, new_password: str) -> None:
    row = await _spend(session, token, PASSWORD_RESET)
    user = await UserRepository(session).get(row.user_id, for_update=True)
    if user is None or not user.is_active:
        raise BadRequest(INVALID_LINK)
    user.password_hash = await passwords.hash(new_password)
    await UserRepository(session).flush(user)
    await password_changed(session, user.id)


async def password_changed(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Whatever changed the password: every session ends, and no reset link issued before works."""
    now = _now()
    await RefreshTokenRepository(session).revoke_all_for_user(user_id, now)
    await VerificationTokenRepository(session).use_all(user_id, PASSWORD_RESET, now)
