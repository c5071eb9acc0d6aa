"""join, say and leave over ``/ws`` (contract section 6) on real servers: two replicas, one database."""

from __future__ import annotations

import asyncio
import json
import uuid
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from realtime.rooms.store import trim_rooms
from realtime_testing import new_room, open_member, presence
from shared.testing.users import UsersStandIn

pytestmark = pytest.mark.integration


async def frames_sent(url: str) -> dict[str, float]:
    """``realtime_frames_sent_total`` over WebSocket, by kind."""
    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(f"{url}/metrics")).text
    return {
        sample.labels["kind"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "realtime_frames_sent"
        for sample in family.samples
        if sample.name == "realtime_frames_sent_total" and sample.labels["transport"] == "ws"
    }


@pytest.fixture
async def two(run_server: Any) -> Any:
    # Rate limits raised (RATE_LIMIT_SCALE): the tests below say more than 5 a second on purpose.
    async with (
        run_server(ping_interval=30, rate_limit_scale=100) as one,
        run_server(ping_interval=30, rate_limit_scale=100) as other,
    ):
        yield one, other


@pytest.mark.parametrize("fanout", ["notify", "broker"])
async def test_members_on_two_replicas_see_joins_messages_in_offset_order_and_leaves(
    run_server: Any, issuer: UsersStandIn, fanout: str
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    async with AsyncExitStack() as stack:
        settings = {"ping_interval": 30, "rate_limit_scale": 100, "room_fanout": fanout}
        one = await stack.enter_async_context(run_server(**settings))
        other = await stack.enter_async_context(run_server(**settings))
        room = await new_room(one.url, issuer)
        a = await open_member(stack, one.ws_url, issuer, alice, "Alice")
        replay, joined = await a.join(room)
        assert replay == []
        assert joined == {
            "type": "joined",
            "room": room,
            "offset": 0,
            "recovered": False,
            "presence": [{"user_id": str(alice), "user_name": "Alice"}],
        }
        b = await open_member(stack, other.ws_url, issuer, bob, "Bob")
        _, joined = await b.join(room)
        assert {p["user_id"] for p in joined["presence"]} == {str(alice), str(bob)}
        assert await a.until("presence") == {
            "type": "presence",
            "room": room,
            "action": "join",
            "user_id": str(bob),
            "user_name": "Bob",
        }
        # Bob's second connection is no news to anyone.
        b2 = await open_member(stack, one.ws_url, issuer, bob, "Bob")
        await b2.join(room)
        assert await presence(one.url, issuer, room) == {str(alice): 1, str(bob): 2}

        client_id = str(uuid.uuid4())
        for n in range(5):
            await a.send(type="say", room=room, text=f"a{n}", **({"client_id": client_id} if n == 0 else {}))
            await b.send(type="say", room=room, text=f"b{n}")
        seen = [await m.messages(10) for m in (a, b, b2)]
        offsets = [[f["offset"] for f in got] for got in seen]
        assert offsets == [list(range(1, 11))] * 3
        assert seen[0] == seen[1] == seen[2]
        # Counted as what they are (a and b2 are on replica one): room frames, not pings, none of
        # which is due at a 30 s interval.
        counted = await frames_sent(one.url)
        assert counted.get("room", 0) >= 20
        assert counted.get("ping", 0) == 0
        first = next(f for f in seen[0] if f["text"] == "a0")
        assert first["client_id"] == client_id
        assert set(first) == {
            "type",
            "id",
            "room",
            "offset",
            "user_id",
            "user_name",
            "text",
            "client_id",
            "ts",
        }
        assert (first["user_id"], first["user_name"]) == (str(alice), "Alice")

        await b2.send(type="leave", room=room)
        assert await b2.until("left") == {"type": "left", "room": room}
        await b.ws.close()
        left = await a.until("presence")
        assert (left["action"], left["user_id"]) == ("leave", str(bob))
        assert await presence(other.url, issuer, room) == {str(alice): 1}


async def test_a_rejoin_with_since_recovers_exactly_what_was_missed(two: Any, issuer: UsersStandIn) -> None:
    one, other = two
    room = await new_room(one.url, issuer)
    async with AsyncExitStack() as stack:
        talker = await open_member(stack, one.ws_url, issuer, uuid.uuid4(), "T")
        await talker.join(room)
        for n in range(3):
            await talker.send(type="say", room=room, text=f"early {n}")
        await talker.messages(3)
        for n in range(4):
            await talker.send(type="say", room=room, text=f"missed {n}")
        await talker.messages(4)
        late = await open_member(stack, other.ws_url, issuer, uuid.uuid4(), "L")
        replay, joined = await late.join(room, since=3)
        assert [f["offset"] for f in replay] == [4, 5, 6, 7]
        assert [f["text"] for f in replay] == [f"missed {n}" for n in range(4)]
        assert (joined["offset"], joined["recovered"]) == (7, True)
        replay, joined = await late.join(room, since=7)  # again, already in: nothing missed
        assert (replay, joined["offset"], joined["recovered"]) == ([], 7, True)
        _, joined = await late.join(room, since=99)
        assert joined["recovered"] is False


async def test_after_trimming_a_rejoin_is_not_recovered(run_server: Any, issuer: UsersStandIn) -> None:
    async with run_server(ping_interval=30) as server, AsyncExitStack() as stack:
        room = await new_room(server.url, issuer)
        talker = await open_member(stack, server.ws_url, issuer, uuid.uuid4(), "T")
        await talker.join(room)
        for n in range(6):
            await talker.send(type="say", room=room, text=f"m{n}")
        await talker.messages(6)
        engine = server.app.state.resources.engine
        await trim_rooms(engine, max_age=timedelta(days=1), max_messages=2)
        late = await open_member(stack, server.ws_url, issuer, uuid.uuid4(), "L")
        replay, joined = await late.join(room, since=1)
        assert [f["offset"] for f in replay] == [5, 6]
        assert (joined["offset"], joined["recovered"]) == (6, False)


async def test_every_bad_frame_gets_an_error_frame_and_the_connection_stays(
    run_server: Any, issuer: UsersStandIn
) -> None:
    async with run_server(ping_interval=30, max_rooms_per_connection=2) as server, AsyncExitStack() as stack:
        room = await new_room(server.url, issuer)
        m = await open_member(stack, server.ws_url, issuer, uuid.uuid4(), "M")
        cases: list[tuple[Any, str]] = [
            ("not json", "bad_frame"),
            ("[1, 2]", "bad_frame"),
            ('"text"', "bad_frame"),
            ("{}", "bad_frame"),
            ('{"type": "dance"}', "bad_frame"),
            ('{"type": "join"}', "bad_frame"),
            ('{"type": "join", "room": 5}', "bad_frame"),
            ('{"type": "join", "room": "nope"}', "not_found"),
            (json.dumps({"type": "join", "room": str(uuid.uuid4())}), "not_found"),
            (json.dumps({"type": "join", "room": room, "since": -1}), "bad_frame"),
            (json.dumps({"type": "join", "room": room, "since": "1"}), "bad_frame"),
            (json.dumps({"type": "say", "room": room, "text": "hi"}), "not_joined"),
            (json.dumps({"type": "leave", "room": room}), "not_joined"),
        ]
        for text, code in cases:
            await m.ws.send(text)
            error = await m.until("error")
            assert error["code"] == code, (text, error)
            assert set(error) == {"type", "code", "room", "detail"}
        await m.ws.send(b"\x00binary")
        assert (await m.until("error"))["code"] == "bad_frame"
        await m.join(room)
        says: list[tuple[dict[str, Any], str]] = [
            ({"type": "say", "room": room, "text": ""}, "bad_frame"),
            ({"type": "say", "room": room, "text": 5}, "bad_frame"),
            ({"type": "say", "room": room, "text": "x" * 2001}, "too_long"),
            ({"type": "say", "room": room, "text": "nul\u0000"}, "bad_frame"),
            ({"type": "say", "room": room, "text": "hi", "client_id": "nope"}, "bad_frame"),
            ({"type": "say", "room": room, "text": "hi", "client_id": 7}, "bad_frame"),
        ]
        for frame, code in says:
            await m.send(**frame)
            error = await m.until("error")
            assert (error["code"], error["room"]) == (code, room), (frame, error)
        other_rooms = [await new_room(server.url, issuer) for _ in range(2)]
        await m.join(other_rooms[0])
        await m.send(type="join", room=other_rooms[1])
        assert (await m.until("error"))["code"] == "too_many_rooms"
        await m.send(type="say", room=room, text="still here")
        assert (await m.until("message"))["text"] == "still here"


async def test_say_is_rate_limited_per_user(run_server: Any, issuer: UsersStandIn) -> None:
    async with run_server(ping_interval=30) as server, AsyncExitStack() as stack:
        room = await new_room(server.url, issuer)
        m = await open_member(stack, server.ws_url, issuer, uuid.uuid4(), "M")
        await m.join(room)
        for n in range(30):
            await m.send(type="say", room=room, text=f"m{n}")
        codes: list[str] = []
        stored = 0
        while stored + len(codes) < 30:
            frame = await m.next()
            if frame["type"] == "message":
                stored += 1
            elif frame["type"] == "error":
                codes.append(frame["code"])
        # A burst of 10, plus what refilled at 5/s while the 30 frames were handled.
        assert 10 <= stored < 30
        assert set(codes) == {"rate_limited"}


async def test_200_concurrent_says_with_one_client_id_store_one_message(
    two: Any, issuer: UsersStandIn
) -> None:
    one, other = two
    room = await new_room(one.url, issuer)
    user = uuid.uuid4()
    client_id = str(uuid.uuid4())
    async with AsyncExitStack() as stack:
        members = [await open_member(stack, url, issuer, user, "U") for url in (one.ws_url, other.ws_url) * 5]
        for m in members:
            await m.join(room)
        frame = json.dumps({"type": "say", "room": room, "text": "once", "client_id": client_id})
        await asyncio.gather(*(m.ws.send(frame) for m in members for _ in range(20)))
        # Every say is answered with the one message (the room's frame, or to a retry its sender's copy).
        ids = {f["id"] for m in members for f in await m.messages(20, timeout=60)}
        assert len(ids) == 1
    async with httpx.AsyncClient(base_url=one.url) as client:
        listed = await client.get(
            f"/api/v1/rooms/{room}/messages", headers={"Authorization": f"Bearer {issuer.token(user)}"}
        )
    assert [m["offset"] for m in listed.json()["items"]] == [1]


async def test_deleting_a_room_tells_its_members_and_erases_its_history(
    two: Any, issuer: UsersStandIn
) -> None:
    one, other = two
    owner = uuid.uuid4()
    async with httpx.AsyncClient(base_url=one.url) as client:
        headers = {"Authorization": f"Bearer {issuer.token(owner)}"}
        room = (await client.post("/api/v1/rooms", json={"name": "doomed"}, headers=headers)).json()["id"]
        async with AsyncExitStack() as stack:
            members = [
                await open_member(stack, url, issuer, uuid.uuid4(), "M") for url in (one.ws_url, other.ws_url)
            ]
            for m in members:
                await m.join(room)
            await members[0].send(type="say", room=room, text="bye")
            assert (await client.delete(f"/api/v1/rooms/{room}", headers=headers)).status_code == 204
            for m in members:
                assert await m.until("room_closed") == {"type": "room_closed", "room": room}
                await m.send(type="say", room=room, text="anyone?")
                assert (await m.until("error"))["code"] == "not_joined"
        assert (await client.get(f"/api/v1/rooms/{room}/messages", headers=headers)).status_code == 404
