"""The graphql tests' stand-ins: the services behind ``httpx.MockTransport`` (canned answers, every
request recorded) and a client for the app over ASGI."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from graphql_api.app import create_app
from graphql_api.settings import Settings
from shared.testing.tokens import TokenIssuer

PORTS = {"users": 18001, "orders": 18002, "notification": 18003, "realtime": 18004}
SERVICES = {port: name for name, port in PORTS.items()}
BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)

Handler = Callable[[httpx.Request], httpx.Response]


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {f"{name}_url": f"http://127.0.0.1:{port}" for name, port in PORTS.items()}
    values.update(environment="test", users_service_token="service-token-for-tests")
    values.update(overrides)
    return Settings(**values)


def problem(status: int, detail: str = "refused", **extra: Any) -> httpx.Response:
    body = {"type": "about:blank", "title": "x", "status": status, "detail": detail, **extra}
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


def user(user_id: str | None = None, name: str = "Ada") -> dict[str, Any]:
    return {
        "id": user_id or str(uuid.uuid4()),
        "email": f"{name.lower()}@example.com",
        "full_name": name,
        "roles": ["user"],
        "is_active": True,
        "created_at": BASE_TIME.isoformat(),
    }


def order(user_id: str, n: int = 0, status: str = "pending") -> dict[str, Any]:
    created = (BASE_TIME - timedelta(minutes=n)).isoformat().replace("+00:00", "Z")
    return {
        "id": str(uuid.uuid4()),
        "user_id": user_id,
        "status": status,
        "currency": "USD",
        "items": [
            {
                "sku": "SKU-1",
                "name": "Widget",
                "quantity": 2,
                "unit_price_cents": 250,
                "line_total_cents": 500,
            }
        ],
        "total_cents": 500,
        "created_at": created,
        "updated_at": created,
    }


@dataclass
class FakeServices:
    """Routes ``(service, method, path)`` to a handler; unrouted requests are 404 problems."""

    routes: dict[tuple[str, str, str], Handler] = field(default_factory=dict)
    calls: list[tuple[str, httpx.Request]] = field(default_factory=list)
    down: set[str] = field(default_factory=set)
    # users' signing key: graphql verifies every caller's token against its JWKS.
    keys: TokenIssuer = field(default_factory=TokenIssuer)

    def on(self, service: str, method: str, path: str, answer: Handler | httpx.Response | Any) -> None:
        if isinstance(answer, httpx.Response):
            response = answer
            self.routes[(service, method, path)] = lambda _: response
        elif callable(answer):
            self.routes[(service, method, path)] = answer
        else:
            self.routes[(service, method, path)] = lambda _: httpx.Response(200, json=answer)

    def handle(self, request: httpx.Request) -> httpx.Response:
        service = SERVICES[request.url.port or 80]
        if (service, request.url.path) == ("users", "/.well-known/jwks.json"):
            return httpx.Response(200, json=self.keys.jwks())  # not a call the tests count
        self.calls.append((service, request))
        if service in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        handler = self.routes.get((service, request.method, request.url.path))
        if handler is None:
            return problem(404, "No such thing.")
        return handler(request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def called(self, service: str, path: str | None = None) -> list[httpx.Request]:
        return [r for s, r in self.calls if s == service and (path is None or r.url.path == path)]


class GraphQLClient:
    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self.client = client
        self.token = token

    async def post(self, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.post(
            "/graphql", json=body, headers={"Authorization": f"Bearer {self.token}", **(headers or {})}
        )

    async def run(
        self, query: str, variables: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        response = await self.post({"query": query, "variables": variables or {}}, headers)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


async def serve(fake: FakeServices, **overrides: Any) -> AsyncIterator[GraphQLClient]:
    app = create_app(settings(**overrides), transport=fake.transport())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://graphql.test") as client:
            yield GraphQLClient(client, fake.keys.token())
