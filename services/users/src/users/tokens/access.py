"""Access tokens: short-lived EdDSA JWTs that every service verifies with the shared verifier."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import jwt

from users.tokens.keys import ALGORITHM, SigningKey


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_in: int


class AccessTokenIssuer:
    def __init__(self, key: SigningKey, *, issuer: str, audience: str, ttl: timedelta) -> None:
        self._key = key
        self._issuer = issuer
        self._audience = audience
        self._ttl = int(ttl.total_seconds())

    def issue(
        self, user_id: uuid.UUID, roles: Sequence[str], *, name: str = "", now: float | None = None
    ) -> AccessToken:
        issued_at = int(time.time() if now is None else now)
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": str(user_id),
            "iat": issued_at,
            "exp": issued_at + self._ttl,
            "jti": uuid.uuid4().hex,
            "roles": list(roles),
            # The full name at issue time: realtime shows it beside room messages without asking users.
            "name": name,
        }
        # typ "at+jwt" (RFC 9068) keeps an access token from being mistaken for another kind of JWT.
        token = jwt.encode(
            claims,
            self._key.private_key,
            algorithm=ALGORITHM,
            headers={"kid": self._key.kid, "typ": "at+jwt"},
        )
        return AccessToken(token=token, expires_in=self._ttl)
