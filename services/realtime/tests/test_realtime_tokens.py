"""Tokens on /ws: refused at the handshake, closed with 4401 when they expire, renewed by a refresh frame."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from realtime_testing import Frames, order_created, publish, ws_connect
from shared.testing.users import UsersStandIn

pytestmark = pytest.mark.integration


def _bad_tokens(issuer: UsersStandIn, user: uuid.UUID) -> dict[str, str]:
    stranger = UsersStandIn()  # same kid, another key: a forged signature
    return {
        "expired": issuer.token(user, ttl=-60),
        "forged": stranger.token(user),
        "malformed": "not-a-jwt",
        "wrong audience": issuer.token(user, aud="someone-else"),
        "not a user id": issuer.token(user, sub="admin"),
    }


async def test_missing_invalid_or_expired_tokens_are_refused_at_the_handshake(
    shared_server: Any, issuer: UsersStandIn, test_amqp_url: str
) -> None:
    user = uuid.uuid4()
    with pytest.raises(InvalidStatus) as missing:
        async with ws_connect(shared_server.ws_url):
            pass
    assert missing.value.response.status_code == 401
    assert missing.value.response.headers["WWW-Authenticate"] == "Bearer"
    assert missing.value.response.headers["Content-Type"] == "application/problem+json"

    for name, token in _bad_tokens(issuer, user).items():
        with pytest.raises(InvalidStatus) as refused:
            async with ws_connect(shared_server.ws_url, token):
                pass
        assert refused.value.response.status_code == 401, name

    # The bearer header works as well as ?token=, and a valid token still works after all that.
    headers = {"Authorization": f"Bearer {issuer.token(user)}"}
    async with ws_connect(shared_server.ws_url, additional_headers=headers) as ws:
        assert (await Frames(ws).next_non_ping())["type"] == "ready"


async def test_a_malformed_since_is_refused_with_422(shared_server: Any, issuer: UsersStandIn) -> None:
    url = shared_server.ws_url + "?since=-1&token=" + issuer.token(uuid.uuid4())
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(url):
            pass
    assert refused.value.response.status_code == 422


async def test_the_connection_closes_with_4401_when_its_token_expires(
    shared_server: Any, issuer: UsersStandIn, test_amqp_url: str
) -> None:
    user = uuid.uuid4()
    async with ws_connect(shared_server.ws_url, issuer.token(user, ttl=1.5)) as ws:
        frames = Frames(ws)
        assert (await frames.next_non_ping())["type"] == "ready"
        # Pings keep an unexpiring connection open for ever: the ceiling only ends a failing test.
        ceiling = time.monotonic() + 60
        with pytest.raises(ConnectionClosed) as closed:
            while time.monotonic() < ceiling:
                frame = await frames.next(timeout=5)
                assert frame["type"] == "ping", "no event after the token expired"
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401


async def test_a_refresh_frame_keeps_the_connection_past_the_first_tokens_expiry(
    shared_server: Any, issuer: UsersStandIn, test_amqp_url: str
) -> None:
    user = uuid.uuid4()
    async with ws_connect(shared_server.ws_url, issuer.token(user, ttl=1.5)) as ws:
        frames = Frames(ws)
        assert (await frames.next_non_ping())["type"] == "ready"
        await ws.send(f'{{"type": "refresh", "token": "{issuer.token(user, ttl=60)}"}}')
        await frames.nothing_more(2.5)  # the first token is past its expiry by now
        await publish(test_amqp_url, order_created(user))
        assert (await frames.events(1))[0]["offset"] == 1


@pytest.mark.parametrize(("kind", "code"), [("another user", 4403), ("expired", 4401), ("garbage", 4401)])
async def test_a_refresh_with_a_bad_token_closes_the_connection(
    shared_server: Any, issuer: UsersStandIn, kind: str, code: int
) -> None:
    user = uuid.uuid4()
    token = {
        "another user": issuer.token(uuid.uuid4()),
        "expired": issuer.token(user, ttl=-60),
        "garbage": "x.y.z",
    }[kind]
    async with ws_connect(shared_server.ws_url, issuer.token(user)) as ws:
        frames = Frames(ws)
        assert (await frames.next_non_ping())["type"] == "ready"
        await ws.send(f'{{"type": "refresh", "token": "{token}"}}')
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await frames.next(timeout=5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == code
