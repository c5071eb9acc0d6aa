"""What operators and other services rely on: health, readiness, JWKS, the OpenAPI document."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from prometheus_client import generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.auth.verifier import JwksKeySource, TokenVerifier
from users.app import create_app

pytestmark = pytest.mark.integration


async def test_health_and_readiness(client: Any) -> None:
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    assert (await client.get("/metrics")).status_code == 200


async def test_readiness_names_the_database_when_it_is_gone(run_app: Any) -> None:
    async with run_app() as (app, client):
        engine: AsyncEngine = app.state.resources.engine
        await engine.dispose()
        # Point the check at a server that does not exist, as if Postgres had stopped.
        from shared.db.engine import make_engine, ping

        dead = make_engine("postgresql://nobody@127.0.0.1:1/none", schema="users")
        app.state.readiness["database"] = lambda: ping(dead)
        try:
            response = await client.get("/readyz")
        finally:
            await dead.dispose()
        assert response.status_code == 503
        assert "database" in response.json()["detail"]


async def test_jwks_publishes_the_signing_key(api: Any) -> None:
    response = await api.client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert {key["kty"], key["crv"], key["alg"], key["use"]} == {"OKP", "Ed25519", "EdDSA", "sig"}
    assert "d" not in key, "never the private part"
    await api.register("jwks@example.com")
    token = (await api.tokens("jwks@example.com"))["access_token"]
    assert jwt.get_unverified_header(token)["kid"] == key["kid"]


async def test_a_verifier_fetching_the_jwks_over_http_accepts_our_tokens(api: Any) -> None:
    """What the gateway and the other services do with these tokens."""
    await api.register("remote@example.com")
    token = (await api.tokens("remote@example.com"))["access_token"]
    source = JwksKeySource("http://users.test/.well-known/jwks.json", api.client)
    verifier = TokenVerifier(source, issuer="http://users", audience="api")
    principal = await verifier.verify(token)
    assert principal.roles == ("user",)


async def test_openapi_declares_the_oauth2_password_flow(client: Any) -> None:
    document = (await client.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    flows = [s["flows"]["password"]["tokenUrl"] for s in schemes.values() if s["type"] == "oauth2"]
    assert flows == ["/api/v1/auth/token"]
    assert document["paths"]["/api/v1/users/me"]["get"]["security"]
    assert "security" not in document["paths"]["/api/v1/auth/register"]["post"]
    form = document["paths"]["/api/v1/auth/token"]["post"]["requestBody"]["content"]
    assert "application/x-www-form-urlencoded" in form
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation.get("description"), (method, path)


async def test_request_id_is_echoed(client: Any) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"


async def test_oversized_body_is_413(client: Any) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        content=b"x" * (1024 * 1024 + 1),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413


async def test_one_app_starts_again_after_a_stop_with_its_metrics_made_once(make_settings: Any) -> None:
    """Metrics belong to the app, not to a lifespan: a second start registers nothing twice."""
    app = create_app(make_settings())
    for _ in range(2):
        async with app.router.lifespan_context(app):
            pass
    metrics = generate_latest(app.state.registry).decode()
    assert 'worker_up{worker="outbox-relay"} 0.0' in metrics
    assert "outbox_published_total" in metrics
