"""Server-Sent Events through the gateway: each event as soon as it is sent, for as long as needed."""

from __future__ import annotations

import time

import httpx

from gateway.app import create_app
from gateway.settings import GatewaySettings
from gateway.splice import server_options
from gateway_testing import Recorder
from shared.testing.servers import Running, closed_port_url, serve_in_thread
from shared.testing.tokens import TokenIssuer


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
    # Relative, not absolute: buffered, the first event would arrive with the second, 1.5 s later.
    # A loaded machine delays both, not the gap the upstream sleeps between them.
    assert finished_at - first_at >= 1.0, f"the first event came {finished_at - first_at:.2f}s before the end"
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


def test_a_stopping_gateway_ends_its_streams_with_a_complete_response(
    users_upstream: Running, orders_upstream: Running, auth: dict[str, str]
) -> None:
    """On SIGTERM an event stream ends properly (its client reconnects, to another gateway) instead of
    holding the drain until uvicorn cuts it mid-chunk, which httpx reports as RemoteProtocolError."""
    settings = GatewaySettings(
        environment="test",
        users_url=users_upstream.url,
        orders_url=orders_upstream.url,
        notification_url=closed_port_url(),
        realtime_url=users_upstream.url,
    )
    params = {"count": "1000", "gap": "0.05"}  # 50 s of events: only the shutdown ends it early
    with (
        serve_in_thread(
            create_app(settings), graceful=True, timeout_graceful_shutdown=5, **server_options()
        ) as running,
        httpx.Client(base_url=running.url, timeout=10) as client,
        client.stream("GET", "/api/v1/events/stream", params=params, headers=auth) as response,
    ):
        chunks = response.iter_raw()
        assert next(chunks).startswith(b"id: 1\n")
        running.server.should_exit = True
        rest = b"".join(chunks)
    assert b"id: 1000\n" not in rest


def test_an_event_stream_takes_its_token_from_the_query_as_a_browser_sends_it(
    client: httpx.Client, keys: TokenIssuer
) -> None:
    params = {"count": "1", "gap": "0", "token": keys.token()}
    with client.stream("GET", "/api/v1/events/stream", params=params) as response:
        assert response.status_code == 200
        assert next(response.iter_raw()).startswith(b"id: 1")
    refused = client.get("/api/v1/events/stream", params={**params, "token": "not-a-token"})
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    # Only event streams: elsewhere a token in the URL would end up in every log and history.
    assert client.get("/api/v1/users/me", params={"token": keys.token()}).status_code == 401
