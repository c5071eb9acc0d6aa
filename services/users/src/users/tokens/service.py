"""The grants: password and refresh token (with rotation and reuse detection), and revocation.

Each flow owns its transactions: a refused refresh must still commit the revocation it caused, so
the outcome is decided inside the transaction and raised only after the commit.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NoReturn

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.unit_of_work import unit_of_work
from shared.errors import TooManyRequests
from users.accounts.models import User
from users.accounts.passwords import Passwords
from users.accounts.repository import UserRepository
from users.throttling.service import Attempt, LoginThrottle
from users.tokens.access import AccessTokenIssuer
from users.tokens.errors import OAuthError
from users.tokens.models import RefreshToken
from users.tokens.repository import RefreshTokenRepository

BAD_CREDENTIALS = "The e-mail or password is not correct."
DEACTIVATED = "The account is deactivated."


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str


def hash_refresh_token(token: str) -> bytes:
    # Refresh tokens are 256 random bits, so a plain SHA-256 (no salt, no stretching) is enough.
    return hashlib.sha256(token.encode()).digest()


class TokenService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        passwords: Passwords,
        throttle: LoginThrottle,
        issuer: AccessTokenIssuer,
        refresh_ttl: timedelta,
    ) -> None:
        self._sessions = sessions
        self._passwords = passwords
        self._throttle = throttle
        self._issuer = issuer
        self._refresh_ttl = refresh_ttl

    async def password_grant(self, username: str, password: str, ip: str) -> TokenPair:
        try:
            attempt = await self._throttle.begin(username, ip)
        except TooManyRequests as exc:
            raise OAuthError("invalid_request", exc.detail, status=429, headers=exc.headers) from exc
        # Look up, then verify outside any transaction: argon2 takes tens of milliseconds and
        # should not hold a pooled connection meanwhile.
        async with self._sessions() as session:
            user = await UserRepository(session).get_by_email(username)
        if user is None:
            await self._passwords.verify_nobody(password)
            self._failed(attempt)
        verification = await self._passwords.verify(user.password_hash, password)
        if not verification.ok:
            self._failed(attempt)
        await self._throttle.succeeded(attempt)
        async with unit_of_work(self._sessions) as uow:
            current = await UserRepository(uow.session).get(user.id, for_update=True)
            if current is None or not current.is_active:
                pair = None
            else:
                if verification.new_hash and current.password_hash == user.password_hash:
                    current.password_hash = verification.new_hash
                pair = await self._issue(uow.session, current, family_id=uuid.uuid4())
        if pair is None:
            raise OAuthError("invalid_grant", DEACTIVATED)
        return pair

    def _failed(self, attempt: Attempt) -> NoReturn:
        try:
            self._throttle.failed(attempt)
        except TooManyRequests as exc:
            raise OAuthError("invalid_request", exc.detail, status=429, headers=exc.headers) from exc
        raise OAuthError("invalid_grant", BAD_CREDENTIALS)

    async def refresh_grant(self, refresh_token: str) -> TokenPair:
        failure: str | None = None
        pair: TokenPair | None = None
        async with unit_of_work(self._sessions) as uow:
            tokens = RefreshTokenRepository(uow.session)
            row = await tokens.lock_by_hash(hash_refresh_token(refresh_token))
            now = datetime.now(UTC)
            if row is None:
                failure = "The refresh token is not valid."
            elif row.revoked_at is not None:
                failure = "The refresh token has been revoked."
            elif row.used_at is not None:
                # A second use means the token leaked: end the session for both holders.
                await tokens.revoke_family(row.family_id, now)
                failure = "The refresh token was already used; its session has been revoked."
            elif row.expires_at <= now:
                failure = "The refresh token has expired."
            else:
                user = await UserRepository(uow.session).get(row.user_id)
                if user is None or not user.is_active:
                    await tokens.revoke_family(row.family_id, now)
                    failure = DEACTIVATED
                else:
                    row.used_at = now
                    pair = await self._issue(uow.session, user, family_id=row.family_id)
        if pair is None:
            raise OAuthError("invalid_grant", failure or "The refresh token is not valid.")
        return pair

    async def revoke(self, token: str) -> None:
        """Revoke the session (token family) the refresh token belongs to; unknown tokens are ignored."""
        async with unit_of_work(self._sessions) as uow:
            tokens = RefreshTokenRepository(uow.session)
            row = await tokens.find_by_hash(hash_refresh_token(token))
            if row is not None:
                await tokens.revoke_family(row.family_id, datetime.now(UTC))

    async def _issue(self, session: AsyncSession, user: User, *, family_id: uuid.UUID) -> TokenPair:
        refresh = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        await RefreshTokenRepository(session).add(
            RefreshToken(
                user_id=user.id,
                family_id=family_id,
                token_hash=hash_refresh_token(refresh),
                expires_at=now + self._refresh_ttl,
            )
        )
        access = self._issuer.issue(user.id, user.roles, name=user.full_name)
        return TokenPair(access_token=access.token, expires_in=access.expires_in, refresh_token=refresh)
