"""Access-token verification shared by the gateway and every service.

Keys come from a JWKS (cached, refetched when a token names an unknown ``kid``); only asymmetric
algorithms are accepted; ``iss``, ``aud``, ``exp`` are always checked, and a token claiming a longer
life than the issuer gives (``exp - iat``) is refused: a leaked signing key must not mint tokens that
outlive its rotation. Verified tokens are cached until they expire or their key leaves the key set,
so a client that sends the same token many times pays for the signature check once.
Both caches read an injected clock, so tests move time instead of sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import jwt
from jwt import PyJWK

from shared.errors import Unauthorized

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = ("EdDSA", "RS256")

REQUIRED_CLAIMS = ("iss", "aud", "sub", "exp", "iat", "jti")

# The issuer's default access-token lifetime (users' ACCESS_TOKEN_TTL), and the slack allowed above it.
DEFAULT_ACCESS_TOKEN_TTL = 900.0
LIFETIME_GRACE = 60.0

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as the access token says; ``user_id`` is parsed once, here."""

    user_id: uuid.UUID
    roles: tuple[str, ...]
    token_id: str
    expires_at: int
    # The user's full name when the token was issued (contract section 4); "" for older tokens.
    name: str = ""

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


class KeySource(Protocol):
    async def get_keys(self, *, refresh: bool = False) -> dict[str, PyJWK]: ...


def parse_jwks(document: dict[str, Any]) -> dict[str, PyJWK]:
    keys: dict[str, PyJWK] = {}
    for entry in document.get("keys", []):
        kid = entry.get("kid")
        if not kid or entry.get("use", "sig") != "sig" or entry.get("alg") not in ALLOWED_ALGORITHMS:
            continue
        try:
            keys[kid] = PyJWK.from_dict(entry)
        except jwt.PyJWTError:
            log.warning("skipping unusable JWKS key", extra={"kid": kid})
    return keys


class StaticKeySource:
    """Keys known in-process (the issuer itself, and unit tests)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._keys = parse_jwks(document)

    async def get_keys(self, *, refresh: bool = False) -> dict[str, PyJWK]:
        return self._keys


class JwksKeySource:
    """Fetches the issuer's JWKS over HTTP: again after ``ttl`` seconds, or on an unknown ``kid`` at
    most every ``min_refresh`` seconds.

    While the issuer fails, the keys it gave last keep serving and the next attempt waits (doubling
    from ``min_refresh`` up to ``max_backoff``): a stream of tokens with made-up key ids must not
    become a stream of requests to an issuer that is already in trouble.
    """

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        *,
        ttl: float = 300.0,
        min_refresh: float = 10.0,
        max_backoff: float = 300.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.url = url
        self.client = client
        self.ttl = ttl
        self.min_refresh = min_refresh
        self.max_backoff = max_backoff
        self.clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at = float("-inf")
        self._attempted_at = float("-inf")
        self._backoff = 0.0
        self._lock = asyncio.Lock()

    def _due(self, refresh: bool) -> bool:
        now = self.clock()
        if now - self._attempted_at < max(self._backoff, self.min_refresh if refresh else 0.0):
            return False
        return now - self._fetched_at >= self.ttl or refresh

    async def get_keys(self, *, refresh: bool = False) -> dict[str, PyJWK]:
        if not self._due(refresh):
            return self._keys
        async with self._lock:
            if not self._due(refresh):
                return self._keys
            self._attempted_at = self.clock()
            try:
                response = await self.client.get(self.url, timeout=5.0)
                response.raise_for_status()
                self._keys = parse_jwks(response.json())
            except (httpx.HTTPError, ValueError) as exc:
                self._backoff = min(self.max_backoff, max(self.min_refresh, 2 * self._backoff))
                log.warning(
                    "JWKS fetch failed", extra={"url": self.url, "error": str(exc), "retry_in": self._backoff}
                )
            else:
                self._fetched_at = self._attempted_at
                self._backoff = 0.0
            return self._keys


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    kid: str


class TokenVerifier:
    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        leeway: int = 5,
        cache_size: int = 10_000,
        access_token_ttl: float = DEFAULT_ACCESS_TOKEN_TTL,
        clock: Clock = time.time,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.cache_size = cache_size
        self.max_lifetime = access_token_ttl + LIFETIME_GRACE
        # Wall-clock seconds, like ``exp``. PyJWT checks ``exp`` against its own clock on the first
        # verification; this one decides for every verification, cached or not.
        self.clock = clock
        self._cache: OrderedDict[str, _Verified] = OrderedDict()

    async def verify(self, token: str) -> Principal:
        verified = self._cache.get(token)
        if verified is not None and verified.kid not in await self.keys.get_keys():
            # Its key was withdrawn (a rotation after a leak): verify afresh, which refuses it.
            del self._cache[token]
            verified = None
        if verified is None:
            verified = await self._verify_signature(token)
            self._cache[token] = verified
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(token)
        if verified.principal.expires_at + self.leeway <= self.clock():
            self._cache.pop(token, None)
            raise Unauthorized("The access token has expired.")
        return verified.principal

    async def _verify_signature(self, token: str) -> _Verified:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("The access token is malformed.") from exc
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALLOWED_ALGORITHMS:
            raise Unauthorized("The access token's algorithm is not accepted.")
        if not isinstance(kid, str):
            raise Unauthorized("The access token names no key.")
        keys = await self.keys.get_keys()
        if kid not in keys:
            keys = await self.keys.get_keys(refresh=True)
        key = keys.get(kid)
        if key is None:
            raise Unauthorized("The access token was signed by an unknown key.")
        if key.algorithm_name != alg:
            raise Unauthorized("The access token's algorithm does not match its key.")
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The access token has expired.") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("The access token is not valid.") from exc
        lifetime = claims["exp"] - claims["iat"]
        if not isinstance(lifetime, int | float) or lifetime > self.max_lifetime:
            raise Unauthorized("The access token claims a longer life than its issuer gives.")
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise Unauthorized("The access token's roles are malformed.")
        try:
            user_id = uuid.UUID(str(claims["sub"]))
        except ValueError as exc:
            raise Unauthorized("The access token's subject is not a user id.") from exc
        principal = Principal(
            user_id=user_id,
            roles=tuple(roles),
            token_id=str(claims["jti"]),
            expires_at=int(claims["exp"]),
            name=name if isinstance(name := claims.get("name"), str) else "",
        )
        return _Verified(principal, kid)


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
