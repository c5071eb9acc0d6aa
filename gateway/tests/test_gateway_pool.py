"""The keep-alive client (shared.http) as the gateway uses it, against real servers: reuse, retries,
HEAD, streams, failures."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from gateway_testing import Recorder, raw_upstream, standin_app
from shared.http import UpstreamConnectFailed, UpstreamPool, UpstreamProtocolError, UpstreamTimedOut
from shared.testing.servers import serve_in_thread
from shared.testing.tokens import TokenIssuer


async def get(
    pool: UpstreamPool, target: bytes, method: str = "GET", timeout: float = 5.0
) -> tuple[int, bytes]:
    response = await pool.request(method, target, [], None, timeout=timeout)
    return response.status, response.body


@pytest.fixture
def standin(keys: TokenIssuer) -> Iterator[tuple[UpstreamPool, Recorder]]:
    recorder = Recorder()
    with serve_in_thread(standin_app("users", keys.jwks(), recorder)) as running:
        pool = UpstreamPool(running.url, connect_timeout=1.0)
        yield pool, recorder
        pool.close()


async def test_sequential_requests_share_one_connection(standin: tuple[UpstreamPool, Recorder]) -> None:
    pool, recorder = standin
    for _ in range(5):
        status, _ = await get(pool, b"/api/v1/users/me")
        assert status == 200
    assert len({entry["peer"] for entry in recorder.requests}) == 1


async def test_concurrent_requests_open_connections_and_keep_them(
    standin: tuple[UpstreamPool, Recorder],
) -> None:
    pool, recorder = standin
    results = await asyncio.gather(*(get(pool, f"/api/v1/users/{i}".encode()) for i in range(8)))
    assert [status for status, _ in results] == [200] * 8
    peers = {entry["peer"] for entry in recorder.requests}
    await asyncio.gather(*(get(pool, b"/api/v1/users/again") for _ in range(8)))
    assert {entry["peer"] for entry in recorder.requests} == peers


async def test_head_answers_have_no_body_and_do_not_poison_the_connection(
    standin: tuple[UpstreamPool, Recorder],
) -> None:
    pool, _ = standin
    assert await get(pool, b"/api/v1/users/me", method="HEAD") == (200, b"")
    status, body = await get(pool, b"/api/v1/users/me")
    assert status == 200
    assert body.startswith(b"{")


async def test_a_stream_is_read_piece_by_piece(standin: tuple[UpstreamPool, Recorder]) -> None:
    pool, _ = standin
    response = await pool.request(
        "GET", b"/api/v1/events/stream?count=3&gap=0.2", [], None, timeout=1.0, stream=True
    )
    assert response.status == 200
    assert (b"content-type", b"text/event-stream; charset=utf-8") in response.headers
    pieces = [chunk async for chunk in response.chunks()]
    assert b"".join(pieces).count(b"event: tick") == 3


async def test_a_slow_answer_times_out(standin: tuple[UpstreamPool, Recorder]) -> None:
    pool, _ = standin
    # Without the timeout the answer would come, 200, after 2 s: no raise.
    with pytest.raises(UpstreamTimedOut):
        await get(pool, b"/api/v1/users/slow?seconds=2", timeout=0.3)


async def test_a_restarted_upstream_is_reached_on_fresh_connections(keys: TokenIssuer) -> None:
    recorder = Recorder()
    with serve_in_thread(standin_app("users", keys.jwks(), recorder)) as first:
        pool = UpstreamPool(first.url)
        assert (await get(pool, b"/api/v1/users/me"))[0] == 200
    port = urlsplit(first.url).port or 0
    with serve_in_thread(standin_app("users", keys.jwks(), recorder), port=port):
        assert (await get(pool, b"/api/v1/users/me"))[0] == 200
    pool.close()


async def test_a_reused_connection_closed_under_a_get_is_retried_once() -> None:
    with raw_upstream() as url:
        pool = UpstreamPool(url)
        assert await get(pool, b"/once") == (200, b"once")
        # The pooled connection is closed as this request arrives; a fresh one answers it.
        assert await get(pool, b"/once") == (200, b"once")
        pool.close()


async def test_refused_connections_and_broken_http_are_told_apart() -> None:
    with raw_upstream() as url:
        pool = UpstreamPool(url)
        with pytest.raises(UpstreamProtocolError):
            await get(pool, b"/garbage")
        pool.close()
    refused = UpstreamPool(url, connect_timeout=0.5)
    with pytest.raises(UpstreamConnectFailed):
        await get(refused, b"/")


def test_only_plain_http_upstreams_are_accepted() -> None:
    with pytest.raises(ValueError, match="plain http"):
        UpstreamPool("https://users:8001")
