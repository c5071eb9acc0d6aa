"""The published schema, the component's shape (health, metrics, request id) and its configuration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from graphql_api.schema import sdl
from graphql_api.services import Services
from graphql_api.settings import Settings
from graphql_testing import GraphQLClient, settings
from shared.http import PoolTransport

SCHEMA_FILE = Path(__file__).resolve().parents[3] / "docs" / "schema.graphql"


def test_docs_schema_graphql_is_the_schema_the_code_serves() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == sdl(), (
        "docs/schema.graphql is stale: run `python -m graphql_api schema --output docs/schema.graphql`"
    )


def test_the_schema_command_prints_it(tmp_path: Path) -> None:
    out = tmp_path / "schema.graphql"
    subprocess.run(
        [sys.executable, "-m", "graphql_api", "schema", "--output", str(out)], check=True, timeout=240
    )
    assert out.read_text(encoding="utf-8") == sdl()


def test_the_contracts_operations_are_in_the_schema() -> None:
    text = sdl()
    for line in [
        "me: User!",
        "user(id: ID!): User",
        "users(first: Int = 20, after: String): UserConnection!",
        "order(id: ID!): Order",
        "orders(first: Int = 20, after: String, status: OrderStatus, userId: ID): OrderConnection!",
        "notifications(first: Int = 20, after: String, unreadOnly: Boolean = false): NotificationConnection!",
        "unreadCount: Int!",
        "rooms(first: Int = 20, after: String): RoomConnection!",
        "room(id: ID!): Room",
        "updateMe(fullName: String!): User!",
        "createOrder(input: CreateOrderInput!, idempotencyKey: String): Order!",
        "payOrder(id: ID!): Order!",
        "cancelOrder(id: ID!): Order!",
        "shipOrder(id: ID!): Order!",
        "deliverOrder(id: ID!): Order!",
        "markNotificationRead(id: ID!): Notification!",
        "markAllNotificationsRead: Int!",
        "createRoom(name: String!, topic: String): Room!",
        "postMessage(roomId: ID!, text: String!, clientId: ID): RoomMessage!",
        "events(since: Int): StreamEvent!",
        "roomMessages(roomId: ID!, since: Int): RoomMessage!",
        "messages(first: Int = 20, after: String): RoomMessageConnection!",
        "user: User",
        "scalar Long",
        'scalar JSON @specifiedBy(url: "https://ecma-international.org/wp-content/uploads/ECMA-404_2nd_edition_december_2017.pdf")',
        "user: User!",
        "hasNextPage: Boolean!",
        "endCursor: String",
    ]:
        assert f"  {line}\n" in text or f"{line}" in text.splitlines(), line


async def test_health_readiness_and_metrics(gql: GraphQLClient) -> None:
    assert (await gql.client.get("/healthz")).status_code == 200
    assert (await gql.client.get("/readyz")).status_code == 200
    metrics = await gql.client.get("/metrics")
    assert metrics.status_code == 200
    assert "http_requests" in metrics.text or "http_request" in metrics.text


async def test_the_request_id_is_echoed(gql: GraphQLClient) -> None:
    response = await gql.post({"query": "{ __typename }"}, headers={"X-Request-ID": "abc-1"})
    assert response.headers["x-request-id"] == "abc-1"


def test_production_refuses_the_development_service_token() -> None:
    with pytest.raises(ValidationError, match="GRAPHQL_USERS_SERVICE_TOKEN"):
        Settings(environment="production")
    assert (
        Settings(
            environment="production", users_service_token="a-real-one-long-enough-for-production-32+"
        ).port
        == 8005
    )


async def test_every_service_is_reached_over_the_shared_fast_transport() -> None:
    async with Services.open(settings()) as services:
        assert set(services.clients) == {"users", "orders", "notification", "realtime"}
        for client in services.clients.values():
            assert isinstance(client._transport, PoolTransport)


@pytest.mark.parametrize("url", ["https://users:8001", "http://users:8001/api", "users:8001", "http://:8001"])
def test_a_service_url_the_pool_cannot_reach_stops_the_start(url: str) -> None:
    with pytest.raises(ValidationError, match="GRAPHQL_USERS_URL must be http://host:port"):
        Settings(users_url=url)
    assert Settings(users_url="http://users:8001/").users_url == "http://users:8001"
