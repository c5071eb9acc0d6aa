"""Server-Sent Events through the gateway: each event as soon as it is sent, for as long as needed."""

from __future__ import annotations

import time

import httpx

from gateway.testing import Recorder


def test_events_arrive_before_the_upstream_has_finished(client: httpx.Client, auth: dict[str, str]) -> None:
    started = time.monotonic()
    # The stream outlives the gateway's 1 s upstream timeout, which bounds only the wait for headers.
    params = {"count": "2", "gap": "1.5"}
    with client.stream("GET", "/api/v1/events/stream", params=params, headers=auth) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-request-id"]
        chunks = response.iter_raw()
        first = next(chunks)
        first_at = time.monotonic() - started
        rest = b"".join(chunks)
    finished_at = time.monotonic() - started
    assert first.startswith(b"id: 1\nevent: tick\n")
    assert first_at < 1.0, f"the first event waited {first_at:.2f}s: buffered"
    assert b"id: 2" in rest
    assert finished_at >= 1.4


def test_a_client_that_leaves_ends_the_upstream_stream(
    client: httpx.Client, auth: dict[str, str], users_recorder: Recorder
) -> None:
    closed_before = users_recorder.streams_closed
    params = {"count": "1000", "gap": "0.05"}
    with client.stream("GET", "/api/v1/events/stream", params=params, headers=auth) as response:
        assert next(response.iter_raw()).startswith(b"id: 1")
    deadline = time.monotonic() + 5
    while users_recorder.streams_closed == closed_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert users_recorder.streams_closed > closed_before, "the upstream stream was left running"


def test_a_stream_needs_a_token(client: httpx.Client) -> None:
    assert client.get("/api/v1/events/stream").status_code == 401
