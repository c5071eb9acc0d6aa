"""Access tokens for tests, signed as the users service signs them, and the JWKS that publishes the key.

Services under test fetch the JWKS over HTTP (from a ``UsersStandIn`` or a gateway test's upstream) and
verify these tokens exactly as they verify real ones: no verifier is patched.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

# The defaults of every service's settings (JWT_ISSUER, JWT_AUDIENCE).
ISSUER = "http://users"
AUDIENCE = "api"
KID = "test-key-1"


@dataclass
class TokenIssuer:
    """An Ed25519 key with its key id: mints access tokens and publishes the matching JWKS."""

    kid: str = KID
    private: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    def jwks(self) -> dict[str, Any]:
        public = OKPAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": self.kid, "alg": "EdDSA", "use": "sig"}]}

    def claims(
        self,
        user_id: uuid.UUID | str | None = None,
        *,
        ttl: float = 300,
        admin: bool = False,
        **overrides: Any,
    ) -> dict[str, Any]:
        """A valid token's claims (a random subject unless ``user_id``); ``overrides`` replace any."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(user_id or uuid.uuid4()),
            "iat": now,
            "exp": int(now + ttl),
            "jti": uuid.uuid4().hex,
            "roles": ["user", "admin"] if admin else ["user"],
        }
        claims.update(overrides)
        return claims

    def token(
        self,
        user_id: uuid.UUID | str | None = None,
        *,
        kid: str | None = None,
        ttl: float = 300,
        admin: bool = False,
        **overrides: Any,
    ) -> str:
        """A signed access token; ``kid`` names another key id in its header (an unknown key)."""
        claims = self.claims(user_id, ttl=ttl, admin=admin, **overrides)
        return jwt.encode(claims, self.private, algorithm="EdDSA", headers={"kid": kid or self.kid})

    def bearer(self, user_id: uuid.UUID | str | None = None, *, admin: bool = False) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id, admin=admin)}"}
