"""Access-token verification shared by the gateway and every service.

Keys come from a JWKS (cached, refetched when a token names an unknown ``kid``); only asymmetric
algorithms are accepted; ``iss``, ``aud``, ``exp`` are always checked. Verified tokens are cached until
they expire, so a client that sends the same token many times pays for the signature check once.
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
    """Fetches the issuer's JWKS over HTTP; refetches at most every ``min_refresh`` seconds."""

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        *,
        ttl: float = 300.0,
        min_refresh: float = 10.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.url = url
        self.client = client
        self.ttl = ttl
        self.min_refresh = min_refresh
        self.clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def get_keys(self, *, refresh: bool = False) -> dict[str, PyJWK]:
        age = self.clock() - self._fetched_at
        if age < self.ttl and not (refresh and age >= self.min_refresh):
            return self._keys
        async with self._lock:
            age = self.clock() - self._fetched_at
            if age < self.ttl and not (refresh and age >= self.min_refresh):
                return self._keys
            try:
                response = await self.client.get(self.url, timeout=5.0)
                response.raise_for_status()
                self._keys = parse_jwks(response.json())
                self._fetched_at = self.clock()
            except (httpx.HTTPError, ValueError) as exc:
                # Keep serving the keys we had; the next unknown kid tries again.
                log.warning("JWKS fetch failed", extra={"url": self.url, "error": str(exc)})
                self._fetched_at = self.clock() - self.ttl + self.min_refresh
            return self._keys


class TokenVerifier:
    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        leeway: int = 5,
        cache_size: int = 10_000,
        clock: Clock = time.time,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.cache_size = cache_size
        # Wall-clock seconds, like ``exp``. PyJWT checks ``exp`` against its own clock on the first
        # verification; this one decides for every verification, cached or not.
        self.clock = clock
        self._cache: OrderedDict[str, Principal] = OrderedDict()

    async def verify(self, token: str) -> Principal:
        principal = self._cache.get(token)
        if principal is None:
            principal = await self._verify_signature(token)
            self._cache[token] = principal
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(token)
        if principal.expires_at + self.leeway <= self.clock():
            self._cache.pop(token, None)
            raise Unauthorized("The access token has expired.")
        return principal

    async def _verify_signature(self, token: str) -> Principal:
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
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise Unauthorized("The access token's roles are malformed.")
        try:
            user_id = uuid.UUID(str(claims["sub"]))
        except ValueError as exc:
            raise Unauthorized("The access token's subject is not a user id.") from exc
        return Principal(
            user_id=user_id,
            roles=tuple(roles),
            token_id=str(claims["jti"]),
            expires_at=int(claims["exp"]),
            name=name if isinstance(name := claims.get("name"), str) else "",
        )


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
