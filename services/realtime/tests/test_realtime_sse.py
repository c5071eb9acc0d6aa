"""``GET /api/v1/events/stream``: the same stream as Server-Sent Events."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from realtime_testing import Frames, SseReader, order_created, publish, ws_connect
from shared.testing.users import UsersStandIn

pytestmark = pytest.mark.integration


async def test_the_stream_resumes_from_last_event_id_then_goes_live(
    shared_server: Any, issuer: UsersStandIn, test_amqp_url: str
) -> None:
    user = uuid.uuid4()
    token = issuer.token(user)
    events = [order_created(user) for _ in range(3)]
    async with ws_connect(shared_server.ws_url, token) as ws:
        frames = Frames(ws)
        await frames.next_non_ping()
        await publish(test_amqp_url, *events)
        await frames.events(3)

    headers = {"Authorization": f"Bearer {token}", "Last-Event-ID": "1"}
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream(
            "GET", shared_server.url + "/api/v1/events/stream?since=0", headers=headers
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = SseReader(response.aiter_lines())
        replayed = [await reader.next(), await reader.next()]
        ready = await reader.next()
        await publish(test_amqp_url, order_created(user))
        live = await reader.next()

    assert [e["id"] for e in replayed] == ["2", "3"], "Last-Event-ID wins over ?since="
    assert [e["event"] for e in replayed] == ["order.created", "order.created"]
    first = json.loads(replayed[0]["data"])
    assert first["type"] == "event"
    assert first["offset"] == 2
    assert first["id"] == str(events[1].id)
    assert ready["event"] == "ready"
    assert "id" not in ready
    assert json.loads(ready["data"]) == {"type": "ready", "offset": 3, "recovered": True}
    assert live["id"] == "4"
    assert json.loads(live["data"])["offset"] == 4


async def test_the_stream_sends_comment_lines_and_accepts_a_token_in_the_query(
    run_server: Any, issuer: UsersStandIn
) -> None:
    async with run_server(sse_ping_interval=0.3) as server:
        url = f"{server.url}/api/v1/events/stream?token={issuer.token(uuid.uuid4())}"
        async with httpx.AsyncClient(timeout=10) as client, client.stream("GET", url) as response:
            assert response.status_code == 200
            reader = SseReader(response.aiter_lines())
            ready = await reader.next()
            assert json.loads(ready["data"]) == {"type": "ready", "offset": 0, "recovered": False}
            with pytest.raises(TimeoutError):
                await reader.next(timeout=1.0)
    assert len(reader.comments) >= 2


async def test_a_stopping_replica_ends_its_streams_cleanly_and_no_other_replicas(
    run_server: Any, issuer: UsersStandIn, test_amqp_url: str
) -> None:
    """An SSE response never ends by itself: on shutdown the replica ends it (a complete response, so
    the browser reconnects elsewhere with Last-Event-ID), instead of holding the drain until uvicorn
    cuts it mid-chunk. Another server in the same process keeps streaming (sse-starlette alone would
    end every stream of the process for good after the first server's exit)."""
    user = uuid.uuid4()
    url = f"/api/v1/events/stream?token={issuer.token(user)}"
    async with (
        run_server() as survivor,
        httpx.AsyncClient(timeout=10) as client,
        client.stream("GET", survivor.url + url) as kept,
    ):
        kept_reader = SseReader(kept.aiter_lines())
        assert (await kept_reader.next())["event"] == "ready"
        async with run_server() as doomed, client.stream("GET", doomed.url + url) as ended:
            ended_reader = SseReader(ended.aiter_lines())
            assert (await ended_reader.next())["event"] == "ready"
            doomed.stop()
            # Cut mid-chunk at uvicorn's timeout this would raise httpx.RemoteProtocolError instead.
            with pytest.raises(EOFError):
                await ended_reader.next()
        await publish(test_amqp_url, order_created(user))
        live = await kept_reader.next()
    assert live["event"] == "order.created"
    assert live["id"] == "1"


@pytest.mark.parametrize("token", [None, "garbage", "expired"])
async def test_the_stream_needs_a_valid_token(
    shared_server: Any, issuer: UsersStandIn, token: str | None
) -> None:
    headers = {}
    if token is not None:
        value = issuer.token(uuid.uuid4(), ttl=-60) if token == "expired" else token
        headers["Authorization"] = f"Bearer {value}"
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(shared_server.url + "/api/v1/events/stream", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_malformed_last_event_id_is_a_422_problem(shared_server: Any, issuer: UsersStandIn) -> None:
    headers = {"Authorization": f"Bearer {issuer.token(uuid.uuid4())}", "Last-Event-ID": "abc"}
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(shared_server.url + "/api/v1/events/stream", headers=headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["header", "Last-Event-ID"]


@pytest.mark.parametrize(("query", "last_event_id"), [("", b"\xb2"), ("?since=%C2%B2", None), ("", b"1\xb2")])
async def test_a_unicode_digit_as_the_resume_offset_is_a_422(
    shared_server: Any, issuer: UsersStandIn, query: str, last_event_id: bytes | None
) -> None:
    headers: dict[str, Any] = {"Authorization": f"Bearer {issuer.token(uuid.uuid4())}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id  # latin-1 0xB2 is "²"
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(shared_server.url + "/api/v1/events/stream" + query, headers=headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
