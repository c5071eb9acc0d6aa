"""``/api/v1/rooms`` and ``/api/v1/broadcasts`` on a real server (contract section 6), hostile cases too."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest

from realtime_testing import Frames, SseReader, ws_connect
from shared.testing.users import UsersStandIn

pytestmark = pytest.mark.integration


def bearer(
    issuer: UsersStandIn, user: uuid.UUID, *, name: str = "Ada", admin: bool = False
) -> dict[str, str]:
    roles = ["user", "admin"] if admin else ["user"]
    return {"Authorization": f"Bearer {issuer.token(user, name=name, roles=roles)}"}


async def make_room(
    client: httpx.AsyncClient, headers: dict[str, str], name: str = "general"
) -> dict[str, Any]:
    response = await client.post("/api/v1/rooms", json={"name": name, "topic": "chat"}, headers=headers)
    assert response.status_code == 201, response.text
    room: dict[str, Any] = response.json()
    return room


async def test_rooms_are_created_listed_read_and_deleted_by_their_creator(
    shared_server: Any, issuer: UsersStandIn
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    async with httpx.AsyncClient(base_url=shared_server.url) as client:
        response = await client.post(
            "/api/v1/rooms",
            json={"name": "Tea lovers", "topic": "Oolong\nand more"},
            headers=bearer(issuer, alice),
        )
        assert response.status_code == 201
        room = response.json()
        assert set(room) == {"id", "name", "topic", "created_by", "created_at", "last_offset"}
        assert (room["name"], room["created_by"], room["last_offset"]) == ("Tea lovers", str(alice), 0)
        assert response.headers["location"] == f"/api/v1/rooms/{room['id']}"

        got = await client.get(f"/api/v1/rooms/{room['id']}", headers=bearer(issuer, bob))
        assert got.json() == room
        newer = await make_room(client, bearer(issuer, bob), "second")
        page = (await client.get("/api/v1/rooms?limit=1", headers=bearer(issuer, bob))).json()
        assert [r["id"] for r in page["items"]] == [newer["id"]]
        rest = await client.get(
            f"/api/v1/rooms?limit=100&cursor={page['next_cursor']}", headers=bearer(issuer, bob)
        )
        assert room["id"] in [r["id"] for r in rest.json()["items"]]

        assert (
            await client.delete(f"/api/v1/rooms/{room['id']}", headers=bearer(issuer, bob))
        ).status_code == 403
        assert (
            await client.delete(f"/api/v1/rooms/{room['id']}", headers=bearer(issuer, alice))
        ).status_code == 204
        assert (
            await client.get(f"/api/v1/rooms/{room['id']}", headers=bearer(issuer, bob))
        ).status_code == 404
        assert (
            await client.delete(f"/api/v1/rooms/{room['id']}", headers=bearer(issuer, alice))
        ).status_code == 404
        admin = bearer(issuer, uuid.uuid4(), admin=True)
        assert (await client.delete(f"/api/v1/rooms/{newer['id']}", headers=admin)).status_code == 204


async def test_messages_take_consecutive_offsets_and_a_client_id_is_stored_once(
    shared_server: Any, issuer: UsersStandIn
) -> None:
    alice = uuid.uuid4()
    headers = bearer(issuer, alice, name="Alice Smith")
    async with httpx.AsyncClient(base_url=shared_server.url, timeout=30) as client:
        room = await make_room(client, headers)
        url = f"/api/v1/rooms/{room['id']}/messages"
        client_id = str(uuid.uuid4())
        answers = await asyncio.gather(
            *(
                client.post(url, json={"text": "hello", "client_id": client_id}, headers=headers)
                for _ in range(20)
            ),
            *(client.post(url, json={"text": f"m{i}"}, headers=headers) for i in range(10)),
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses.count(201) == 11
        assert statuses.count(200) == 19
        same = {a.json()["id"] for a in answers if a.json()["client_id"] == client_id}
        assert len(same) == 1

        listed = (await client.get(url + "?limit=100", headers=headers)).json()
        offsets = [m["offset"] for m in listed["items"]]
        assert offsets == list(range(11, 0, -1))
        message = listed["items"][0]
        assert set(message) == {"id", "room", "offset", "user_id", "user_name", "text", "client_id", "ts"}
        assert (message["user_name"], message["user_id"], message["room"]) == (
            "Alice Smith",
            str(alice),
            room["id"],
        )
        first = (await client.get(url + "?limit=4", headers=headers)).json()
        second = (await client.get(url + f"?limit=100&cursor={first['next_cursor']}", headers=headers)).json()
        assert [m["offset"] for m in first["items"] + second["items"]] == offsets
        assert (await client.get(f"/api/v1/rooms/{room['id']}", headers=headers)).json()["last_offset"] == 11


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 101},
        {"name": "bad\x00name"},
        {"name": "two\nlines"},
        {"name": "ok", "topic": "t" * 501},
        {"name": "ok", "topic": "bell\x07"},
        {"name": 5},
        {"name": "ok", "extra": 1},
        {},
    ],
)
async def test_bad_rooms_are_refused_with_422(shared_server: Any, issuer: UsersStandIn, body: Any) -> None:
    async with httpx.AsyncClient(base_url=shared_server.url) as client:
        response = await client.post("/api/v1/rooms", json=body, headers=bearer(issuer, uuid.uuid4()))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_hostile_message_requests_get_4xx(shared_server: Any, issuer: UsersStandIn) -> None:
    headers = bearer(issuer, uuid.uuid4())
    async with httpx.AsyncClient(base_url=shared_server.url) as client:
        room = await make_room(client, headers)
        url = f"/api/v1/rooms/{room['id']}/messages"
        for body in (
            {"text": ""},
            {"text": "x" * 2001},
            {"text": "nul\x00"},
            {"text": "esc\x1b[31m"},
            {"text": "ok", "client_id": "not-a-uuid"},
            {"text": ["a"]},
        ):
            assert (await client.post(url, json=body, headers=headers)).status_code == 422, body
        assert (
            await client.post(url, json={"text": "tab\tand\r\nlines"}, headers=headers)
        ).status_code == 201
        for cursor in ("garbage", "eyJvIjotMX0", "eyJvIjoiYSJ9", "e30"):
            assert (await client.get(url + f"?cursor={cursor}", headers=headers)).status_code == 422, cursor
        assert (await client.get(f"/api/v1/rooms/{'x' * 70}", headers=headers)).status_code == 422
        for bad in ("not-a-uuid", str(uuid.uuid4()), "%00", "%E2%80%AE"):
            assert (await client.get(f"/api/v1/rooms/{bad}", headers=headers)).status_code == 404
            assert (await client.get(f"/api/v1/rooms/{bad}/messages", headers=headers)).status_code == 404
            assert (
                await client.post(f"/api/v1/rooms/{bad}/messages", json={"text": "hi"}, headers=headers)
            ).status_code == 404
            assert (await client.get(f"/api/v1/rooms/{bad}/presence", headers=headers)).status_code == 404
            assert (await client.delete(f"/api/v1/rooms/{bad}", headers=headers)).status_code == 404
        assert (await client.get("/api/v1/rooms?limit=0", headers=headers)).status_code == 422
        assert (await client.get("/api/v1/rooms?cursor=zzz", headers=headers)).status_code == 422
        assert (await client.get("/api/v1/rooms")).status_code == 401
        assert (await client.post(url, json={"text": "hi"})).status_code == 401


async def test_broadcasts_are_for_admins_and_reach_websocket_and_sse(
    shared_server: Any, issuer: UsersStandIn
) -> None:
    user = uuid.uuid4()
    admin = bearer(issuer, uuid.uuid4(), admin=True)
    async with httpx.AsyncClient(base_url=shared_server.url, timeout=30) as client:
        forbidden = await client.post(
            "/api/v1/broadcasts", json={"title": "t", "body": "b"}, headers=bearer(issuer, user)
        )
        assert forbidden.status_code == 403
        for body in (
            {"title": "", "body": "b"},
            {"title": "t", "body": "x" * 2001},
            {"title": "t\x00", "body": "b"},
        ):
            assert (await client.post("/api/v1/broadcasts", json=body, headers=admin)).status_code == 422
        async with (
            ws_connect(shared_server.ws_url, issuer.token(user)) as ws,
            client.stream("GET", "/api/v1/events/stream", headers=bearer(issuer, user)) as sse,
        ):
            frames = Frames(ws)
            assert (await frames.next_non_ping())["type"] == "ready"
            reader = SseReader(sse.aiter_lines())
            while (await reader.next()).get("event") != "ready":
                pass
            big = "Maintenance at 22:00 UTC. " + "\U0001f600" * 1970  # over 8000 bytes: a NOTIFY names a row
            for text in ("short", big):
                accepted = await client.post(
                    "/api/v1/broadcasts", json={"title": "Notice", "body": text}, headers=admin
                )
                assert accepted.status_code == 202
                broadcast_id = accepted.json()["id"]
                frame = await frames.next_non_ping()
                assert frame["type"] == "broadcast"
                assert frame["id"] == broadcast_id
                assert frame["body"] == text
                assert set(frame) == {"type", "id", "title", "body", "ts"}
                event = await reader.next()
                assert event["event"] == "broadcast"
                assert "id" not in event
                assert json.loads(event["data"]) == frame


ROOM = "00000000-0000-4000-8000-000000000001"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/rooms"),
        ("GET", "/api/v1/rooms"),
        ("GET", f"/api/v1/rooms/{ROOM}"),
        ("DELETE", f"/api/v1/rooms/{ROOM}"),
        ("GET", f"/api/v1/rooms/{ROOM}/messages"),
        ("POST", f"/api/v1/rooms/{ROOM}/messages"),
        ("GET", f"/api/v1/rooms/{ROOM}/presence"),
        ("POST", "/api/v1/broadcasts"),
    ],
)
@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic YTpi", "Bearer " + "x" * 5000])
async def test_every_rooms_route_needs_a_valid_token(
    shared_server: Any, method: str, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    body = {"name": "x", "text": "x", "title": "x", "body": "x"} if method == "POST" else None
    async with httpx.AsyncClient(base_url=shared_server.url) as client:
        response = await client.request(method, path, json=body, headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"].startswith("application/problem+json")
