"""Rooms against a stand-in realtime: which calls are made, with what, and how realtime's answers and
refusals reach the GraphQL client; ``RoomMessage.user`` through the users DataLoader."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import orjson

from graphql_testing import BASE_TIME, FakeServices, GraphQLClient, problem, user
from shared.db.pagination import OffsetCursor

ROOM_ID = str(uuid.uuid4())
MESSAGES = """
query($id: ID!, $first: Int, $after: String) {
  room(id: $id) {
    name
    messages(first: $first, after: $after) {
      edges { cursor node { offset text userName clientId user { fullName } } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""


def room(room_id: str = ROOM_ID, last_offset: int = 0) -> dict[str, Any]:
    return {
        "id": room_id,
        "name": "general",
        "topic": "",
        "created_by": str(uuid.uuid4()),
        "created_at": BASE_TIME.isoformat(),
        "last_offset": last_offset,
    }


def message(author: dict[str, Any], offset: int, client_id: str | None = None) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "room": ROOM_ID,
        "offset": offset,
        "user_id": author["id"],
        "user_name": author["full_name"],
        "text": f"message {offset}",
        "client_id": client_id,
        "ts": (BASE_TIME + timedelta(seconds=offset)).isoformat(),
    }


def users_batch(users: dict[str, dict[str, Any]]) -> Any:
    def handle(request: httpx.Request) -> httpx.Response:
        ids = request.url.params["ids"].split(",")
        return httpx.Response(200, json={"items": [users[i] for i in ids if i in users]})

    return handle


async def test_a_page_of_messages_from_several_users_costs_one_users_call(
    gql: GraphQLClient, fake: FakeServices
) -> None:
    authors = [user(name=f"User{n}") for n in range(6)]
    erased = user(name="Gone")  # deleted since: users no longer knows the account
    messages = [message(authors[n % 6], 40 - n) for n in range(30)] + [message(erased, 10)]
    fake.on("realtime", "GET", f"/api/v1/rooms/{ROOM_ID}", room(last_offset=40))
    fake.on(
        "realtime",
        "GET",
        f"/api/v1/rooms/{ROOM_ID}/messages",
        {"items": messages, "next_cursor": OffsetCursor(10).encode()},
    )
    fake.on("users", "GET", "/internal/users", users_batch({a["id"]: a for a in authors}))

    result = await gql.run(MESSAGES, {"id": ROOM_ID, "first": 31, "after": OffsetCursor(41).encode()})

    assert "errors" not in result, result
    page = result["data"]["room"]["messages"]
    nodes = [edge["node"] for edge in page["edges"]]
    assert [n["user"] and n["user"]["fullName"] for n in nodes] == [
        *(authors[n % 6]["full_name"] for n in range(30)),
        None,  # the deleted account's message stays, under the name it was said with
    ]
    assert nodes[-1]["userName"] == "Gone"
    (batch,) = fake.called("users", "/internal/users")
    assert sorted(batch.url.params["ids"].split(",")) == sorted([a["id"] for a in authors] + [erased["id"]])
    assert batch.headers["x-service-token"] == "service-token-for-tests"
    # Each edge's cursor is the one realtime would give after that message; the page's end is realtime's.
    assert [OffsetCursor.decode(edge["cursor"]).offset for edge in page["edges"]] == [
        m["offset"] for m in messages
    ]
    assert page["pageInfo"] == {"hasNextPage": True, "endCursor": OffsetCursor(10).encode()}
    (listed,) = fake.called("realtime", f"/api/v1/rooms/{ROOM_ID}/messages")
    assert dict(listed.url.params) == {"limit": "31", "cursor": OffsetCursor(41).encode()}
    assert listed.headers["authorization"] == f"Bearer {gql.token}"


async def test_rooms_are_a_connection_over_realtimes_page(gql: GraphQLClient, fake: FakeServices) -> None:
    rooms = [room(str(uuid.uuid4())) for _ in range(2)]
    fake.on("realtime", "GET", "/api/v1/rooms", {"items": rooms, "next_cursor": None})

    result = await gql.run(
        "{ rooms(first: 2) { edges { node { id name lastOffset } } pageInfo { hasNextPage } } }"
    )

    assert result["data"]["rooms"] == {
        "edges": [{"node": {"id": r["id"], "name": "general", "lastOffset": 0}} for r in rooms],
        "pageInfo": {"hasNextPage": False},
    }
    assert fake.called("realtime", "/api/v1/rooms")[0].url.params["limit"] == "2"


async def test_create_room_sends_the_topic_only_when_given(gql: GraphQLClient, fake: FakeServices) -> None:
    fake.on("realtime", "POST", "/api/v1/rooms", httpx.Response(201, json=room()))

    await gql.run('mutation { createRoom(name: "general") { id } }')
    await gql.run('mutation { createRoom(name: "general", topic: null) { id } }')
    created = await gql.run('mutation { createRoom(name: "general", topic: "tea") { id createdBy } }')

    assert created["data"]["createRoom"]["id"] == ROOM_ID
    bodies = [orjson.loads(r.content) for r in fake.called("realtime")]
    assert bodies == [{"name": "general"}, {"name": "general"}, {"name": "general", "topic": "tea"}]


async def test_post_message_forwards_the_client_id_for_realtimes_dedupe(
    gql: GraphQLClient, fake: FakeServices
) -> None:
    author, client_id = user(), str(uuid.uuid4())
    fake.on(
        "realtime",
        "POST",
        f"/api/v1/rooms/{ROOM_ID}/messages",
        httpx.Response(201, json=message(author, 1, client_id)),
    )
    mutation = """mutation($room: ID!, $text: String!, $clientId: ID) {
      postMessage(roomId: $room, text: $text, clientId: $clientId) { offset clientId text }
    }"""

    result = await gql.run(mutation, {"room": ROOM_ID, "text": "hello", "clientId": client_id})
    await gql.run(mutation, {"room": ROOM_ID, "text": "hello"})

    assert result == {"data": {"postMessage": {"offset": 1, "clientId": client_id, "text": "message 1"}}}
    first, second = fake.called("realtime")
    assert orjson.loads(first.content) == {"text": "hello", "client_id": client_id}
    assert orjson.loads(second.content) == {"text": "hello"}
    assert first.headers["authorization"] == f"Bearer {gql.token}"


async def test_presence_lists_who_is_in_the_room(gql: GraphQLClient, fake: FakeServices) -> None:
    member = {"user_id": str(uuid.uuid4()), "user_name": "Ada", "connections": 2}
    fake.on("realtime", "GET", f"/api/v1/rooms/{ROOM_ID}", room())
    fake.on("realtime", "GET", f"/api/v1/rooms/{ROOM_ID}/presence", {"room": ROOM_ID, "users": [member]})

    result = await gql.run(
        "query($id: ID!) { room(id: $id) { presence { userId userName connections } } }", {"id": ROOM_ID}
    )

    assert result["data"]["room"]["presence"] == [
        {"userId": member["user_id"], "userName": "Ada", "connections": 2}
    ]


async def test_realtimes_refusals_map_onto_codes_and_fields(gql: GraphQLClient, fake: FakeServices) -> None:
    fake.on("realtime", "GET", f"/api/v1/rooms/{ROOM_ID}", problem(404, "No such room."))
    text_error = [{"loc": ["body", "text"], "msg": "must not be blank", "type": "value_error"}]
    fake.on(
        "realtime",
        "POST",
        f"/api/v1/rooms/{ROOM_ID}/messages",
        problem(422, "Invalid message.", errors=text_error),
    )
    cursor_error = [{"loc": ["query", "cursor"], "msg": "Invalid cursor", "type": "value_error"}]
    fake.on("realtime", "GET", "/api/v1/rooms", problem(422, "The cursor is not valid.", errors=cursor_error))

    missing = await gql.run("query($id: ID!) { room(id: $id) { id } }", {"id": ROOM_ID})
    blank = await gql.run(
        'mutation($id: ID!) { postMessage(roomId: $id, text: " ") { id } }', {"id": ROOM_ID}
    )
    cursor = await gql.run('{ rooms(after: "nope") { pageInfo { hasNextPage } } }')

    assert missing["data"] == {"room": None}
    assert missing["errors"][0]["extensions"] == {"code": "NOT_FOUND"}
    assert blank["errors"][0]["extensions"] == {
        "code": "BAD_USER_INPUT",
        "errors": [{"field": "text", "message": "must not be blank"}],
    }
    assert cursor["errors"][0]["extensions"]["errors"] == [{"field": "after", "message": "Invalid cursor"}]


async def test_ids_that_are_not_uuids_are_refused_before_any_call(
    gql: GraphQLClient, fake: FakeServices
) -> None:
    post = 'mutation($r: ID!, $c: ID) { postMessage(roomId: $r, text: "hi", clientId: $c) { id } }'
    for query, variables, field in [
        ("query($r: ID!) { room(id: $r) { id } }", {"r": "../rooms"}, "id"),
        (post, {"r": "1 OR 1=1"}, "roomId"),
        (post, {"r": ROOM_ID, "c": "not-a-uuid"}, "clientId"),
        (post, {"r": ROOM_ID, "c": ""}, "clientId"),
    ]:
        (error,) = (await gql.run(query, variables))["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", (variables, error)
        assert error["extensions"]["errors"][0]["field"] == field
    assert fake.calls == []
