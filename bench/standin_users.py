"""A users stand-in without a database, to measure the gateway's own cost against a fast upstream.

``gateway_bench.py --standin`` runs it instead of the real users service: the same shared app skeleton
(middleware, problem+json, token verification), but ``/api/v1/users/me`` answers from memory. The real
service spends milliseconds in Postgres per request, which hides how much the proxy itself costs.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from fastapi import Form

from shared.auth.verifier import StaticKeySource, TokenVerifier
from shared.service.dependencies import CurrentPrincipal
from shared.service.settings import BaseServiceSettings
from shared.testing.tokens import TokenIssuer
from shared.web.app import create_base_app
from shared.web.server import serve

KID = "bench-standin"


def main() -> None:
    settings = BaseServiceSettings()
    issuer = TokenIssuer(kid=KID)
    jwks = issuer.jwks()
    app = create_base_app(title="users stand-in")
    app.state.token_verifier = TokenVerifier(
        StaticKeySource(jwks), issuer=settings.jwt_issuer, audience=settings.jwt_audience
    )
    by_email: dict[str, dict[str, Any]] = {}
    by_id: dict[str, dict[str, Any]] = {}

    @app.get("/.well-known/jwks.json")
    async def keyset() -> dict[str, Any]:
        return jwks

    @app.post("/api/v1/auth/register", status_code=201)
    async def register(body: dict[str, Any]) -> dict[str, Any]:
        user = {
            "id": str(uuid.uuid4()),
            "email": body["email"],
            "full_name": body["full_name"],
            "roles": ["user"],
            "is_active": True,
            "created_at": "2026-01-01T00:00:00Z",
        }
        by_email[user["email"]] = by_id[user["id"]] = user
        return user

    @app.post("/api/v1/auth/token")
    async def token(username: str = Form(), password: str = Form()) -> dict[str, Any]:
        user_id = by_email[username]["id"]
        access = issuer.token(user_id, ttl=3600, iss=settings.jwt_issuer, aud=settings.jwt_audience)
        return {"access_token": access, "token_type": "bearer", "expires_in": 3600, "refresh_token": "x"}

    @app.get("/api/v1/users/me")
    async def me(principal: CurrentPrincipal) -> dict[str, Any]:
        return by_id[str(principal.user_id)]

    serve(app, settings, service="users-standin", port=int(os.environ.get("USERS_PORT", "8001")))


if __name__ == "__main__":
    main()
