"""Everything the lifespan builds, in one place: the service clients and the token verifier."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from graphql_api.services import Services
from graphql_api.settings import Settings
from shared.auth.verifier import JwksKeySource, TokenVerifier
from shared.http import ServiceClient
from shared.web.health import ReadinessCheck


@dataclass(frozen=True, slots=True)
class Resources:
    settings: Settings
    services: Services
    verifier: TokenVerifier

    def readiness(self) -> dict[str, ReadinessCheck]:
        # Nothing it cannot serve without: with a service down, only the fields that need it fail
        # (UNAVAILABLE), and cached keys keep verifying tokens while users is down.
        return {}


@asynccontextmanager
async def open_resources(
    settings: Settings, transport: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[Resources]:
    """``transport`` stands in for the network in tests (``httpx.MockTransport``)."""
    async with (
        Services.open(settings, transport) as services,
        ServiceClient(timeout=5.0, transport=transport) as http,
    ):
        # Tokens are verified here too, as every service does: a bad one costs no service call.
        keys = JwksKeySource(f"{settings.users_url}/.well-known/jwks.json", http)
        verifier = TokenVerifier(keys, issuer=settings.jwt_issuer, audience=settings.jwt_audience)
        yield Resources(settings=settings, services=services, verifier=verifier)
