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
from gql.transport.exceptions import TransportConnectionFailed, TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport
from websockets.exceptions import InvalidStatus

from graphql_api.limits import MAX_ALIASES, MAX_DEPTH, MAX_QUERY_BYTES
from shared.devstack import Stack
from shared.testing.waits import eventually

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


def new_account(gateway: str, full_name: str = "Graph Q") -> Account:
    email = f"gql-{uuid.uuid4().hex[:10]}@example.com"
    created = httpx.post(
        gateway + "/api/v1/auth/register",
        json={"email": email, "password": PASSWORD, "full_name": full_name},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    return Account(created.json()["id"], login(gateway, email, PASSWORD))


def subscription_transport(stack: Stack, token: str | None) -> WebsocketsTransport:
    query = f"?token={token}" if token else ""
    ws_url = stack.url("gateway").replace("http://", "ws://") + "/graphql" + query
    return WebsocketsTransport(url=ws_url, subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL])


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
    subscription = subscription_transport(stack, alice.token)
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


# ---- rooms (contract sections 6 and 7) --------------------------------------------------------------

CREATE_ROOM = """
mutation($name: String!, $topic: String) {
  createRoom(name: $name, topic: $topic) { id name topic createdBy createdAt lastOffset }
}
"""
POST_MESSAGE = """
mutation($room: ID!, $text: String!, $clientId: ID) {
  postMessage(roomId: $room, text: $text, clientId: $clientId) {
    id room offset userId userName text clientId
  }
}
"""
ROOM_MESSAGES = """
subscription($room: ID!, $since: Int) {
  roomMessages(roomId: $room, since: $since) { offset text userId userName user { fullName } }
}
"""


async def create_room(session: AsyncClientSession, topic: str | None = None) -> dict[str, Any]:
    variables = {"name": f"Tea {uuid.uuid4().hex[:6]}", "topic": topic}
    created = await session.execute(GraphQLRequest(CREATE_ROOM, variable_values=variables))
    room: dict[str, Any] = created["createRoom"]
    return room


async def post(session: AsyncClientSession, room: str, text: str, client_id: str | None = None) -> Any:
    variables = {"room": room, "text": text, "clientId": client_id}
    return (await session.execute(GraphQLRequest(POST_MESSAGE, variable_values=variables)))["postMessage"]


async def test_a_room_created_by_mutation_is_listed_and_read_by_others(stack: Stack) -> None:
    alice, bob = new_account(stack.url("gateway")), new_account(stack.url("gateway"))
    async with http_session(stack, alice.token) as session:
        room = await create_room(session, topic="Oolong\nand more")
        untitled = await create_room(session)
    assert (room["topic"], room["createdBy"], room["lastOffset"]) == ("Oolong\nand more", alice.id, 0)
    assert untitled["topic"] == ""
    async with http_session(stack, bob.token) as session:
        read = await session.execute(
            GraphQLRequest(
                "query($id: ID!) { room(id: $id) { id name topic createdBy createdAt lastOffset } }",
                variable_values={"id": room["id"]},
            )
        )
        first = await session.execute(
            GraphQLRequest("{ rooms(first: 1) { edges { node { id } } pageInfo { hasNextPage endCursor } } }")
        )
        rest = await session.execute(
            GraphQLRequest(
                "query($after: String) { rooms(first: 100, after: $after) { edges { node { id } } } }",
                variable_values={"after": first["rooms"]["pageInfo"]["endCursor"]},
            )
        )
    assert read == {"room": room}
    # Newest first, and the page's end cursor goes on after it.
    assert first["rooms"]["edges"] == [{"node": {"id": untitled["id"]}}]
    assert first["rooms"]["pageInfo"]["hasNextPage"] is True
    assert room["id"] in [edge["node"]["id"] for edge in rest["rooms"]["edges"]]


