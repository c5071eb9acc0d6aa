"""``/graphql`` through the gateway: POST with a token, and the WebSocket with its subprotocol."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from shared.testing.servers import Running
from shared.testing.tokens import TokenIssuer


@pytest.fixture(scope="module")
def gateway_with_graphql(start_gateway: Callable[..., Running], users_upstream: Running) -> str:
    # Stand-in A plays graphql too (its /graphql WebSocket and its catch-all HTTP echo).
    running = start_gateway(
        users_url=users_upstream.url,
        graphql_url=users_upstream.url,
        upstream_timeout=2.0,
        connect_timeout=1.0,
    )
    return running.url


def ws_url(gateway: str, query: str = "") -> str:
    return gateway.replace("http://", "ws://") + "/graphql" + (f"?{query}" if query else "")


def test_post_graphql_is_forwarded_with_the_token(gateway_with_graphql: str, keys: TokenIssuer) -> None:
    token = keys.token()
    response = httpx.post(
        gateway_with_graphql + "/graphql",
        json={"query": "{ me { id } }"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    forwarded: dict[str, Any] = response.json()
    assert (forwarded["method"], forwarded["path"]) == ("POST", "/graphql")
    assert ["authorization", f"Bearer {token}"] in forwarded["headers"]


def test_post_graphql_without_a_token_is_401(gateway_with_graphql: str) -> None:
    response = httpx.post(gateway_with_graphql + "/graphql", json={"query": "{ me { id } }"}, timeout=5)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_the_websocket_negotiates_graphql_transport_ws(gateway_with_graphql: str, keys: TokenIssuer) -> None:
    with connect(
        ws_url(gateway_with_graphql, f"token={keys.token()}"),
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        open_timeout=5,
    ) as ws:
        assert ws.subprotocol == "graphql-transport-ws"
        assert json.loads(ws.recv(timeout=5)) == {"type": "connection_ack"}
        ws.send('{"type": "ping"}')
        assert ws.recv(timeout=5) == 'echo:{"type": "ping"}'


def test_a_token_in_the_authorization_header_works_for_the_websocket(
    gateway_with_graphql: str, keys: TokenIssuer
) -> None:
    with connect(
        ws_url(gateway_with_graphql),
        additional_headers={"Authorization": f"Bearer {keys.token()}"},
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        open_timeout=5,
    ) as ws:
        assert ws.subprotocol == "graphql-transport-ws"


@pytest.mark.parametrize("query", ["", "token=not-a-token"])
def test_the_websocket_without_a_valid_token_is_refused_at_the_handshake(
    gateway_with_graphql: str, query: str
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(
            ws_url(gateway_with_graphql, query),
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            open_timeout=5,
        )
    assert refused.value.response.status_code in (401, 403)
