"""GraphQL end to end with a third-party client (gql, over HTTP and graphql-transport-ws) through the
gateway, against users, orders, notification, realtime and graphql running as processes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.client import AsyncClientSession
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

from graphql_api.limits import MAX_ALIASES, MAX_DEPTH, MAX_QUERY_BYTES
from shared.devstack import Stack

from .conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from .opsstack import PASSWORD, running_stack

pytestmark = [pytest.mark.system, pytest.mark.timeout(180)]

CREATE_ORDER = """
mutation Create($input: CreateOrderInput!, $key: String) {
  createOrder(input: $input, idempotencyKey: $key) { id status totalCents items { sku lineTotalCents } }
}
"""
ORDER_INPUT = {
    "currency": "USD",
    "items": [{"sku": "SKU-1", "name": "Widget", "quantity": 2, "unitPriceCents": 250}],
}


@pytest.fixture(scope="module")
def stack(
    test_database_url: str,
    test_amqp_url: str,
    signing_key_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    with running_stack(
        test_database_url,
        test_amqp_url,
        signing_key_file,
        tmp_path_factory.mktemp("graphql-system"),
        env={"ADMIN_EMAIL": ADMIN_EMAIL, "ADMIN_PASSWORD": ADMIN_PASSWORD, "RATE_LIMIT_SCALE": "1000"},
    ) as stack:
        yield stack


@dataclass(frozen=True)
class Account:
    id: str
    token: str


def login(gateway: str, email: str, password: str) -> str:
    answer = httpx.post(
        gateway + "/api/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": password},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def new_account(gateway: str) -> Account:
    email = f"gql-{uuid.uuid4().hex[:10]}@example.com"
    created = httpx.post(
        gateway + "/api/v1/auth/register",
        json={"email": email, "password": PASSWORD, "full_name": "Graph Q"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    return Account(created.json()["id"], login(gateway, email, PASSWORD))


@asynccontextmanager
async def http_session(stack: Stack, token: str) -> AsyncIterator[AsyncClientSession]:
    transport = HTTPXAsyncTransport(
        url=stack.url("gateway") + "/graphql", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    async with Client(transport=transport) as session:
        yield session


async def refused(session: AsyncClientSession, query: str, variables: dict[str, Any] | None = None) -> Any:
    """The errors of a request that must fail, and its data."""
    with pytest.raises(TransportQueryError) as failed:
        await session.execute(GraphQLRequest(query, variable_values=variables))
    return failed.value.errors, failed.value.data


async def test_an_order_created_by_mutation_arrives_on_the_events_subscription(stack: Stack) -> None:
    alice = new_account(stack.url("gateway"))
    ws_url = stack.url("gateway").replace("http://", "ws://") + f"/graphql?token={alice.token}"
    subscription = WebsocketsTransport(url=ws_url, subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL])
    async with Client(transport=subscription) as live, http_session(stack, alice.token) as session:
        events = live.subscribe(
            GraphQLRequest("subscription { events(since: 0) { offset id event data ts } }")
        )
        # The welcome notification's event is in the stream already: the subscription is live once it comes.
        first = await asyncio.wait_for(anext(events), timeout=30)
        assert first["events"]["offset"] >= 1
        created = await session.execute(
            GraphQLRequest(CREATE_ORDER, variable_values={"input": ORDER_INPUT, "key": uuid.uuid4().hex})
        )
        order = created["createOrder"]
        assert order["status"] == "PENDING"
        assert order["totalCents"] == 500

        async def order_created() -> dict[str, Any]:
            async for frame in events:
                event: dict[str, Any] = frame["events"]
                if event["event"] == "order.created" and order["id"] in str(event["data"]):
                    return event
            raise AssertionError("the stream ended")

        event = await asyncio.wait_for(order_created(), timeout=30)
        assert event["data"]["user_id"] == alice.id
        assert event["offset"] > first["events"]["offset"]


async def test_someone_elses_order_is_not_found(stack: Stack) -> None:
    alice, bob = new_account(stack.url("gateway")), new_account(stack.url("gateway"))
    async with http_session(stack, alice.token) as session:
        created = await session.execute(GraphQLRequest(CREATE_ORDER, variable_values={"input": ORDER_INPUT}))
    async with http_session(stack, bob.token) as session:
        query = "query($id: ID!) { order(id: $id) { id } }"
        errors, data = await refused(session, query, {"id": created["createOrder"]["id"]})
    assert data == {"order": None}
    assert [error["extensions"]["code"] for error in errors] == ["NOT_FOUND"]


async def test_a_user_shipping_an_order_is_forbidden_and_an_admin_may(stack: Stack) -> None:
    alice = new_account(stack.url("gateway"))
    async with http_session(stack, alice.token) as session:
        created = await session.execute(GraphQLRequest(CREATE_ORDER, variable_values={"input": ORDER_INPUT}))
        order_id = created["createOrder"]["id"]
        await session.execute(
            GraphQLRequest(
                "mutation($id: ID!) { payOrder(id: $id) { status } }", variable_values={"id": order_id}
            )
        )
        errors, _ = await refused(
            session, "mutation($id: ID!) { shipOrder(id: $id) { id } }", {"id": order_id}
        )
    assert [error["extensions"]["code"] for error in errors] == ["FORBIDDEN"]
    admin = login(stack.url("gateway"), ADMIN_EMAIL, ADMIN_PASSWORD)
    async with http_session(stack, admin) as session:
        shipped = await session.execute(
            GraphQLRequest(
                "mutation($id: ID!) { shipOrder(id: $id) { status user { id } } }",
                variable_values={"id": order_id},
            )
        )
    assert shipped == {"shipOrder": {"status": "SHIPPED", "user": {"id": alice.id}}}


async def test_an_admin_reads_a_page_of_orders_with_their_users(stack: Stack) -> None:
    alice = new_account(stack.url("gateway"))
    async with http_session(stack, alice.token) as session:
        for _ in range(3):
            await session.execute(GraphQLRequest(CREATE_ORDER, variable_values={"input": ORDER_INPUT}))
    admin = login(stack.url("gateway"), ADMIN_EMAIL, ADMIN_PASSWORD)
    query = """query($userId: ID) {
      orders(first: 2, userId: $userId) {
        edges { cursor node { id user { id fullName } } }
        pageInfo { hasNextPage endCursor }
      }
    }"""
    async with http_session(stack, admin) as session:
        page = (await session.execute(GraphQLRequest(query, variable_values={"userId": alice.id})))["orders"]
        assert page["pageInfo"]["hasNextPage"] is True
        assert [edge["node"]["user"] for edge in page["edges"]] == [
            {"id": alice.id, "fullName": "Graph Q"}
        ] * 2
        rest = await session.execute(
            GraphQLRequest(
                """query($after: String, $userId: ID) {
                  orders(first: 5, after: $after, userId: $userId) { edges { node { id } } }
                }""",
                variable_values={"after": page["pageInfo"]["endCursor"], "userId": alice.id},
            )
        )
    assert len(rest["orders"]["edges"]) == 1


async def test_bad_input_names_the_field(stack: Stack) -> None:
    alice = new_account(stack.url("gateway"))
    bad = {
        "currency": "USD",
        "items": [{"sku": "SKU-1", "name": "Widget", "quantity": 0, "unitPriceCents": 250}],
    }
    async with http_session(stack, alice.token) as session:
        errors, data = await refused(session, CREATE_ORDER, {"input": bad})
    assert data is None
    (error,) = errors
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert [e["field"] for e in error["extensions"]["errors"]] == ["input.items.0.quantity"]


@pytest.mark.parametrize(
    "query",
    [
        # gql sends the query as it prints it (whitespace and comments dropped): the size is in a string.
        '{ order(id: "' + "x" * MAX_QUERY_BYTES + '") { id } }',
        "{ " + "f { " * (MAX_DEPTH + 1) + "id" + " }" * (MAX_DEPTH + 2),
        "{ " + " ".join(f"a{n}: me {{ id }}" for n in range(MAX_ALIASES + 1)) + " }",
    ],
    ids=["size", "depth", "aliases"],
)
async def test_a_query_over_a_limit_is_refused_with_one_error(stack: Stack, query: str) -> None:
    alice = new_account(stack.url("gateway"))
    async with http_session(stack, alice.token) as session:
        errors, data = await refused(session, query)
    assert data is None
    assert [error["extensions"]["code"] for error in errors] == ["BAD_USER_INPUT"]


def test_a_batch_is_refused_and_a_request_without_token_never_reaches_graphql(stack: Stack) -> None:
    alice = new_account(stack.url("gateway"))
    url = stack.url("gateway") + "/graphql"
    batch = httpx.post(
        url,
        json=[{"query": "{ me { id } }"}] * 2,
        headers={"Authorization": f"Bearer {alice.token}"},
        timeout=10,
    )
    assert batch.status_code == 400
    assert [error["extensions"]["code"] for error in batch.json()["errors"]] == ["BAD_USER_INPUT"]
    anonymous = httpx.post(url, json={"query": "{ me { id } }"}, timeout=10)
    assert anonymous.status_code == 401


HOSTILE_MUTATIONS: list[tuple[str, str, dict[str, Any], str]] = [
    # (what, query, variables, the extensions.code expected)
    (
        "control character",
        "mutation($n: String!) { updateMe(fullName: $n) { id } }",
        {"n": "a\u0000b"},
        "BAD_USER_INPUT",
    ),
    (
        "oversized name",
        "mutation($n: String!) { updateMe(fullName: $n) { id } }",
        {"n": "x" * 101},
        "BAD_USER_INPUT",
    ),
    ("wrong type", "mutation($n: String!) { updateMe(fullName: $n) { id } }", {"n": 5}, "BAD_USER_INPUT"),
    (
        "control character in an item",
        CREATE_ORDER,
        {
            "input": {
                "currency": "USD",
                "items": [{"sku": "SKU-1", "name": "bell\u0007", "quantity": 1, "unitPriceCents": 1}],
            }
        },
        "BAD_USER_INPUT",
    ),
    ("not an id", "mutation($id: ID!) { payOrder(id: $id) { id } }", {"id": "../admin"}, "BAD_USER_INPUT"),
    (
        "nobody's notification",
        "mutation($id: ID!) { markNotificationRead(id: $id) { id } }",
        {"id": str(uuid.uuid4())},
        "NOT_FOUND",
    ),
    (
        "wrong type for first",
        "query($f: Int) { orders(first: $f) { edges { cursor } } }",
        {"f": "ten"},
        "BAD_USER_INPUT",
    ),
]


@pytest.mark.parametrize(
    ("what", "query", "variables", "code"), HOSTILE_MUTATIONS, ids=[h[0] for h in HOSTILE_MUTATIONS]
)
async def test_hostile_arguments_get_their_code_and_change_nothing(
    stack: Stack, what: str, query: str, variables: dict[str, Any], code: str
) -> None:
    alice = new_account(stack.url("gateway"))
    async with http_session(stack, alice.token) as session:
        errors, _ = await refused(session, query, variables)
        assert [error["extensions"]["code"] for error in errors] == [code], (what, errors)
        me = await session.execute(GraphQLRequest("{ me { fullName } orders { edges { cursor } } }"))
    assert me["me"]["fullName"] == "Graph Q"
    assert me["orders"]["edges"] == []


@pytest.mark.parametrize("mutation", ["payOrder", "cancelOrder"])
async def test_someone_elses_order_cannot_be_moved(stack: Stack, mutation: str) -> None:
    alice, bob = new_account(stack.url("gateway")), new_account(stack.url("gateway"))
    async with http_session(stack, alice.token) as session:
        created = await session.execute(GraphQLRequest(CREATE_ORDER, variable_values={"input": ORDER_INPUT}))
    order_id = created["createOrder"]["id"]
    async with http_session(stack, bob.token) as session:
        errors, _ = await refused(
            session, f"mutation($id: ID!) {{ {mutation}(id: $id) {{ id }} }}", {"id": order_id}
        )
    assert [error["extensions"]["code"] for error in errors] == ["NOT_FOUND"]
    async with http_session(stack, alice.token) as session:
        again = await session.execute(
            GraphQLRequest("query($id: ID!) { order(id: $id) { status } }", variable_values={"id": order_id})
        )
    assert again["order"]["status"] == "PENDING"


def test_without_a_token_the_gateway_answers_401(stack: Stack) -> None:
    answer = httpx.post(stack.url("gateway") + "/graphql", json={"query": "{ me { id } }"}, timeout=10)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
