"""Contract section 7's limits: over one, a single error and no service call; hostile bodies get 4xx."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from graphql_api.limits import MAX_ALIASES, MAX_DEPTH, MAX_QUERY_BYTES
from graphql_testing import FakeServices, GraphQLClient, serve, user


def deep_query(depth: int) -> str:
    # The schema's deepest real path is 5 (orders > edges > node > user > id): deeper text names fields that
    # do not exist, and still gets the depth error alone, because limits are checked before validation.
    inner = "id"
    for level in range(depth - 1):
        inner = f"f{level} {{ {inner} }}"
    return "{ " + inner + " }"


@pytest.mark.parametrize(
    ("query", "limit"),
    [
        ("{ me { id } }" + " " * MAX_QUERY_BYTES, "size"),
        ("{ me { fullName } }  #" + "é" * (MAX_QUERY_BYTES // 2), "size"),
        (deep_query(MAX_DEPTH + 2), "depth"),
        ("{ " + " ".join(f"a{n}: me {{ id }}" for n in range(MAX_ALIASES + 1)) + " }", "aliases"),
    ],
)
async def test_a_query_over_a_limit_gets_one_error_and_nothing_runs(
    gql: GraphQLClient, fake: FakeServices, query: str, limit: str
) -> None:
    response = await gql.post({"query": query})

    assert response.status_code in (200, 400), response.text
    body = response.json()
    assert body.get("data") is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert fake.calls == []


async def test_queries_at_the_limits_run(gql: GraphQLClient, fake: FakeServices) -> None:
    fake.on("users", "GET", "/api/v1/users/me", user())
    aliases = "{ " + " ".join(f"a{n}: me {{ id }}" for n in range(MAX_ALIASES)) + " }"
    padded = aliases + " " * (MAX_QUERY_BYTES - len(aliases))

    result = await gql.run(padded)

    assert "errors" not in result, result
    assert len(result["data"]) == MAX_ALIASES


async def test_a_batch_of_operations_is_refused_with_one_error(
    gql: GraphQLClient, fake: FakeServices
) -> None:
    response = await gql.post([{"query": "{ me { id } }"}, {"query": "{ me { id } }"}])

    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert fake.calls == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"query": 5}',
        b'{"query": "{ me { id } }", "variables": []}',
        b"{}",
        b'{"query": "{ me { id "}',
        b'{"query": "query($id: ID!) { order(id: $id) { id } }", "variables": {"id": {"a": 1}}}',
        b'{"query": "{ nothere }"}',
        b'{"query": "{ me { id } }", "operationName": "Missing"}',
        b'{"query": "\\u0000"}',
    ],
)
async def test_hostile_bodies_get_a_graphql_error_never_a_500(
    gql: GraphQLClient, fake: FakeServices, body: bytes
) -> None:
    response = await gql.client.post(
        "/graphql",
        content=body,
        headers={"content-type": "application/json", "authorization": f"Bearer {gql.token}"},
    )

    assert response.status_code in (200, 400), response.text
    errors = response.json()["errors"]
    assert len(errors) == 1
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert fake.calls == []


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic abc"])
async def test_without_a_valid_token_the_answer_is_401_and_no_service_is_called(
    gql: GraphQLClient, fake: FakeServices, authorization: str | None
) -> None:
    headers = {"authorization": authorization} if authorization else {}
    response = await gql.client.post("/graphql", json={"query": "{ me { id } }"}, headers=headers)

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert fake.calls == []


async def test_an_expired_token_is_401(gql: GraphQLClient, fake: FakeServices) -> None:
    expired = fake.keys.token(exp=1, iat=0)
    response = await gql.client.post(
        "/graphql", json={"query": "{ me { id } }"}, headers={"authorization": f"Bearer {expired}"}
    )
    assert response.status_code == 401


async def test_a_get_query_is_not_executed(gql: GraphQLClient, fake: FakeServices) -> None:
    response = await gql.client.get(
        "/graphql", params={"query": "{ me { id } }"}, headers={"authorization": f"Bearer {gql.token}"}
    )

    assert response.status_code in (400, 404, 405), response.text
    assert fake.calls == []


@pytest.fixture
async def production(fake: FakeServices) -> AsyncIterator[GraphQLClient]:
    async for client in serve(
        fake, environment="production", users_service_token="a-real-secret-value-of-32-characters-or-more"
    ):
        yield client


async def test_introspection_is_off_in_production(production: GraphQLClient, fake: FakeServices) -> None:
    response = await production.post({"query": "{ __schema { queryType { name } } }"})

    body = response.json()
    assert body.get("data") is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "introspection" in error["message"].lower()


async def test_introspection_is_on_outside_production(gql: GraphQLClient) -> None:
    result = await gql.run("{ __schema { queryType { name } } }")

    assert result == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