async def test_the_same_client_id_twice_stores_one_message(stack: Stack) -> None:
    alice = new_account(stack.url("gateway"), "Alice Q")
    client_id = str(uuid.uuid4())
    async with http_session(stack, alice.token) as session:
        room = await create_room(session)
        first = await post(session, room["id"], "hello", client_id)
        again = await post(session, room["id"], "hello", client_id)
        other = await post(session, room["id"], "hello")
        read = await session.execute(
            GraphQLRequest(
                "query($id: ID!) { room(id: $id) { lastOffset messages { edges { node { id offset } } } } }",
                variable_values={"id": room["id"]},
            )
        )
    assert first == again
    assert first == {
        "id": first["id"],
        "room": room["id"],
        "offset": 1,
        "userId": alice.id,
        "userName": "Alice Q",
        "text": "hello",
        "clientId": client_id,
    }
    assert (other["offset"], other["clientId"]) == (2, None)
    assert read["room"]["lastOffset"] == 2
    assert [edge["node"] for edge in read["room"]["messages"]["edges"]] == [
        {"id": other["id"], "offset": 2},
        {"id": first["id"], "offset": 1},
    ]


async def test_a_page_of_messages_names_each_author(stack: Stack) -> None:
    gateway = stack.url("gateway")
    authors = [new_account(gateway, name) for name in ("Ada L", "Grace H", "Edsger D")]
    async with http_session(stack, authors[0].token) as session:
        room = await create_room(session)
    for n, author in enumerate(authors * 2):
        async with http_session(stack, author.token) as session:
            await post(session, room["id"], f"message {n + 1}")
    query = """query($id: ID!, $first: Int, $after: String) {
      room(id: $id) {
        messages(first: $first, after: $after) {
          edges { node { offset text userId user { id fullName } } }
          pageInfo { hasNextPage endCursor }
        }
      }
    }"""
    reader = new_account(gateway)
    async with http_session(stack, reader.token) as session:
        page = (await session.execute(GraphQLRequest(query, variable_values={"id": room["id"], "first": 4})))[
            "room"
        ]["messages"]
        rest = (
            await session.execute(
                GraphQLRequest(
                    query,
                    variable_values={"id": room["id"], "first": 4, "after": page["pageInfo"]["endCursor"]},
                )
            )
        )["room"]["messages"]
    nodes = [edge["node"] for edge in page["edges"] + rest["edges"]]
    assert [node["offset"] for node in nodes] == [6, 5, 4, 3, 2, 1]
    expected = [authors[(offset - 1) % 3] for offset in (6, 5, 4, 3, 2, 1)]
    names = {authors[0].id: "Ada L", authors[1].id: "Grace H", authors[2].id: "Edsger D"}
    assert [node["user"] for node in nodes] == [{"id": a.id, "fullName": names[a.id]} for a in expected]
    assert page["pageInfo"]["hasNextPage"] is True
    assert rest["pageInfo"]["hasNextPage"] is False


