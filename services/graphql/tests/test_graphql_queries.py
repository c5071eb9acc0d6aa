"""Queries and mutations against stand-in services: what is called, with which credentials, and how
the services' answers and refusals reach the GraphQL client."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson

from graphql_testing import FakeServices, GraphQLClient, order, problem, user

ORDERS_PAGE = """
query Page($first: Int, $after: String) {
  orders(first: $first, after: $after) {
    edges {
      cursor
      node { id status totalCents items { sku unitPriceCents lineTotalCents } user { fullName } }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""


def users_batch(users: dict[str, dict[str, Any]]) -> Any:
    def handle(request: httpx.Request) -> httpx.Response:
        ids = request.url.params["ids"].split(",")
        return httpx.Response(200, json={"items": [users[i] for i in ids if i in users]})

    return handle


async def test_a_page_of_50_orders_of_20_users_costs_one_users_call(
    gql: GraphQLClient, fake: FakeServices
) -> None:
    owners = {u["id"]: u for u in (user(name=f"User{n}") for n in range(20))}
    ids = list(owners)
    orders = [order(ids[n % 20], n) for n in range(50)]
    fake.on("orders", "GET", "/api/v1/orders", {"items": orders, "next_cursor": "next-page"})
    fake.on("users", "GET", "/internal/users", users_batch(owners))

    result = await gql.run(ORDERS_PAGE, {"first": 50})

    assert "errors" not in result, result
    edges = result["data"]["orders"]["edges"]
    assert [e["node"]["user"]["fullName"] for e in edges] == [
        owners[o["user_id"]]["full_name"] for o in orders
    ]
    batch = fake.called("users", "/internal/users")
    assert len(batch) == 1
    assert sorted(batch[0].url.params["ids"].split(",")) == sorted(ids)
    # The service credential, never the caller's token, on the internal call.
    assert batch[0].headers["x-service-token"] == "service-token-for-tests"
    assert "authorization" not in batch[0].headers
    assert fake.called("orders")[0].url.params["limit"] == "50"


async def test_connections_carry_rest_cursors_and_page_info(gql: GraphQLClient, fake: FakeServices) -> None:
    owner = user()
    fake.on(
        "orders",
        "GET",
        "/api/v1/orders",
        {"items": [order(owner["id"], n) for n in range(3)], "next_cursor": None},
    )
    fake.on("users", "GET", "/internal/users", users_batch({owner["id"]: owner}))

    page = (await gql.run(ORDERS_PAGE, {"first": 3, "after": "abc"}))["data"]["orders"]

    assert page["pageInfo"] == {"hasNextPage": False, "endCursor": page["edges"][-1]["cursor"]}
    assert len({edge["cursor"] for edge in page["edges"]}) == 3
    assert fake.called("orders")[0].url.params["cursor"] == "abc"
    first = page["edges"][0]["node"]
    assert first["totalCents"] == 500
    assert first["items"] == [{"sku": "SKU-1", "unitPriceCents": 250, "lineTotalCents": 500}]


async def test_the_callers_token_and_request_id_reach_every_service(
    gql: GraphQLClient, fake: FakeServices
) -> None:
    fake.on("users", "GET", "/api/v1/users/me", user(name="Me"))
    fake.on("notification", "GET", "/api/v1/notifications/unread-count", {"count": 3})

    result = await gql.run("{ me { fullName } unreadCount }", headers={"X-Request-ID": "req-123"})

    assert result == {"data": {"me": {"fullName": "Me"}, "unreadCount": 3}}
    for service in ("users", "notification"):
        (request,) = fake.called(service)
        assert request.headers["authorization"] == f"Bearer {gql.token}"
        assert request.headers["x-request-id"] == "req-123"


async def test_create_order_forwards_the_idempotency_key_and_the_input(
    gql: GraphQLClient, fake: FakeServices
) -> None:
    owner = user()
    created = order(owner["id"])
    fake.on("orders", "POST", "/api/v1/orders", httpx.Response(201, json=created))
    mutation = """mutation($input: CreateOrderInput!) {
      createOrder(input: $input, idempotencyKey: "key-1") { id status }
    }"""
    variables = {
        "input": {"currency": "USD", "items": [{"sku": "A", "name": "B", "quantity": 1, "unitPriceCents": 5}]}
    }

    result = await gql.run(mutation, variables)

    assert result == {"data": {"createOrder": {"id": created["id"], "status": "PENDING"}}}
    (request,) = fake.called("orders")
    assert request.headers["idempotency-key"] == "key-1"
    assert orjson.loads(request.content) == {
        "currency": "USD",
        "items": [{"sku": "A", "name": "B", "quantity": 1, "unit_price_cents": 5}],
    }


async def test_the_idempotency_key_header_is_forwarded_on_mutations(
    gql: GraphQLClient, fake: FakeServices
) -> None:
    order_id = str(uuid.uuid4())
    fake.on("orders", "POST", f"/api/v1/orders/{order_id}/pay", order(str(uuid.uuid4()), status="paid"))

    result = await gql.run(
        f'mutation {{ payOrder(id: "{order_id}") {{ status }} }}', headers={"Idempotency-Key": "k-9"}
    )

    assert result == {"data": {"payOrder": {"status": "PAID"}}}
    assert fake.called("orders")[0].headers["idempotency-key"] == "k-9"


# ---- problems -> extensions.code --------------------------------------------------------------------


async def test_someone_elses_order_is_not_found_with_null_data(
    gql: GraphQLClient, fake: FakeServices
) -> None:
    order_id = str(uuid.uuid4())
    fake.on("orders", "GET", f"/api/v1/orders/{order_id}", problem(404, "No order with this id."))

    result = await gql.run(f'{{ order(id: "{order_id}") {{ id }} }}')

    assert result["data"] == {"order": None}
    (error,) = result["errors"]
    assert error["extensions"] == {"code": "NOT_FOUND"}
    assert error["path"] == ["order"]
    assert error["message"] == "No order with this id."


async def test_each_problem_status_maps_onto_its_code(gql: GraphQLClient, fake: FakeServices) -> None:
    order_id = str(uuid.uuid4())
    for status, code in [
        (401, "UNAUTHENTICATED"),
        (403, "FORBIDDEN"),
        (404, "NOT_FOUND"),
        (409, "CONFLICT"),
        (429, "RATE_LIMITED"),
        (503, "UNAVAILABLE"),
        (500, "INTERNAL"),
    ]:
        fake.on("orders", "POST", f"/api/v1/orders/{order_id}/ship", problem(status, "secret detail"))
        result = await gql.run(f'mutation {{ shipOrder(id: "{order_id}") {{ id }} }}')
        assert result["data"] is None, result
        (error,) = result["errors"]
        assert error["extensions"]["code"] == code, (status, error)
        if status >= 500:
            # A service's own account of its failure stays inside.
            assert "secret" not in error["message"]


async def test_rate_limited_carries_retry_after(gql: GraphQLClient, fake: FakeServices) -> None:
    response = problem(429, "Slow down.")
    response.headers["retry-after"] = "7"
    fake.on("notification", "GET", "/api/v1/notifications/unread-count", response)

    (error,) = (await gql.run("{ unreadCount }"))["errors"]

    assert error["extensions"] == {"code": "RATE_LIMITED", "retryAfter": 7}


async def test_bad_input_names_the_graphql_field(gql: GraphQLClient, fake: FakeServices) -> None:
    errors = [
        {"loc": ["body", "items", 0, "unit_price_cents"], "msg": "too large", "type": "less_than_equal"},
        {"loc": ["body", "currency"], "msg": "bad currency", "type": "string_pattern_mismatch"},
    ]
    fake.on("orders", "POST", "/api/v1/orders", problem(422, "Invalid order.", errors=errors))
    mutation = """mutation {
      createOrder(
        input: {currency: "usd", items: [{sku: "A", name: "B", quantity: 1, unitPriceCents: 5000000000}]}
      )
      { id }
    }"""

    (error,) = (await gql.run(mutation))["errors"]

    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["errors"] == [
        {"field": "input.items.0.unitPriceCents", "message": "too large"},
        {"field": "input.currency", "message": "bad currency"},
    ]


async def test_a_bad_cursor_names_the_after_argument(gql: GraphQLClient, fake: FakeServices) -> None:
    errors = [{"loc": ["query", "cursor"], "msg": "Invalid cursor", "type": "value_error"}]
    fake.on("orders", "GET", "/api/v1/orders", problem(422, "The cursor is not valid.", errors=errors))

    (error,) = (await gql.run('{ orders(after: "nope") { pageInfo { hasNextPage } } }'))["errors"]

    assert error["extensions"] == {
        "code": "BAD_USER_INPUT",
        "errors": [{"field": "after", "message": "Invalid cursor"}],
    }


async def test_an_id_that_is_not_a_uuid_is_refused_before_any_call(
    gql: GraphQLClient, fake: FakeServices
) -> None:
    for hostile in ("../../internal/users", "1 OR 1=1", "", "%2e%2e"):
        result = await gql.run("query($id: ID!) { order(id: $id) { id } }", {"id": hostile})
        (error,) = result["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["extensions"]["errors"][0]["field"] == "id"
    assert fake.calls == []


async def test_an_unreachable_service_fails_only_its_own_fields(
    gql: GraphQLClient, fake: FakeServices
) -> None:
    fake.on("users", "GET", "/api/v1/users/me", user(name="Me"))
    fake.down.add("orders")

    result = await gql.run(f'{{ me {{ fullName }} order(id: "{uuid.uuid4()}") {{ id }} }}')

    assert result["data"] == {"me": {"fullName": "Me"}, "order": None}
    (error,) = result["errors"]
    assert error["extensions"] == {"code": "UNAVAILABLE", "service": "orders"}
    assert error["path"] == ["order"]


async def test_partial_data_survives_when_users_cannot_be_reached_for_order_user(
    gql: GraphQLClient, fake: FakeServices
) -> None:
    fake.on("orders", "GET", "/api/v1/orders", {"items": [order(str(uuid.uuid4()))], "next_cursor": None})
    fake.down.add("users")

    result = await gql.run("{ orders { edges { node { status user { fullName } } } } }")

    # Order.user is non-null, so its failure nulls the edge's node, not the whole page.
    assert result["data"] == {"orders": {"edges": [{"node": None}]}}
    (error,) = result["errors"]
    assert error["extensions"]["code"] == "UNAVAILABLE"
    assert error["path"] == ["orders", "edges", 0, "node", "user"]


async def test_a_service_answer_that_breaks_the_resolver_is_internal_without_details(
    gql: GraphQLClient, fake: FakeServices
) -> None:
    fake.on("users", "GET", "/api/v1/users/me", {"unexpected": "shape"})

    (error,) = (await gql.run("{ me { id } }"))["errors"]

    assert error["extensions"] == {"code": "INTERNAL"}
    assert error["message"] == "An unexpected error occurred."
