"""``/ws`` through the gateway: token at the handshake, frames both ways, close codes passed on."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from gateway_testing import Recorder
from shared.testing.tokens import TokenIssuer


def ws_url(gateway: str, query: str = "") -> str:
    return gateway.replace("http://", "ws://") + "/ws" + (f"?{query}" if query else "")


def test_frames_flow_both_ways_with_a_token_in_the_query(
    gateway: str, keys: TokenIssuer, users_recorder: Recorder
) -> None:
    with connect(ws_url(gateway, f"token={keys.token()}&since=3"), open_timeout=5) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "ready"
        ws.send("hello")
        assert ws.recv(timeout=5) == "echo:hello"
    handshake = [r for r in users_recorder.requests if r["path"] == "/ws"][-1]
    assert "since=3" in handshake["query"]
    assert handshake["headers"]["x-forwarded-for"] == "127.0.0.1"


def test_a_token_in_the_authorization_header_works_too(gateway: str, keys: TokenIssuer) -> None:
    headers = {"Authorization": f"Bearer {keys.token()}"}
    with connect(ws_url(gateway), additional_headers=headers, open_timeout=5) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "ready"


@pytest.mark.parametrize("query", ["", "token=not-a-token"])
def test_without_a_valid_token_the_handshake_is_refused(gateway: str, query: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(gateway, query), open_timeout=5)
    assert refused.value.response.status_code in (401, 403)


def test_the_services_close_code_reaches_the_client(gateway: str, keys: TokenIssuer) -> None:
    with connect(ws_url(gateway, f"token={keys.token()}"), open_timeout=5) as ws:
        ws.recv(timeout=5)
        ws.send("close-4401")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401


def test_a_handshake_the_service_refuses_is_refused(gateway: str, keys: TokenIssuer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(gateway, f"token={keys.token()}&refuse=1"), open_timeout=5)
    assert refused.value.response.status_code == 403


def test_a_client_frame_over_16_kib_closes_with_1009_before_it_reaches_the_service(
    gateway: str, keys: TokenIssuer
) -> None:
    with connect(ws_url(gateway, f"token={keys.token()}"), open_timeout=5, max_size=None) as ws:
        ws.recv(timeout=5)
        largest = "x" * (16 * 1024 - len("echo:"))
        ws.send(largest)
        assert ws.recv(timeout=5) == "echo:" + largest
        ws.send("x" * (16 * 1024 + 1))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