async def test_room_messages_relays_another_users_messages_and_replays_since(stack: Stack) -> None:
    gateway = stack.url("gateway")
    alice, bob = new_account(gateway, "Alice Q"), new_account(gateway, "Bob Q")
    async with http_session(stack, bob.token) as session:
        room = await create_room(session)
        # Said before alice subscribes: since=0 replays them.
        for text in ("one", "two"):
            await post(session, room["id"], text)
    async with (
        Client(transport=subscription_transport(stack, alice.token)) as live,
        http_session(stack, bob.token) as session,
    ):
        messages = live.subscribe(
            GraphQLRequest(ROOM_MESSAGES, variable_values={"room": room["id"], "since": 0})
        )
        replayed = [(await asyncio.wait_for(anext(messages), timeout=30))["roomMessages"] for _ in range(2)]
        assert [(m["offset"], m["text"]) for m in replayed] == [(1, "one"), (2, "two")]
        said = await post(session, room["id"], "three")
        live_message = (await asyncio.wait_for(anext(messages), timeout=30))["roomMessages"]
        assert live_message == {
            "offset": said["offset"],
            "text": "three",
            "userId": bob.id,
            "userName": "Bob Q",
            "user": {"fullName": "Bob Q"},
        }
        # The subscription joined the room on realtime with alice's token: she is present.
        presence = await session.execute(
            GraphQLRequest(
                "query($id: ID!) { room(id: $id) { presence { userId userName connections } } }",
                variable_values={"id": room["id"]},
            )
        )
        assert presence["room"]["presence"] == [{"userId": alice.id, "userName": "Alice Q", "connections": 1}]
        await messages.aclose()
    # The subscription over: its realtime connection is closed, and alice leaves the room.
    async with http_session(stack, bob.token) as session:

        async def present() -> Any:
            query = GraphQLRequest(
                "query($id: ID!) { room(id: $id) { presence { userId } } }",
                variable_values={"id": room["id"]},
            )
            return (await session.execute(query))["room"]["presence"]

        await eventually(present, timeout=30, equals=[])


HOSTILE_ROOM_SUBSCRIPTIONS: list[tuple[str, dict[str, Any], str]] = [
    ("not an id", {"room": "../rooms", "since": None}, "BAD_USER_INPUT"),
    ("unknown room", {"room": str(uuid.uuid4()), "since": None}, "NOT_FOUND"),
    ("negative since", {"room": str(uuid.uuid4()), "since": -1}, "BAD_USER_INPUT"),
    ("since not an int", {"room": str(uuid.uuid4()), "since": "1"}, "BAD_USER_INPUT"),
]


@pytest.mark.parametrize(
    ("what", "variables", "code"), HOSTILE_ROOM_SUBSCRIPTIONS, ids=[h[0] for h in HOSTILE_ROOM_SUBSCRIPTIONS]
)
async def test_hostile_room_subscriptions_get_their_code(
    stack: Stack, what: str, variables: dict[str, Any], code: str
) -> None:
    alice = new_account(stack.url("gateway"))
    async with Client(transport=subscription_transport(stack, alice.token)) as live:
        with pytest.raises(TransportQueryError) as failed:
            async for _ in live.subscribe(GraphQLRequest(ROOM_MESSAGES, variable_values=variables)):
                raise AssertionError(f"{what}: a message arrived")
    assert [error["extensions"]["code"] for error in failed.value.errors or []] == [code], what


async def test_room_fields_without_a_token_are_refused(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url("gateway"), timeout=10) as client:
        for body in (
            {"query": "{ rooms { edges { cursor } } }"},
            {"query": 'mutation { createRoom(name: "x") { id } }'},
        ):
            assert (await client.post("/graphql", json=body)).status_code == 401
    for token in (None, "not-a-token"):
        with pytest.raises(TransportConnectionFailed) as refused:
            async with Client(transport=subscription_transport(stack, token)) as live:
                await live.execute(GraphQLRequest(ROOM_MESSAGES, variable_values={"room": str(uuid.uuid4())}))
        handshake = refused.value.__cause__
        assert isinstance(handshake, InvalidStatus), handshake
        assert handshake.response.status_code == 401


