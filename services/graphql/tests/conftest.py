from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from graphql_api.app import create_app

from .fakes import FakeServices, settings


@pytest.fixture
def fake() -> FakeServices:
    return FakeServices()


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


@pytest.fixture
async def gql(fake: FakeServices) -> AsyncIterator[GraphQLClient]:
    async for client in serve(fake):
        yield client
