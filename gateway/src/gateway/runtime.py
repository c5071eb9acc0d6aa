"""Everything the gateway builds at start-up, in one place the lifespan opens and closes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from jwt import PyJWK
from prometheus_client import CollectorRegistry

from gateway.metrics import UpstreamMetrics
from gateway.openapi import OpenApiAggregator
from gateway.routing import RoutingTable
from gateway.settings import GatewaySettings
from shared.auth.verifier import JwksKeySource, KeySource, TokenVerifier
from shared.errors import UpstreamUnavailable
from shared.http import ServiceClient, UpstreamPool
from shared.web.health import ReadinessCheck


class RequiredKeySource:
    """A JWKS that yielded no key at all means the issuer is down: 503, not a misleading 401."""

    def __init__(self, inner: KeySource) -> None:
        self.inner = inner

    async def get_keys(self, *, refresh: bool = False) -> dict[str, PyJWK]:
        keys = await self.inner.get_keys(refresh=refresh)
        if not keys:
            raise UpstreamUnavailable("The token issuer's signing keys cannot be fetched.", retry_after=5)
        return keys


class GatewayRuntime:
    """Built by ``create_app``; its clients exist only between ``open()`` and the end of the lifespan.

    The ASGI middleware is instantiated before the lifespan runs, so it holds this object and reads
    the clients from it per request.
    """

    def __init__(self, settings: GatewaySettings, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.table = RoutingTable(settings.routes, settings.upstream_urls)
        self.metrics = UpstreamMetrics.create(registry, self.table.upstreams)
        self._pools: dict[str, UpstreamPool] | None = None
        self._http: httpx.AsyncClient | None = None
        self._verifier: TokenVerifier | None = None
        self._openapi: OpenApiAggregator | None = None

    @asynccontextmanager
    async def open(self) -> AsyncIterator[None]:
        settings = self.settings
        timeout = httpx.Timeout(5.0, connect=settings.connect_timeout)
        async with ServiceClient(timeout=timeout) as http:
            self._http = http
            self._pools = {
                name: UpstreamPool(
                    url, max_idle=settings.upstream_pool_size, connect_timeout=settings.connect_timeout
                )
                for name, url in self.table.upstreams.items()
            }
            keys = RequiredKeySource(JwksKeySource(settings.jwks_url, http))
            self._verifier = TokenVerifier(
                keys,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                access_token_ttl=settings.access_token_ttl.total_seconds(),
            )
            self._openapi = OpenApiAggregator(self.table, http, ttl=settings.openapi_ttl)
            try:
                yield
            finally:
                for pool in self._pools.values():
                    pool.close()
                self._http = self._pools = self._verifier = self._openapi = None

    @property
    def pools(self) -> dict[str, UpstreamPool]:
        """One keep-alive pool per upstream name."""
        if self._pools is None:
            raise RuntimeError("the gateway is not running (lifespan not started)")
        return self._pools

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            raise RuntimeError("the gateway is not running (lifespan not started)")
        return self._http

    @property
    def verifier(self) -> TokenVerifier:
        if self._verifier is None:
            raise RuntimeError("the gateway is not running (lifespan not started)")
        return self._verifier

    @property
    def openapi(self) -> OpenApiAggregator:
        if self._openapi is None:
            raise RuntimeError("the gateway is not running (lifespan not started)")
        return self._openapi

    def readiness(self) -> dict[str, ReadinessCheck]:
        # Only the keys: the gateway stays ready while an upstream is down (each route answers 503).
        return {"users_jwks": self.check_jwks}

    async def check_jwks(self) -> None:
        """Readiness: the gateway holds the issuer's signing keys, fetched now or earlier.

        Once fetched, keys stay cached while users is down and still verify tokens, so a users outage
        does not take the whole API out of rotation (contract section 3); only a gateway that has never
        obtained a key cannot verify anything.
        """
        await self.verifier.keys.get_keys()