HOSTILE_ROOM_ARGUMENTS: list[tuple[str, str, dict[str, Any], str, str | None]] = [
    # (what, query, variables ("ROOM" stands for a real room's id), extensions.code, the field named)
    ("blank text", POST_MESSAGE, {"room": "ROOM", "text": " \n "}, "BAD_USER_INPUT", "text"),
    ("empty text", POST_MESSAGE, {"room": "ROOM", "text": ""}, "BAD_USER_INPUT", "text"),
    ("oversized text", POST_MESSAGE, {"room": "ROOM", "text": "x" * 2001}, "BAD_USER_INPUT", "text"),
    ("control character", POST_MESSAGE, {"room": "ROOM", "text": "a\u0000b"}, "BAD_USER_INPUT", "text"),
    ("escape character", POST_MESSAGE, {"room": "ROOM", "text": "\u001b[2J"}, "BAD_USER_INPUT", "text"),
    ("text not a string", POST_MESSAGE, {"room": "ROOM", "text": 5}, "BAD_USER_INPUT", None),
    ("room not an id", POST_MESSAGE, {"room": "1 OR 1=1", "text": "hi"}, "BAD_USER_INPUT", "roomId"),
    ("unknown room", POST_MESSAGE, {"room": str(uuid.uuid4()), "text": "hi"}, "NOT_FOUND", None),
    (
        "client id not a uuid",
        POST_MESSAGE,
        {"room": "ROOM", "text": "hi", "clientId": "abc"},
        "BAD_USER_INPUT",
        "clientId",
    ),
    ("blank room name", CREATE_ROOM, {"name": "  "}, "BAD_USER_INPUT", "name"),
    ("oversized room name", CREATE_ROOM, {"name": "x" * 101}, "BAD_USER_INPUT", "name"),
    ("room name on two lines", CREATE_ROOM, {"name": "a\nb"}, "BAD_USER_INPUT", "name"),
    ("oversized topic", CREATE_ROOM, {"name": "ok", "topic": "x" * 501}, "BAD_USER_INPUT", "topic"),
    ("control character in topic", CREATE_ROOM, {"name": "ok", "topic": "\u0007"}, "BAD_USER_INPUT", "topic"),
    ("room id not an id", "query($id: ID!) { room(id: $id) { id } }", {"id": "../x"}, "BAD_USER_INPUT", "id"),
    (
        "nobody's room",
        "query($id: ID!) { room(id: $id) { id } }",
        {"id": str(uuid.uuid4())},
        "NOT_FOUND",
        None,
    ),
    ("first over 100", "{ rooms(first: 101) { edges { cursor } } }", {}, "BAD_USER_INPUT", "first"),
    ("first of 0", "{ rooms(first: 0) { edges { cursor } } }", {}, "BAD_USER_INPUT", "first"),
    (
        "forged rooms cursor",
        '{ rooms(after: "eyJvIjoxfQ") { edges { cursor } } }',
        {},
        "BAD_USER_INPUT",
        "after",
    ),
    (
        "forged messages cursor",
        'query($id: ID!) { room(id: $id) { messages(after: "not-a-cursor") { edges { cursor } } } }',
        {"id": "ROOM"},
        "BAD_USER_INPUT",
        "after",
    ),
    (
        "messages first over 100",
        "query($id: ID!) { room(id: $id) { messages(first: 1000) { edges { cursor } } } }",
        {"id": "ROOM"},
        "BAD_USER_INPUT",
        "first",
    ),
]


@pytest.mark.parametrize(
    ("what", "query", "variables", "code", "field"),
    HOSTILE_ROOM_ARGUMENTS,
    ids=[h[0] for h in HOSTILE_ROOM_ARGUMENTS],
)
async def test_hostile_room_arguments_get_their_code_and_change_nothing(
    stack: Stack, what: str, query: str, variables: dict[str, Any], code: str, field: str | None
) -> None:
    alice = new_account(stack.url("gateway"))
    async with http_session(stack, alice.token) as session:
        room = await create_room(session)
        values = {name: room["id"] if value == "ROOM" else value for name, value in variables.items()}
        errors, _ = await refused(session, query, values)
        assert [error["extensions"]["code"] for error in errors] == [code], (what, errors)
        if field is not None:
            assert [e["field"] for e in errors[0]["extensions"]["errors"]] == [field], (what, errors)
        after = await session.execute(
            GraphQLRequest(
                "query($id: ID!) { room(id: $id) { lastOffset messages { edges { cursor } } } }",
                variable_values={"id": room["id"]},
            )
        )
    assert after == {"room": {"lastOffset": 0, "messages": {"edges": []}}}
